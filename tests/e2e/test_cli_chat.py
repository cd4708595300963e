"""`ssehub chat`: a hub mounted under a prefix, a stream it cannot read (the generation is
stopped, not left running), terminal escapes in model text, and `| head`."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ssehub.asgi import create_app
from ssehub.cli_llm import _Printer, _show, events_url, printable, run_chat
from ssehub.config import Settings
from tests.support.fixtures import Serve
from tests.support.serve import SSEHUB, ServeProcess, clean_env
from tests.support.uvicorn import start_uvicorn


@pytest.fixture
async def mounted(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, list[tuple[str, str, int]]]]:
    """FastAPI with the hub under /hub; param "block-subscribe" refuses /hub/subscribe (a
    proxy that does not pass streams). Yields the hub URL and the requests seen."""
    seen: list[tuple[str, str, int]] = []
    outer = FastAPI()
    block = getattr(request, "param", "") == "block-subscribe"

    @outer.middleware("http")
    async def record(req: Request, call_next):  # type: ignore[no-untyped-def]
        if block and req.url.path == "/hub/subscribe":
            seen.append((req.method, req.url.path, 403))
            return JSONResponse({"error": "streams are not allowed here"}, status_code=403)
        response = await call_next(req)
        seen.append((req.method, req.url.path, response.status_code))
        return response

    hub_app = create_app(Settings(demo_tokens_per_second=2000 if not block else 5))
    outer.mount("/hub", hub_app)
    server = uvicorn.Server(uvicorn.Config(outer, host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="on", timeout_graceful_shutdown=2))
    task = await start_uvicorn(server)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/hub", seen
    finally:
        await hub_app.state.ssehub.close()
        server.should_exit = True
        await task


def test_events_url_is_resolved_like_a_browser_does() -> None:
    # what a mounted hub answers (the prefix is already in it) and what a root hub answers
    assert events_url("http://h/hub", "/hub/subscribe?topic=chat/G") == "http://h/hub/subscribe?topic=chat/G"
    assert events_url("http://h/hub/", "/hub/subscribe?x=1") == "http://h/hub/subscribe?x=1"
    assert events_url("http://h:8181", "/subscribe?x=1") == "http://h:8181/subscribe?x=1"
    assert events_url("http://h/hub", "subscribe?x=1") == "http://h/hub/subscribe?x=1"


async def test_chat_against_a_hub_mounted_under_a_prefix(
    mounted: tuple[str, list[tuple[str, str, int]]]
) -> None:
    url, seen = mounted
    out, err = io.StringIO(), io.StringIO()
    code = await asyncio.wait_for(run_chat(url, "hello", out=out, err=err, tty=False), 60)
    assert code == 0, err.getvalue()
    assert "demo" in out.getvalue().lower() and len(out.getvalue()) > 200
    subscribes = [s for s in seen if s[0] == "GET" and s[1].endswith("/subscribe")]
    assert subscribes and all(s == ("GET", "/hub/subscribe", 200) for s in subscribes), seen


@pytest.mark.parametrize("mounted", ["block-subscribe"], indirect=True)
async def test_an_unreadable_stream_stops_the_generation(
    mounted: tuple[str, list[tuple[str, str, int]]]
) -> None:
    url, seen = mounted
    out, err = io.StringIO(), io.StringIO()
    code = await asyncio.wait_for(run_chat(url, "hello", out=out, err=err, tty=False), 60)
    assert code == 1
    assert "cannot read the answer: streams are not allowed here" in err.getvalue()
    deletes = [s for s in seen if s[0] == "DELETE"]
    # the generation was still running (5 tokens/s): the DELETE found and cancelled it
    assert len(deletes) == 1 and deletes[0][1].startswith("/hub/chat/") and deletes[0][2] == 200, seen


def test_model_text_cannot_send_terminal_escapes() -> None:
    hostile = "title\x1b]0;pwned\x07 csi\x9b2J clear\x1b[2J bell\x07 cr\rx del\x7f nul\x00 ok\n\tend"
    assert printable(hostile) == "title]0;pwned csi2J clear[2J bell crx del nul ok\n\tend"
    for tty in (False, True):
        out, err = io.StringIO(), io.StringIO()
        printer = _Printer(out, err, tty=tty, reasoning=True)
        _show("reasoning", json.dumps({"text": "think\x1b]0;x\x07"}), printer)
        _show("content", json.dumps({"text": hostile}), printer)
        _show("error", json.dumps({"message": "bad\x1b[31m", "status": None}), printer)
        written = out.getvalue() + err.getvalue()
        # only ssehub's own dim/reset sequences remain, and only on a terminal
        assert written.replace("\x1b[2m", "").replace("\x1b[0m", "").isprintable() is False
        stripped = written.replace("\x1b[2m", "").replace("\x1b[0m", "")
        assert not any(ch in stripped for ch in "\x1b\x07\x9b\x7f\x00\r"), repr(written)
        assert ("\x1b[2m" in written) is tty


async def test_chat_into_head_exits_quietly(serve: Serve) -> None:
    hub: ServeProcess = await serve("--demo-tokens-per-second", "200")
    proc = await asyncio.create_subprocess_exec(
        "bash", "-c", f'"{SSEHUB}" chat "hello" --url {hub.url} --no-reasoning | head -c 40',
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert len(out) == 40
    assert b"Traceback" not in err and b"BrokenPipe" not in err, err.decode()


async def test_client_commands_honour_ssehub_url(serve: Serve) -> None:
    hub: ServeProcess = await serve()
    env: dict[str, Any] = clean_env(SSEHUB_URL=hub.url)
    sub = await asyncio.create_subprocess_exec(SSEHUB, "subscribe", "envt", "--last-event-id", "earliest",
                                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        pub = await asyncio.create_subprocess_exec(SSEHUB, "publish", "envt", "via env",
                                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        out, err = await asyncio.wait_for(pub.communicate(), 20)
        assert pub.returncode == 0, err
        assert sub.stdout is not None
        line = json.loads(await asyncio.wait_for(sub.stdout.readline(), 20))
        assert line == {"event": "message", "data": "via env", "id": out.decode().strip()}
    finally:
        sub.kill()
        await sub.wait()
