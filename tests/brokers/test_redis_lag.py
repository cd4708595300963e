"""The Redis broker when a process lags or a history is big (review issue 7), against real
redis-server processes: a feed reader slower than the publishers never skips events silently
(a ``reset`` gap or every event), a hole left by a failed publish script is skipped without a
spurious reset, a history load is bounded in bytes and is not an outage, a warm of a topic
forgotten meanwhile leaves the byte count alone, and a resume the feed has not reached yet
answers 503 (try again) instead of a gap and duplicates. No mocks.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

import ssehub
from ssehub import Hub, Settings
from ssehub.brokers.redis import RedisBroker
from ssehub.errors import BrokerUnavailable
from ssehub.wire import Event
from tests.support.redis import RedisServer

SRC = str(Path(ssehub.__file__).resolve().parent.parent)  # the ssehub under test, for subprocesses


def new_ns() -> str:
    return "lag-" + uuid.uuid4().hex[:10]


def hub_on(url: str, ns: str, *, timeout: float = 1.0, feed_maxlen: int = 100_000, **kw: Any) -> Hub:
    settings = Settings(heartbeat=3600, broker_timeout=timeout, **kw)
    return Hub(RedisBroker(url, namespace=ns, timeout=timeout, feed_maxlen=feed_maxlen), settings=settings)


def publisher_script(url: str, ns: str, topic: str, count: int, feed_maxlen: int) -> str:
    """Python code for a separate process that publishes ``count`` events e0, e1, … to ``topic``
    (its publishes trim the feed to about ``feed_maxlen`` entries)."""
    return (f"import asyncio, sys\nsys.path.insert(0, {SRC!r})\n"
            "from ssehub import Hub, Settings\nfrom ssehub.brokers.redis import RedisBroker\n"
            "async def main():\n"
            f"    async with Hub(RedisBroker({url!r}, namespace={ns!r}, "
            f"feed_maxlen={feed_maxlen}), settings=Settings(heartbeat=3600)) as hub:\n"
            f"        for i in range({count}):\n"
            f"            await hub.publish({topic!r}, f'e{{i}}')\n"
            "asyncio.run(main())\n")


def assert_no_silent_hole(events: Sequence[Event]) -> int:
    """Every event's seq follows the previous one's (one publisher, one topic: consecutive seqs)
    unless a gap event came in between. Returns the number of gaps."""
    previous: int | None = None
    gaps = 0
    for event in events:
        if event.event == "gap":
            gaps += 1
            previous = None
            continue
        assert event.id is not None
        seq = int(event.id.split("-")[1])
        assert previous is None or seq == previous + 1, f"silent hole: {previous} then {seq}"
        previous = seq
    return gaps


async def test_a_reader_slower_than_the_publishers_gets_a_reset_gap_never_a_hole(
        redis_server: RedisServer) -> None:
    """The feed keeps ~100 entries; this process spends 1 ms per applied event while another
    process publishes 2,000 as fast as it can: the feed is trimmed past the reader's position
    while it is connected. Without the hole check XREAD silently continued from the oldest
    entry kept (events lost, no gap)."""
    ns = new_ns()
    total = 2000
    async with hub_on(redis_server.url, ns, feed_maxlen=100) as hub:
        apply = hub.apply

        def slow_apply(seq: int, topics: Sequence[str], body: bytes) -> None:
            time.sleep(0.001)  # a CPU-busy process
            apply(seq, topics, body)

        hub.apply = slow_apply  # type: ignore[method-assign]
        got: list[Event] = []
        sub = hub.subscribe("t")
        await sub.start()

        async def read() -> None:
            async for event in sub:
                got.append(event)
                if event.data == f"e{total - 1}":
                    return

        reader = asyncio.create_task(read())
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c",
                                                    publisher_script(redis_server.url, ns, "t", total, 100))
        assert await asyncio.wait_for(proc.wait(), 120) == 0
        await asyncio.wait_for(reader, 60)  # the last event always arrives
        gaps = assert_no_silent_hole(got)
        assert gaps >= 1, "the reader never fell behind: the test did not exercise the lag"
        assert all(e.event != "gap" or '"reason":"reset"' in e.data.replace(" ", "") for e in got)
        assert hub.stats["epoch_resets"] >= 1


async def test_a_hole_left_by_a_failed_publish_script_is_skipped_without_a_reset(
        redis_server: RedisServer) -> None:
    """A publish whose script fails midway (a topic key of the wrong type: WRONGTYPE after the
    INCR) leaves a seq with no feed entry. The readers see a hole, re-sync, find the feed
    still holds their position: they skip it, no reset, no gap, nothing lost."""
    ns = new_ns()
    async with hub_on(redis_server.url, ns) as a, hub_on(redis_server.url, ns) as b:
        subs = [a.subscribe("t"), b.subscribe("t")]
        await a.publish("t", "before")
        client = aioredis.Redis.from_url(redis_server.url)
        try:
            await client.set("{" + ns + "}:t:bad", "not a stream")
        finally:
            await client.aclose()
        with pytest.raises(BrokerUnavailable):
            await a.publish(["t", "bad"], "half written")
        after = [await b.publish("t", f"after{i}") for i in range(3)]
        for hub, sub in zip((a, b), subs, strict=True):
            got: list[Event] = []
            async with asyncio.timeout(10):
                async for event in sub:
                    got.append(event)
                    if len(got) == 4:
                        break
            assert [e.data for e in got] == ["before", "after0", "after1", "after2"]
            assert [e.id for e in got[1:]] == after
            assert hub.stats["epoch_resets"] == 0


async def test_a_warm_of_a_topic_forgotten_meanwhile_does_not_count_its_bytes(
        redis_server: RedisServer) -> None:
    """max_topics=1: topic 'a' starts loading its history, then 'b' is created and 'a' is
    forgotten before the load ends. The load must not add 'a''s bytes to retained_bytes
    (they would never be subtracted: the count drifted upward for good)."""
    ns = new_ns()
    async with hub_on(redis_server.url, ns, max_topics=1) as hub:
        for i in range(5):
            await hub.publish("a", "x" * 1000 + str(i))
        a = hub.topic("a")  # its warm is in flight
        b = hub.topic("b")  # forgets 'a' (idle) at once
        assert hub.stats["topics_forgotten"] == 1
        await asyncio.wait_for(hub.ready(a), 10)
        await asyncio.wait_for(hub.ready(b), 10)
        assert hub.retained_bytes == b.log.retained_bytes == 0
        again = hub.topic("a")  # cached again (forgets 'b'): its history loads and counts once
        await asyncio.wait_for(hub.ready(again), 10)
        assert again is not a and len(again.log) == 5
        assert hub.retained_bytes == again.log.retained_bytes > 5000


async def test_a_resume_the_feed_has_not_reached_answers_503_not_a_gap(redis_server: RedisServer) -> None:
    """Process A's feed lags (its reader is stopped); an id handed out to process B cannot
    be placed on A within broker_timeout: A answers BrokerUnavailable (503, try again)
    instead of a future-id gap and a replay from the oldest event (duplicates). An id never
    handed out still gets the future-id gap."""
    ns = new_ns()
    async with hub_on(redis_server.url, ns, timeout=0.3) as a, hub_on(redis_server.url, ns, timeout=0.3) as b:
        first = await b.publish("t", "one")
        await asyncio.wait_for(a.subscribe("t", last_event_id=first).start(), 10)  # A is caught up: fine
        broker = a.broker
        assert isinstance(broker, RedisBroker) and broker._task is not None
        broker._task.cancel()  # A's feed stops: it lags behind everything published from now on
        second = await b.publish("t", "two")
        sub = a.subscribe("t", last_event_id=second)
        with pytest.raises(BrokerUnavailable):
            await asyncio.wait_for(sub.start(), 10)
        sub.close()
        epoch, seq = second.split("-")
        never = f"{epoch}-{int(seq) + 1000}"
        sub = a.subscribe("t", last_event_id=never)
        await asyncio.wait_for(sub.start(), 10)
        gap = await asyncio.wait_for(sub.__anext__(), 10)
        assert gap.event == "gap" and "future-id" in gap.data


async def net_output(client: aioredis.Redis) -> int:
    return int((await client.info("stats"))["total_net_output_bytes"])


async def test_a_history_load_is_paged_and_bounded_in_bytes_with_an_exact_boundary() -> None:
    """40 events of 64 KiB in a topic, history_bytes 256 KiB: a process that loads the topic
    (``earliest``) gets the newest events that fit and Redis sends about that much — not the
    whole topic in one call (before: ``XREVRANGE COUNT history_size+1``, 2.5 MiB). The
    evicted boundary is exact: a resume from the newest event not loaded continues without
    a gap, one from below it gets the gap."""
    size = 64 * 1024
    with RedisServer() as server:
        ns = new_ns()
        client = aioredis.Redis.from_url(server.url)
        try:
            async with hub_on(server.url, ns) as a:
                ids = [await a.publish("big", f"{i:03d}" + "x" * size) for i in range(40)]
                async with hub_on(server.url, ns, history_bytes=256 * 1024) as b:
                    await asyncio.sleep(0.1)  # b's reader is idle in XREAD
                    before = await net_output(client)
                    sub = b.subscribe("big", last_event_id="earliest")
                    await asyncio.wait_for(sub.start(), 10)
                    sent = await net_output(client) - before
                    topic = b.topic("big")
                    kept = len(topic.log)
                    assert 1 <= kept <= 4
                    assert sent < 2 * 256 * 1024, f"redis sent {sent} bytes for a 256 KiB history"
                    got = [await asyncio.wait_for(sub.__anext__(), 10) for _ in range(kept)]
                    assert [e.id for e in got] == ids[-kept:]
                    boundary = ids[-kept - 1]
                    assert topic.log.evicted_seq == int(boundary.split("-")[1])
                    exact = b.subscribe("big", last_event_id=boundary)
                    await asyncio.wait_for(exact.start(), 10)
                    resumed = [await asyncio.wait_for(exact.__anext__(), 10) for _ in range(kept)]
                    assert [e.id for e in resumed] == ids[-kept:]
                    behind = b.subscribe("big", last_event_id=ids[-kept - 2])
                    await asyncio.wait_for(behind.start(), 10)
                    gap = await asyncio.wait_for(behind.__anext__(), 10)
                    assert gap.event == "gap" and "evicted" in gap.data
        finally:
            await client.aclose()


BUSY = """
local t0 = redis.call('TIME')
local start = tonumber(t0[1]) + tonumber(t0[2]) / 1e6
repeat
  local t = redis.call('TIME')
