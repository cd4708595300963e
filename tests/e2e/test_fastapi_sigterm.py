"""The hub mounted in FastAPI and run with plain `uvicorn app:app` (how most FastAPI apps
run): SIGTERM/SIGINT with an open subscriber end the stream with its retry hint and the
process exits promptly, instead of hanging at "Waiting for connections to close"."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.fixtures import Serve
from tests.support.hub import Stopwatch
from tests.support.serve import clean_env, free_port
from tests.support.sse import SSEStream, subscribe_target
from tests.support.wait import wait_until

APP = """
from fastapi import FastAPI
from ssehub.asgi import create_app
from ssehub.config import Settings

app = FastAPI()

@app.get("/")
async def root():
    return {"app": "outer"}

app.mount("/hub", create_app(Settings(shutdown_retry=700)))
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_plain_uvicorn_exits_promptly_with_an_open_subscriber(tmp_path: Path, sig: int) -> None:
    (tmp_path / "app.py").write_text(APP)
    port = free_port()
    log = tmp_path / "uvicorn.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=clean_env())
    stream = None
    try:
        await wait_until(lambda: b"Uvicorn running" in log.read_bytes() or proc.poll() is not None,
                         timeout=20, what="uvicorn to listen")
        assert proc.poll() is None, log.read_text()
        stream = await SSEStream.open(port, subscribe_target("s", path="/hub/subscribe"))
        assert stream.status == 200
        await stream.read_until(lambda s: bytes(s.raw).startswith(b"retry: "), timeout=10,
                                what="the opening retry hint")
        proc.send_signal(sig)
        watch = Stopwatch()
        await stream.read_to_eof(timeout=10)
        await wait_until(lambda: proc.poll() is not None, timeout=10, what="uvicorn to exit")
        assert watch.elapsed() < 10
        # the stream ended cleanly with the jittered shutdown hint (700 … 1400 ms): its last line
        last = bytes(stream.raw).rstrip(b"\n").rsplit(b"\n", 1)[-1]
        assert last.startswith(b"retry: ") and 700 <= int(last.split()[1]) <= 1400, bytes(stream.raw)
        assert stream.complete
        # uvicorn then went on exactly as it would have: its own shutdown ran to the end
        text = log.read_text()
        assert "Waiting for connections to close" not in text or "Finished server process" in text, text
        assert "Finished server process" in text, text
    finally:
        if stream is not None:
            await stream.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait()


async def test_serve_sigterm_ends_running_generations_before_the_hub(
    serve: Serve, http: httpx.AsyncClient
) -> None:
    """The chained signal handler and `ssehub serve`'s own shutdown both close the hub: they
    must share one closing, or the second closes the hub while the first is still ending the
    generations, whose terminal `done` would then be refused."""
    hub = await serve("--demo-tokens-per-second", "5")
    info = (await http.post(hub.url + "/chat", json={"messages": [{"role": "user", "content": "hi"}]})).json()
    stream = await SSEStream.open(hub.port, info["events"])
    try:
        await stream.read_until(lambda s: any(e.event == "reasoning" for e in s.pending()), timeout=20,
                                what="the first token")
        hub.send_signal(signal.SIGTERM)
        await stream.read_to_eof(timeout=10)
        names = [e.event for e in stream.pending()]
        assert names[-1] == "done" and stream.pending()[-1].data == '{"finish_reason":"cancelled"}', names
        await hub.wait_exit(10)  # (uvicorn re-raises the signal once it is done: -15)
    finally:
        await stream.close()
