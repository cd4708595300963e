"""SPEC §2 Shutdown: on SIGTERM/SIGINT every open stream ends promptly with a jittered `retry:`
hint, and the server process exits (it never hangs waiting for SSE clients)."""

from __future__ import annotations

import asyncio
import re
import signal

import httpx
import pytest

from tests.support.fixtures import Serve
from tests.support.hub import Stopwatch, wait_subscribers
from tests.support.serve import ServeProcess
from tests.support.sse import SSEStream, stalled_subscriber, subscribe_target
from tests.support.wait import wait_until

pytestmark = pytest.mark.both_fronts  # the serve fixture: front=fast and front=asgi

STREAMS = 100
SHUTDOWN_RETRY = 1000


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_shutdown_ends_every_stream_and_exits(
    serve: Serve, sse_streams: list[SSEStream], http: httpx.AsyncClient, sig: signal.Signals
) -> None:
    hub: ServeProcess = await serve("--shutdown-retry", str(SHUTDOWN_RETRY), "--retry", "3000")
    streams = await asyncio.gather(*(
        SSEStream.open(hub.port, subscribe_target(f"s{i % 10}")) for i in range(STREAMS)))
    sse_streams.extend(streams)
    assert all(s.status == 200 for s in streams)
    await wait_subscribers(http, hub.url, "s0", STREAMS // 10)
    # an event accepted just before the signal is still delivered before the stream ends
    accepted = {}
    for t in range(10):
        response = await http.post(hub.url + "/publish", json={"topic": f"s{t}", "data": "last words"})
        accepted[f"s{t}"] = response.json()["id"]

    watch = Stopwatch()
    hub.send_signal(sig)
    await asyncio.gather(*(s.read_to_eof(timeout=10) for s in streams))
    ended = watch.elapsed()
    code = await hub.wait_exit(timeout=5)
    exited = watch.elapsed()
    print(f"\n{sig.name}: {STREAMS} streams ended after {ended:.3f}s, process exited after {exited:.3f}s "
          f"(code {code}; design target 1s)")
    assert exited < 5

    hints = []
    for i, stream in enumerate(streams):
        assert stream.complete, f"stream {i} was cut, not ended (raw tail {bytes(stream.raw[-80:])!r})"
        lines = bytes(stream.raw).split(b"\n")  # the hints are lines, never followed by a blank one
        assert lines[0] == b"retry: 3000"
        assert [e.id for e in stream.events] == [accepted[f"s{i % 10}"]]
        m = re.fullmatch(rb"retry: (\d+)", lines[-2]) if lines[-1] == b"" else None
        assert m, f"stream {i} did not end with a retry hint: {lines[-3:]!r}"
        hints.append(int(m.group(1)))
    assert all(SHUTDOWN_RETRY <= h <= 2 * SHUTDOWN_RETRY for h in hints), hints
    assert len(set(hints)) > 1, "no jitter: every client would reconnect in the same millisecond"
    log = hub.log()
    assert "Traceback" not in log and "ERROR" not in log, log
    with pytest.raises(httpx.ConnectError):
        await http.get(hub.url + "/healthz")


async def test_shutdown_does_not_hang_on_a_stalled_reader(
    serve: Serve, sse_streams: list[SSEStream], http: httpx.AsyncClient
) -> None:
    """A subscriber that stopped reading keeps the server's send() blocked; shutdown must still
    finish (every other stream ends with its hint, the process exits)."""
    hub: ServeProcess = await serve("--history-bytes", "1048576")
    target = subscribe_target("stall")
    healthy = await SSEStream.open(hub.port, target, store=False)
    sse_streams.append(healthy)
    reader = asyncio.create_task(healthy.read_to_eof(timeout=60))
    stalled = await stalled_subscriber(hub.port, target)
    try:
        await wait_subscribers(http, hub.url, "stall", 2)
        chunk = "z" * 60_000
        for i in range(16):  # ~7.7 MB: more than the stalled connection's buffers can take
            body = [{"topic": "stall", "data": f"{i}.{k}{chunk}"} for k in range(8)]
            response = await http.post(hub.url + "/publish", json=body)
            assert response.status_code == 200
        last = response.json()["ids"][-1]
        await wait_until(lambda: healthy.parser.last_event_id == last, what="the healthy reader to catch up")
        watch = Stopwatch()
        hub.send_signal(signal.SIGTERM)
        await hub.wait_exit(timeout=5)
        print(f"\nshutdown with a stalled reader: exited after {watch.elapsed():.3f}s")
        await asyncio.wait_for(reader, 10)
        assert healthy.complete and healthy.frames()[-1].startswith(b"retry: ")
    finally:
        stalled.close()
