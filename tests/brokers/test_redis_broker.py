"""The Redis broker against real redis-server processes: several hubs on one namespace act
as one, outages are bounded and recovered from, lost Redis history means a new epoch and a
gap (never a silent loss), Redis Cluster works. No mocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis

from ssehub import Hub, Settings
from ssehub.brokers import from_url
from ssehub.brokers.redis import RedisBroker
from ssehub.core import parse_id
from ssehub.errors import BrokerUnavailable
from ssehub.wire import Event
from tests.support import redis as support_redis
from tests.support.fixtures import redis_cluster  # noqa: F401
from tests.support.redis import REDIS_CLI, RedisCluster, RedisServer
from tests.support.wait import wait_until

TIMEOUT = 1.0  # broker_timeout of these hubs


def hub_on(url: str, namespace: str, **kw: Any) -> Hub:
    settings = Settings(heartbeat=3600, broker_timeout=TIMEOUT, **kw)
    return Hub(from_url(url, namespace=namespace, timeout=TIMEOUT), settings=settings)


async def take(sub: Any, n: int, timeout: float = 15) -> list[Event]:
    out: list[Event] = []
    async with asyncio.timeout(timeout):
        async for event in sub:
            out.append(event)
            if len(out) == n:
                break
    return out


def cli(server: RedisServer, *args: str) -> str:
    return subprocess.run([REDIS_CLI, "-p", str(server.port), *args], capture_output=True, check=True,
                          timeout=10, text=True).stdout.strip()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own (it gets killed), no persistence."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def ns() -> str:
    return "t-" + uuid.uuid4().hex[:10]


@pytest.fixture
async def two_hubs(redis_server: RedisServer, ns: str) -> AsyncIterator[tuple[Hub, Hub]]:
    a, b = hub_on(redis_server.url, ns), hub_on(redis_server.url, ns)
    async with a, b:
        yield a, b


async def test_two_hubs_on_one_namespace_are_one_hub(two_hubs: tuple[Hub, Hub]) -> None:
    a, b = two_hubs
    live_b = b.subscribe(["x", "y"])
    ids = [await a.publish("x", "1"), await b.publish(["x", "y"], "2"), await a.publish("y", "3")]
    got = await take(live_b, 3)
    assert [(e.data, e.id) for e in got] == [("1", ids[0]), ("2", ids[1]), ("3", ids[2])]
    positions = [parse_id(i) for i in ids]
    assert all(positions)
    assert positions == sorted(p for p in positions if p) and len({p.epoch for p in positions if p}) == 1
    # resume on A (which never cached x or y) with an id handed out by B
    assert [e.data for e in await take(a.subscribe(["x", "y"], last_event_id=ids[1]), 1)] == ["3"]
    assert [e.data for e in await take(a.subscribe("x", last_event_id="earliest"), 2)] == ["1", "2"]


async def test_concurrent_publishers_on_two_hubs_get_strictly_increasing_ids(
        two_hubs: tuple[Hub, Hub]) -> None:
    a, b = two_hubs
    sub = a.subscribe("t")

    async def burst(hub: Hub, tag: str) -> list[str]:
        return [await hub.publish("t", f"{tag}{i}") for i in range(100)]

    ids_a, ids_b = await asyncio.gather(burst(a, "a"), burst(b, "b"))
    got = await take(sub, 200)
    seen = [p for e in got if (p := parse_id(e.id or "")) is not None]
    assert len(seen) == len(got)
    assert seen == sorted(seen) and len(set(seen)) == 200  # one order, every event once
    assert {e.id for e in got} == set(ids_a) | set(ids_b)


async def test_a_batch_is_one_round_trip_with_consecutive_ids(two_hubs: tuple[Hub, Hub]) -> None:
    a, _ = two_hubs
    before = a.stats["broker_round_trips"]
    ids = await a.commit_many([a.prepare("t", str(i)) for i in range(50)])
    assert a.stats["broker_round_trips"] == before + 1
    seqs = [parse_id(i).seq for i in ids]  # type: ignore[union-attr]
    assert seqs == list(range(seqs[0], seqs[0] + 50))


async def test_concurrent_publishes_share_script_calls(two_hubs: tuple[Hub, Hub]) -> None:
    a, b = two_hubs
    sub = b.subscribe("t")
    before = a.stats["broker_round_trips"]
    ids = await asyncio.gather(*(a.publish("t", str(i)) for i in range(200)))
    assert a.stats["broker_round_trips"] - before < 200  # grouped: fewer calls than events
    got = {e.data: e.id for e in await take(sub, 200)}
    assert [got[str(i)] for i in range(200)] == list(ids)  # each caller got its own event's id
    assert len(set(ids)) == 200


async def test_script_cache_flush_is_survived(redis_server: RedisServer, ns: str) -> None:
    async with hub_on(redis_server.url, ns) as hub:
        await hub.publish("t", "before")
        cli(redis_server, "SCRIPT", "FLUSH")  # as after a Redis restart: NOSCRIPT, load again
        assert parse_id(await hub.publish("t", "after")) is not None


async def test_topic_streams_keep_the_retention_and_the_warm_load_is_exact(redis_server: RedisServer,
                                                                           ns: str) -> None:
    async with hub_on(redis_server.url, ns, history_size=5) as a:
        ids = [await a.publish("t", str(i)) for i in range(300)]
        length = int(cli(redis_server, "XLEN", "{" + ns + "}:t:t"))
        assert 5 <= length < 300  # MAXLEN ~ 5: at least 5 kept, trimmed by whole nodes
        async with hub_on(redis_server.url, ns, history_size=5) as b:
            got = await take(b.subscribe("t", last_event_id=ids[200]), 6)
            assert json.loads(got[0].data)["reason"] == "evicted"
            assert [e.data for e in got[1:]] == [str(i) for i in range(295, 300)]
            got = await take(b.subscribe("t", last_event_id=ids[296]), 3)
            assert [e.data for e in got] == ["297", "298", "299"]


async def test_outage_gives_prompt_503_then_everything_acknowledged_arrives(own_redis: RedisServer,
                                                                           ns: str) -> None:
    async with hub_on(own_redis.url, ns) as a, hub_on(own_redis.url, ns) as b:
        sub = b.subscribe("t")
        acked = [await a.publish("t", "0")]
        assert [e.data for e in await take(sub, 1)] == ["0"]
        own_redis.proc.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]  # hung, sockets open
        try:
            for _ in range(3):
                t0 = time.monotonic()
                with pytest.raises(BrokerUnavailable):
                    await a.publish("t", "lost")
                assert time.monotonic() - t0 < 3 * TIMEOUT + 2  # bounded, never a hang
            assert not await a.healthy()
        finally:
            own_redis.proc.send_signal(signal.SIGCONT)  # type: ignore[union-attr]
        assert a.stats["broker_up"] == 0 and a.stats["broker_outages"] == 1  # once per outage
        own_redis.kill()
        with pytest.raises(BrokerUnavailable):
            await a.publish("t", "lost")
        assert a.stats["broker_outages"] == 1
        own_redis.start()  # empty again: a new epoch

        async def published() -> str | None:
            try:
                return await a.publish("t", "1")
            except BrokerUnavailable:
                return None

        acked.append(await wait_until(published, timeout=15, interval=0.1, what="a publish after restart"))
        acked.append(await a.publish("t", "2"))
        got = await take(sub, 3)
        gap = json.loads(got[0].data)
        assert got[0].event == "gap" and gap["reason"] == "reset" and gap["last_event_id"] == acked[0]
        assert [(e.data, e.id) for e in got[1:]] == [("1", acked[1]), ("2", acked[2])]
        assert parse_id(acked[1]) > parse_id(acked[0])  # type: ignore[operator]  # a larger epoch
        assert a.stats["broker_up"] == 1 and b.stats["broker_up"] == 1
        assert await a.healthy()


def snapshot(server: RedisServer, ns: str) -> dict[bytes, tuple[bytes, int]]:
    """DUMP every key of a namespace (a consistent point-in-time copy, like an RDB or AOF)."""
    r = redis.Redis(port=server.port)
    try:
        return {k: (r.dump(k), r.pttl(k)) for k in r.scan_iter(match="{" + ns + "}:*")}  # type: ignore[misc]
    finally:
        r.close()


def roll_back(server: RedisServer, ns: str, dumps: dict[bytes, tuple[bytes, int]]) -> None:
    """Put the namespace back as it was in ``dumps``: Redis 'lost its last writes'."""
    r = redis.Redis(port=server.port)
    try:
        r.delete(*r.scan_iter(match="{" + ns + "}:*"))
        for key, (value, ttl) in dumps.items():
            r.restore(key, max(ttl, 0), value)
    finally:
        r.close()


async def test_resume_into_an_uncached_topic_during_an_outage_is_refused_then_works(
        own_redis: RedisServer, ns: str) -> None:
    async with hub_on(own_redis.url, ns) as hub:
        first = await hub.publish("t", "kept")
        await hub.publish("t", "next")
        own_redis.proc.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]
        try:
            live = hub.subscribe("t")  # a live subscription needs no history: it opens at once
            await live.start()
            resumed = hub.subscribe("t", last_event_id=first)  # needs t's history from Redis
            t0 = time.monotonic()
            with pytest.raises(BrokerUnavailable):
                await resumed.start()
            assert time.monotonic() - t0 < 4 * TIMEOUT + 2
            resumed.close()
        finally:
            own_redis.proc.send_signal(signal.SIGCONT)  # type: ignore[union-attr]
        again = hub.subscribe("t", last_event_id=first)
        assert [e.data for e in await take(again, 1)] == ["next"]  # loaded once Redis answers


async def test_redis_behind_what_the_hubs_saw_starts_a_new_epoch(redis_server: RedisServer, ns: str) -> None:
    # AOF everysec can lose the last second of writes: {ns}:seq then is below ids handed out.
    async with hub_on(redis_server.url, ns) as a:
        sub = a.subscribe("t")
        ids = [await a.publish("t", str(i)) for i in range(2)]
        dumps = snapshot(redis_server, ns)
        ids += [await a.publish("t", str(i)) for i in range(2, 5)]
        roll_back(redis_server, ns, dumps)  # Redis forgot the last three
        new = await a.publish("t", "after")
        assert parse_id(new) > parse_id(ids[-1])  # type: ignore[operator]
        assert parse_id(new).epoch > parse_id(ids[-1]).epoch  # type: ignore[union-attr]
        got = await take(sub, 7)
        assert [e.data for e in got[:5]] == ["0", "1", "2", "3", "4"]
        assert got[5].event == "gap" and json.loads(got[5].data) == {
            "topic": "t", "last_event_id": ids[-1], "reason": "reset"}
        assert (got[6].data, got[6].id) == ("after", new)
        # an old-epoch id on resume: other-epoch, then what this epoch retains
        got = await take(a.subscribe("t", last_event_id=ids[2]), 2)
        assert json.loads(got[0].data)["reason"] == "other-epoch"
        assert got[1].data == "after"


async def test_flushed_namespace_is_noticed_while_idle(redis_server: RedisServer, ns: str) -> None:
    async with hub_on(redis_server.url, ns) as a:
        sub = a.subscribe("t")
        both = a.subscribe(["t", "u"])
        old = await a.publish("t", "old")
        cli(redis_server, "DEL", *("{" + ns + "}:" + k for k in ("epoch", "seq", "log", "t:t")))
        got = await take(sub, 2)  # the idle reader re-checks the epoch within a second or so
        assert got[0].data == "old"
        assert got[1].event == "gap" and json.loads(got[1].data)["reason"] == "reset"
        new = await a.publish("t", "new")
        assert parse_id(new) > parse_id(old)  # type: ignore[operator]
        assert (await take(sub, 1))[0].data == "new"
        # a multi-topic subscription that had not read "old" yet: one gap per topic (from the
        # position it started at: "old" was dropped with the lost history), then the new epoch
        got = await take(both, 3)
        assert sorted(json.loads(e.data)["topic"] for e in got[:2]) == ["t", "u"]
        assert all(json.loads(e.data)["reason"] == "reset" for e in got[:2])
        assert (got[2].data, got[2].id) == ("new", new)


async def test_a_reader_left_behind_by_the_feed_trimming_says_so(redis_server: RedisServer, ns: str) -> None:
    a, b = hub_on(redis_server.url, ns), hub_on(redis_server.url, ns)
    a.broker.feed_maxlen = b.broker.feed_maxlen = 10  # type: ignore[attr-defined]
    async with a, b:
        sub = b.subscribe("t")
        first = await a.publish("t", "seen")
        assert [e.data for e in await take(sub, 1)] == ["seen"]
        reader = b.broker._task  # type: ignore[attr-defined]
        reader.cancel()  # B stops reading (as if cut off from Redis) …
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        for i in range(1000):  # … while the feed moves on and is trimmed past B's position
            await a.publish("t", str(i))
        b.broker._task = asyncio.create_task(b.broker._read_feed(synced=False))  # type: ignore[attr-defined]
        last = await a.publish("t", "after")
        gap = (await take(sub, 1))[0]
        assert gap.event == "gap" and json.loads(gap.data) == {
            "topic": "t", "last_event_id": first, "reason": "reset"}
        rest: list[Event] = []
        while not rest or rest[-1].data != "after":  # then what the feed still holds, in order
            rest += await take(sub, 1)
        assert rest[-1].id == last
        tail = [int(e.data) for e in rest[:-1]]
        assert tail == list(range(tail[0], 1000)) and tail[0] > 0


def test_importing_the_brokers_does_not_import_redis() -> None:
    code = "import sys, ssehub.brokers, ssehub.asgi; assert 'redis' not in sys.modules, 'imported eagerly'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


async def test_unreachable_or_silent_redis_fails_fast(ns: str) -> None:
    # a TCP peer that accepts and never answers (a half-open Redis)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    port = silent.getsockname()[1]
    try:
        for url in (f"redis://127.0.0.1:{port}", "redis://127.0.0.1:1"):
            t0 = time.monotonic()
            with pytest.raises(BrokerUnavailable):
                await hub_on(url, ns).start()
            assert time.monotonic() - t0 < 3 * TIMEOUT + 2
    finally:
        silent.close()


@pytest.mark.parametrize("form", ["scheme", "query"])
async def test_redis_cluster_publish_subscribe_resume(redis_cluster: RedisCluster, ns: str,  # noqa: F811
                                                      form: str) -> None:
    url = redis_cluster.url
    if form == "query":
        url = url.replace("redis+cluster", "redis") + "?cluster=1"
    async with hub_on(url, ns) as a, hub_on(url, ns) as b:
        assert isinstance(a.broker, RedisBroker)
        live = b.subscribe(["x", "y"])
        ids = [await a.publish("x", "1"), await a.publish(["x", "y"], "2"), await b.publish("y", "3")]
        assert [e.data for e in await take(live, 3)] == ["1", "2", "3"]
        got = await take(b.subscribe(["x", "y"], last_event_id=ids[0]), 2)
        assert [(e.data, e.id) for e in got] == [("2", ids[1]), ("3", ids[2])]
        assert await a.healthy()


def test_missing_redis_server_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(support_redis, "REDIS_SERVER", "/nonexistent/redis-server")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        support_redis.require_redis()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run the Redis tests"):
        support_redis.require_redis()
