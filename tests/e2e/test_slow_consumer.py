"""SPEC §2 slow consumers: they never hold back other subscribers nor grow memory without bound;
one that falls behind the retained history gets `event: gap` (policy 'gap') or is disconnected
and gets the gap when it reconnects (policy 'disconnect')."""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass, field

import httpx
import psutil
import pytest

from ssehub.wire import Event
from tests.support.fixtures import Serve
from tests.support.hub import Stopwatch, wait_subscribers
from tests.support.serve import ServeProcess
from tests.support.sse import SSEStream, gap_info, stalled_subscriber, subscribe_target

pytestmark = pytest.mark.both_fronts  # the serve fixture: front=fast and front=asgi

TOPIC = "firehose"
PAYLOAD = 64 * 1024
PER_BATCH = 8  # 512 KiB per publish request (under max_event_bytes = 1 MiB)
HISTORY_BYTES = 1024 * 1024
MiB = 1024 * 1024


def payload(tag: str) -> str:
    return tag + ":" + "x" * (PAYLOAD - len(tag) - 1)


@dataclass
class Follower:
    """A normal subscriber that reads as fast as it can; remembers (id, tag, length) per event."""

    stream: SSEStream
    received: list[tuple[str, str, int]] = field(default_factory=list)
    gaps: list[Event] = field(default_factory=list)
    progress: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        while (events := await self.stream.read_some()) is not None:
            for e in events:
                if e.event == "gap":
                    self.gaps.append(e)
                else:
                    self.received.append((e.id or "", e.data.split(":", 1)[0], len(e.data)))
            self.progress.set()

    async def wait_for(self, ident: str, timeout: float) -> None:
        async def reached() -> None:
            while not self.received or self.received[-1][0] != ident:
                self.progress.clear()
                await self.progress.wait()

        await asyncio.wait_for(reached(), timeout)


async def start_reading(sock: socket.socket) -> SSEStream:
    reader, writer = await asyncio.open_connection(sock=sock)
    stream = SSEStream(reader, writer)
    await asyncio.wait_for(stream.read_head(), 10)
    assert stream.status == 200
    return stream


async def flood(hub: ServeProcess, follower: Follower, total_bytes: int,
                rss: list[int] | None = None) -> list[str]:
    """Publish ``total_bytes`` of 64 KiB events in batches; after each batch wait (generous
    deadline) until the follower has it — it must keep up although another subscriber stalls."""
    published: list[str] = []
    server = psutil.Process(hub.pid)
    batches = total_bytes // (PAYLOAD * PER_BATCH)
    async with httpx.AsyncClient(timeout=30) as client:
        for b in range(batches):
            body = [{"topic": TOPIC, "data": payload(f"{b}.{k}")} for k in range(PER_BATCH)]
            response = await client.post(hub.url + "/publish", content=json.dumps(body),
                                         headers={"content-type": "application/json"})
            assert response.status_code == 200, response.text
            ids = response.json()["ids"]
            published += ids
            await follower.wait_for(ids[-1], timeout=15)
            if rss is not None:
                rss.append(server.memory_info().rss)
    return published