until tonumber(t[1]) + tonumber(t[2]) / 1e6 - start >= tonumber(ARGV[1])
return 1
"""


async def test_a_history_load_that_times_out_is_not_a_broker_outage(redis_server: RedisServer) -> None:
    """Redis is busy (another client's script holds its one thread for 1 s) while a
    subscriber's history load runs with broker_timeout 0.3 s: the subscriber gets
    BrokerUnavailable (503, try again), but the broker is not marked down (no outage
    counted, publishes not refused), and the next try works. (The feed reader is blocked in
    a fresh ``XREAD BLOCK 1000`` meanwhile — the publish just woke it — which Redis answers
    after the busy script, within the reader's own deadline of 1.3 s.)"""
    ns = new_ns()
    async with hub_on(redis_server.url, ns, timeout=0.3) as hub:
        other = aioredis.Redis.from_url(redis_server.url)
        try:
            await other.ping()
            await hub.publish("h", "one")
            async def run_busy() -> object:
                return await other.eval(BUSY, 0, 1.0)

            busy: asyncio.Task[object] = asyncio.create_task(run_busy())
            await asyncio.sleep(0.1)  # the busy script runs
            sub = hub.subscribe("h", last_event_id="earliest")
            with pytest.raises(BrokerUnavailable) as info:
                await sub.start()
            assert hub.stats["broker_outages"] == 0 and hub.stats["broker_up"] == 1
            assert "TimeoutError" in str(info.value)  # the reason, not an empty message
            with pytest.raises(BrokerUnavailable):  # the broker's own deadline, not the hub's
                await hub.broker.history("h", hub.last_seq, 10)
            assert hub.stats["broker_outages"] == 0 and hub.stats["broker_up"] == 1
            await busy
        finally:
            await other.aclose()
        assert hub.stats["broker_outages"] == 0
        await asyncio.wait_for(sub.start(), 10)
        assert (await asyncio.wait_for(sub.__anext__(), 10)).data == "one"

