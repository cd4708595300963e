"""`ssehub serve --workers N` (SPEC §6): N processes on one port behave as one hub on Redis;
with the memory broker it refuses with a reason; SIGTERM ends every worker's streams."""

from __future__ import annotations

import signal
import subprocess
import uuid
from pathlib import Path

import httpx
import psutil

from tests.support.fixtures import Serve, redis_server  # noqa: F401
from tests.support.redis import RedisServer
from tests.support.serve import SSEHUB, clean_env, free_port
from tests.support.sse import SSEStream, subscribe_target
from tests.support.wait import wait_until

BOUND = 20.0


def test_workers_with_the_memory_broker_refuse_with_a_reason(tmp_path: Path) -> None:
    done = subprocess.run([SSEHUB, "serve", "--workers", "2", "--port", str(free_port())], env=clean_env(),
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
                          check=False)
    assert done.returncode == 2
    assert "needs a shared broker" in done.stderr and "redis://" in done.stderr


async def test_workers_share_one_port_and_one_hub(
        serve: Serve, redis_server: RedisServer, http: httpx.AsyncClient,  # noqa: F811
        sse_streams: list[SSEStream]) -> None:
    port = free_port()
    proc = await serve("--workers", "2", "--broker", redis_server.url,
                       "--namespace", "w-" + uuid.uuid4().hex[:8], port=port)
    await wait_until(lambda: len(psutil.Process(proc.pid).children()) >= 2, timeout=BOUND,
                     what="two workers")
    workers = {c.pid for c in psutil.Process(proc.pid).children()}
    # several connections: the kernel spreads them over the workers; every one sees every event
    streams = []
    for _ in range(6):
        stream = await SSEStream.open(port, subscribe_target("jobs"))
        sse_streams.append(stream)
        streams.append(stream)
    ids = []
    for i in range(5):  # a new connection per publish, so that publishes land on both workers
        async with httpx.AsyncClient() as one_shot:
            response = await one_shot.post(f"http://127.0.0.1:{port}/publish",
                                           json={"topic": "jobs", "data": i})
        assert response.status_code == 200, response.text
        ids.append(response.json()["id"])
    for stream in streams:
        got = await stream.read_events(5, timeout=BOUND)
        assert [e.id for e in got] == ids
    # SIGTERM: every worker ends its streams with a retry hint, and everything exits
    proc.send_signal(signal.SIGTERM)
    for stream in streams:
        await stream.read_to_eof(timeout=BOUND)
        assert stream.raw.rstrip(b"\n").rsplit(b"\n", 1)[-1].startswith(b"retry: ")  # the last line
    assert await proc.wait_exit(timeout=BOUND) == 0
    await wait_until(lambda: not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"
                                     for p in workers), timeout=BOUND, what="the workers to exit")