def check_follower(follower: Follower, published: list[str]) -> None:
    assert follower.gaps == [], follower.gaps
    assert [r[0] for r in follower.received] == published
    tags = [f"{b}.{k}" for b in range(len(published) // PER_BATCH) for k in range(PER_BATCH)]
    assert [r[1] for r in follower.received] == tags
    assert {r[2] for r in follower.received} == {PAYLOAD}


async def retained(http: httpx.AsyncClient, url: str) -> int:
    topics = (await http.get(url + "/topics")).json()["topics"]
    return next(int(t["retained"]) for t in topics if t["topic"] == TOPIC)


async def test_slow_consumer_gets_gap_and_memory_stays_bounded(
    serve: Serve, sse_streams: list[SSEStream], http: httpx.AsyncClient
) -> None:
    hub: ServeProcess = await serve("--history-bytes", str(HISTORY_BYTES), "--history-size", "100000")
    target = subscribe_target(TOPIC)
    follower = Follower(await SSEStream.open(hub.port, target, keep_raw=False, store=False))
    sse_streams.append(follower.stream)
    slow = await stalled_subscriber(hub.port, target)
    quitter = await stalled_subscriber(hub.port, target)  # stalls, then hangs up without reading
    try:
        await wait_subscribers(http, hub.url, TOPIC, 3)
        reader = asyncio.create_task(follower.run())
        baseline = psutil.Process(hub.pid).memory_info().rss
        samples: list[int] = []
        watch = Stopwatch()
        published = await flood(hub, follower, 200 * MiB, samples)
        elapsed = watch.elapsed()
        peak = max(samples)
        print(f"\nslow consumer: 200 MiB published in {elapsed:.1f}s; server RSS baseline "
              f"{baseline / MiB:.0f} MiB, peak {peak / MiB:.0f} MiB (+{(peak - baseline) / MiB:.0f})")
        assert peak - baseline < 150 * MiB, "server memory grew with the stalled subscriber's backlog"
        assert await retained(http, hub.url) <= HISTORY_BYTES // PAYLOAD
        check_follower(follower, published)
        # the stalled subscribers are still connected (policy gap); one that hangs up while the
        # server is blocked writing to it is released
        assert (await http.get(hub.url + "/topics")).json()["topics"][0]["subscribers"] == 3
        quitter.close()
        await wait_subscribers(http, hub.url, TOPIC, 2)

        # -- it starts reading again: what the kernel buffers held, then a gap, then the tail
        stream = await start_reading(slow)
        sse_streams.append(stream)
        await stream.read_until(lambda s: bool(s.events) and s.events[-1].id == published[-1],
                                timeout=30, what="the slow subscriber to reach the last event")
        kinds = [e.event for e in stream.events]
        assert kinds.count("gap") == 1, kinds
        g = kinds.index("gap")
        before, gap, after = stream.events[:g], stream.events[g], stream.events[g + 1:]
        info = gap_info(gap)
        assert info["topic"] == TOPIC and info["reason"] == "slow-consumer", info
        # never a silent loss: the prefix is contiguous from the first event, the gap names the
        # last id delivered before it, and after the gap a contiguous run reaches the head
        assert [e.id for e in before] == published[:len(before)]
        assert info["last_event_id"] == (before[-1].id if before else None)
        first_after = published.index(after[0].id or "")
        assert first_after > len(before), "a gap was sent although nothing was lost"
        assert [e.id for e in after] == published[first_after:]
        assert len(after) <= HISTORY_BYTES // PAYLOAD  # it resumed from the retained history
        assert all(len(e.data) == PAYLOAD for e in before + after)
        gap_frames = [f for f in stream.frames() if b"event: gap" in f]
        assert len(gap_frames) == 1 and b"id:" not in gap_frames[0]  # a gap has no id line
        reader.cancel()
    finally:
        slow.close()
        quitter.close()


async def test_disconnect_policy_closes_slow_consumer(
    serve: Serve, sse_streams: list[SSEStream], http: httpx.AsyncClient
) -> None:
    hub: ServeProcess = await serve("--history-bytes", str(HISTORY_BYTES), "--history-size", "100000",
                                    "--slow-consumer", "disconnect", "--shutdown-retry", "700")
    target = subscribe_target(TOPIC)
    follower = Follower(await SSEStream.open(hub.port, target, keep_raw=False, store=False))
    sse_streams.append(follower.stream)
    slow = await stalled_subscriber(hub.port, target)
    try:
        await wait_subscribers(http, hub.url, TOPIC, 2)
        reader = asyncio.create_task(follower.run())
        published = await flood(hub, follower, 32 * MiB)
        check_follower(follower, published)

        # the server cut it off while it was not reading (its socket buffers were full, so no
        # closing chunk could be delivered): the connection is closed, the slot is free
        await wait_subscribers(http, hub.url, TOPIC, 1)

        # -- reading again: what was already on its way, then EOF — no gap on this
        # connection, nothing after the cut, a contiguous prefix
        stream = await start_reading(slow)
        sse_streams.append(stream)
        await stream.read_to_eof(timeout=30)
        assert all(e.event != "gap" for e in stream.events)
        received = [e.id for e in stream.events]
        assert received == published[:len(received)]
        assert len(received) < len(published), "the slow subscriber was not cut off"

        # -- reconnecting from where it was cut: the gap comes now, then the retained tail
        last = received[-1] if received else published[0]
        assert last is not None
        again = await SSEStream.open(hub.port, target, {"Last-Event-ID": last})
        sse_streams.append(again)
        await again.read_until(lambda s: bool(s.events) and s.events[-1].id == published[-1],
                               what="the reconnected subscriber to reach the head")
        assert again.events[0].event == "gap"
        assert gap_info(again.events[0]) == {"topic": TOPIC, "last_event_id": last, "reason": "evicted"}
        tail = [e.id for e in again.events[1:]]
        assert tail == published[len(published) - len(tail):]
        reader.cancel()
    finally:
        slow.close()


async def test_disconnect_policy_frees_a_connection_that_never_reads(
    serve: Serve, sse_streams: list[SSEStream], http: httpx.AsyncClient
) -> None:
    """A subscriber that stopped reading for good must not keep its connection (and its slot)
    forever under the 'disconnect' policy: once it has fallen behind the retained history, the
    server drops it even though it never reads again."""
    hub: ServeProcess = await serve("--history-bytes", str(HISTORY_BYTES), "--history-size", "100000",
                                    "--slow-consumer", "disconnect")
    target = subscribe_target(TOPIC)
    follower = Follower(await SSEStream.open(hub.port, target, keep_raw=False, store=False))
    sse_streams.append(follower.stream)
    slow = await stalled_subscriber(hub.port, target)
    try:
        await wait_subscribers(http, hub.url, TOPIC, 2)
        reader = asyncio.create_task(follower.run())
        published = await flood(hub, follower, 32 * MiB)
        check_follower(follower, published)
        await wait_subscribers(http, hub.url, TOPIC, 1, timeout=5)
        reader.cancel()
        # the cut is counted where operators look for it
        metrics = (await http.get(hub.url + "/metrics")).text
        cuts = [line for line in metrics.splitlines() if line.startswith("ssehub_slow_consumer_cuts_total ")]
        assert cuts and float(cuts[0].split()[1]) >= 1, cuts
    finally:
        slow.close()
