"""`ssehub subscribe` and `ssehub.client.subscribe`: retrying is said and bounded, a server's
huge retry hint or oversized line is handled, terminal controls are escaped; `ssehub --help`
and the `ssehub serve` banner read cleanly."""

from __future__ import annotations

import asyncio
import json
import subprocess
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

import ssehub.client
from ssehub.client import ConnectError, RemoteProtocolError, Retrying
from ssehub.errors import ClientError, SSEHubError
from tests.support.fixtures import HubServer, Serve
from tests.support.hub import Stopwatch, wait_subscribers
from tests.support.serve import SSEHUB, ServeProcess, clean_env, free_port
from tests.support.wait import wait_until


async def run(*args: str, timeout: float = 30) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(SSEHUB, *args, stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE, env=clean_env())
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_subscribe_to_a_wrong_port_says_so_and_gives_up() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, out, err = await run("subscribe", "t", "--url", url, "--max-retries", "3")
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    # one line per wait (after attempts 1 and 2), then the reason it stopped
    assert len(lines) == 3, err
    for n, line in enumerate(lines[:2], 1):
        assert line.startswith("ssehub subscribe: ConnectError") and "retrying in" in line, line
        assert line.endswith(f"(failed attempts: {n})"), line
    assert lines[2].startswith("ssehub: gave up after 3 failed attempts in a row"), lines[2]
    assert "Traceback" not in err


async def test_client_gives_up_only_before_it_ever_connected(
    monkeypatch: pytest.MonkeyPatch, hub_server: HubServer, http: httpx.AsyncClient
) -> None:
    monkeypatch.setattr(ssehub.client, "_backoff", lambda retry_ms, failures: 0.01)
    seen: list[Retrying] = []
    # never connected: ConnectError after max_failures attempts
    with pytest.raises(ConnectError, match="gave up after 5 failed attempts"):
        async for _ in ssehub.client.subscribe(f"http://127.0.0.1:{free_port()}", "t", max_failures=5,
                                               keep_trying_once_connected=True, on_retry=seen.append):
            pass
    assert [r.failures for r in seen] == [1, 2, 3, 4] and not any(r.connected for r in seen)

    # once connected, it keeps trying past the limit (the server went away for a while)
    server = await hub_server()
    seen.clear()
    got: list[Any] = []

    async def consume() -> None:
        async for event in ssehub.client.subscribe(server.url, "t", max_failures=2,
                                                   keep_trying_once_connected=True, on_retry=seen.append):
            got.append(event)

    task = asyncio.create_task(consume())
    try:
        await wait_subscribers(http, server.url, "t", 1)
        await server.stop()
        await wait_until(lambda: any(r.failures >= 4 for r in seen) or task.done(),
                         what="four failed reconnects (or the end of the subscription)")
        assert not task.done(), task.exception()
        assert seen[0].reason == "stream ended" and seen[0].failures == 0
        assert max(r.failures for r in seen) >= 4 and all(r.connected for r in seen)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def _stream_app(body: bytes) -> Starlette:
    async def stream(request):  # type: ignore[no-untyped-def]
        return Response(body, media_type="text/event-stream")

    return Starlette(routes=[Route("/subscribe", stream)])


async def test_client_clamps_a_huge_retry_hint() -> None:
    # `retry: 1e400` as digits: float(int) of it overflows; the client used to die there
    app = _stream_app(b"retry: 1" + b"0" * 400 + b"\n\ndata: x\n\n")
    seen: list[Retrying] = []

    class Stop(Exception):
        pass

    def on_retry(info: Retrying) -> None:
        seen.append(info)
        raise Stop

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        with pytest.raises(Stop):
            async for event in ssehub.client.subscribe("http://hub", "t", client=http, on_retry=on_retry):
                assert event.data == "x"
    assert 0 < seen[0].delay <= ssehub.client.MAX_BACKOFF_S
    assert ssehub.client.clamp_retry(10**400) == 86_400_000


async def test_an_oversized_line_from_the_server_is_a_remote_protocol_error() -> None:
    app = _stream_app(b"data: " + b"x" * (1 << 20) + b"\n\n")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        with pytest.raises(RemoteProtocolError, match="line longer than") as info:
            async for _ in ssehub.client.subscribe("http://hub", "t", client=http):
                pass
    # the server's fault, not a 400 of ours: the client branch of the tree
    assert isinstance(info.value, ClientError) and isinstance(info.value, SSEHubError)
    assert info.value.status == 500


async def test_subscribe_escapes_c1_controls(serve: Serve, http: httpx.AsyncClient) -> None:
    hub: ServeProcess = await serve()
    pipe = subprocess.PIPE
    proc = await asyncio.create_subprocess_exec(SSEHUB, "subscribe", "esc", "--url", hub.url, stdout=pipe,
                                                stderr=pipe, env=clean_env())
    try:
        await wait_subscribers(http, hub.url, "esc", 1, timeout=15)
        data = "a\x1b]0;T\x07 csi\x9b2J del\x7f é"
        await ssehub.client.publish(hub.url, "esc", data, client=http)
        assert proc.stdout is not None
        raw = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert raw.decode().isascii() is False  # é stays readable (not ASCII-escaped)
        assert not any(c in raw.decode() for c in "\x1b\x07\x9b\x7f")
        assert json.loads(raw)["data"] == data  # still the exact data, as JSON
    finally:
        proc.kill()
        await proc.wait()


async def test_help_is_plain_text() -> None:
    code, out, _ = await run("--help")
    assert code == 0 and "``" not in out and "SSEHUB_URL" in out


async def test_serve_prints_where_things_are(serve: Serve) -> None:
    hub: ServeProcess = await serve()
    watch = Stopwatch()
    while "console" not in hub.log() and watch.elapsed() < 10:
        await asyncio.sleep(0.05)
    from ssehub import __version__

    line = next(x for x in hub.log().splitlines() if x.startswith("ssehub "))
    assert line == (f"ssehub {__version__} — chat {hub.url}/ · console {hub.url}/console · provider demo "
                    "(simulated; set SSEHUB_LLM_BASE_URL, SSEHUB_LLM_API_KEY and SSEHUB_LLM_MODEL for a "
                    "real model) · broker memory://")


async def test_banner_names_a_configured_provider(serve: Serve) -> None:
    env = {"SSEHUB_LLM_BASE_URL": "http://127.0.0.1:9/v1", "SSEHUB_LLM_MODEL": "some-model",
           "SSEHUB_BROKER": "memory://"}
    hub: ServeProcess = await serve(env=env)
    watch = Stopwatch()
    while "console" not in hub.log() and watch.elapsed() < 10:
        await asyncio.sleep(0.05)
    line = next(x for x in hub.log().splitlines() if x.startswith("ssehub "))
    tail = f"console {hub.url}/console · provider default (some-model) · broker memory://"
    assert line.endswith(tail), line
