"""SPEC §7/§8: the Python client resumes across a server restart and honours the server's retry
hint; `ssehub publish` / `ssehub subscribe` print what they should."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from typing import Any

import httpx
import pytest

import ssehub.client
from ssehub.client import ClientError
from ssehub.wire import Event
from tests.support.fixtures import HubServer, Serve
from tests.support.hub import wait_subscribers
from tests.support.serve import SSEHUB, ServeProcess, clean_env
from tests.support.sse import gap_info
from tests.support.wait import wait_until

SHUTDOWN_RETRY = 300


async def test_client_resumes_across_restart_and_honours_retry(
    serve: Serve, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the hint sent when a stream opens (5 s) is replaced by the shutdown hint (300–600 ms);
    # the client's own default is 1 s: the backoff it computes tells which one it used
    backoffs: list[tuple[int, int]] = []
    real_backoff = ssehub.client._backoff

    def spy(retry_ms: int, failures: int) -> float:
        backoffs.append((retry_ms, failures))
        return real_backoff(retry_ms, failures)

    monkeypatch.setattr(ssehub.client, "_backoff", spy)
    flags = ("--retry", "5000", "--shutdown-retry", str(SHUTDOWN_RETRY))
    first: ServeProcess = await serve(*flags)
    port = first.port
    received: list[Event] = []

    async def consume() -> None:
        async for event in ssehub.client.subscribe(first.url, ["cx"], max_failures=30):
            received.append(event)

    consumer = asyncio.create_task(consume())
    try:
        await wait_subscribers(http, first.url, "cx", 1)
        old = [await ssehub.client.publish(first.url, "cx", f"old{i}") for i in range(2)]
        await wait_until(lambda: len(received) == 2, what="the first two events")
        await first.stop()
        second: ServeProcess = await serve(*flags, port=port)
        await wait_subscribers(http, second.url, "cx", 1, timeout=15)
        new = [await ssehub.client.publish(second.url, "cx", {"n": i}) for i in range(2)]
        await wait_until(lambda: len(received) == 5, what="the gap and the new events")
    finally:
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
    assert [(e.id, e.data) for e in received[:2]] == [(old[0], "old0"), (old[1], "old1")]
    assert gap_info(received[2]) == {"topic": "cx", "last_event_id": old[1], "reason": "other-epoch"}
    assert [(e.id, e.data) for e in received[3:]] == [(new[0], '{"n":0}'), (new[1], '{"n":1}')]
    # the wait after the server ended the stream used its jittered shutdown hint
    retry_ms, failures = backoffs[0]
    assert SHUTDOWN_RETRY <= retry_ms <= 2 * SHUTDOWN_RETRY, backoffs
    assert failures == 0


async def test_client_publish_refused_raises_client_error(hub_server: HubServer) -> None:
    server = await hub_server()
    with pytest.raises(ClientError) as info:
        await ssehub.client.publish(server.url, "t", "x", event="a\nb")
    assert info.value.status == 400


async def run_cli(*args: str, timeout: float = 20) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(SSEHUB, *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                env=clean_env())
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


class CliSubscriber:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, *args: str) -> CliSubscriber:
        proc = await asyncio.create_subprocess_exec(SSEHUB, "subscribe", *args, stdout=subprocess.PIPE,
                                                    stderr=subprocess.PIPE, env=clean_env())
        return cls(proc)

    async def line(self, timeout: float = 10) -> dict[str, Any]:
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        assert raw, "ssehub subscribe ended"
        value: dict[str, Any] = json.loads(raw)
        return value

    async def interrupt(self) -> tuple[int, bytes]:
        self.proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(self.proc.communicate(), 10)
        assert self.proc.returncode is not None
        return self.proc.returncode, err

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()


async def test_cli_publish_and_subscribe(serve: Serve, http: httpx.AsyncClient) -> None:
    hub: ServeProcess = await serve()
    live = await CliSubscriber.start("cli", "cli/other", "--url", hub.url)
    try:
        await wait_subscribers(http, hub.url, "cli", 1, timeout=15)
        code, out, err = await run_cli("publish", "cli", "hello wörld", "--url", hub.url)
        assert code == 0, err
        first_id = out.strip()
        assert await live.line() == {"event": "message", "data": "hello wörld", "id": first_id}
        code, out, _ = await run_cli("publish", "cli/other", '{"a": [1, 2]}', "--json", "--event", "obj",
                                     "--url", hub.url)
        assert code == 0
        second_id = out.strip()
        assert await live.line() == {"event": "obj", "data": '{"a":[1,2]}', "id": second_id}

        # a resume position from another epoch: the gap is printed (no id), then the history
        resumed = await CliSubscriber.start("cli", "--last-event-id", "1-1", "--url", hub.url)
        try:
            gap = await resumed.line()
            assert set(gap) == {"event", "data"} and gap["event"] == "gap"
            expected = {"topic": "cli", "last_event_id": "1-1", "reason": "other-epoch"}
            assert json.loads(gap["data"]) == expected
            assert await resumed.line() == {"event": "message", "data": "hello wörld", "id": first_id}
        finally:
            resumed.kill()
            await resumed.proc.wait()

        # errors: exit status 1 and the server's message, nothing printed on stdout
        code, out, err = await run_cli("publish", "bad\x01topic", "x", "--url", hub.url)
        assert (code, out) == (1, "") and "control" in err
        code, out, err = await run_cli("publish", "cli", "{not json", "--json", "--url", hub.url)
        assert (code, out) == (2, "") and "JSON" in err

        # Ctrl-C ends `ssehub subscribe` quietly
        code, err_bytes = await live.interrupt()
        assert code == 0 and b"Traceback" not in err_bytes, err_bytes
    finally:
        live.kill()
        await live.proc.wait()


async def test_cli_publish_to_unreachable_hub_fails_cleanly() -> None:
    code, out, err = await run_cli("publish", "t", "x", "--url", "http://127.0.0.1:1")
    assert code == 1 and out == ""
    assert "Traceback" not in err and err.startswith("ssehub: "), err
