"""The hub in process: fan-out, exact resume, gaps for every way continuity can break.

No test sleeps: heartbeats are driven with hub.tick(), and waits are bounded by timeouts.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest

from ssehub import Hub
from ssehub.core import SlowConsumer, parse_id
from ssehub.core.topic import Waker
from ssehub.errors import HubClosed, InvalidField, InvalidTopic
from ssehub.wire import Event, Parser
from tests.support.wait import wait_until

MakeHub = Callable[..., Hub]


async def take(sub, n: int) -> list[Event]:  # type: ignore[no-untyped-def]
    out = []
    async with asyncio.timeout(5):
        async for event in sub:
            out.append(event)
            if len(out) == n:
                break
    return out


def parse_chunks(chunks: list[bytes]) -> list[Event]:
    parser = Parser()
    return [e for c in chunks for e in parser.feed(c)]


async def test_publish_returns_increasing_ids_across_topics(make_hub: MakeHub) -> None:
    async with make_hub() as hub:
        ids = [await hub.publish(t, "x") for t in ("a", "b", "a", "c")]
    positions = [parse_id(i) for i in ids]
    assert all(p is not None for p in positions)
    assert [p.seq for p in positions] == [1, 2, 3, 4]  # type: ignore[union-attr]
    assert len({p.epoch for p in positions}) == 1  # type: ignore[union-attr]


async def test_new_subscriber_gets_only_later_events(make_hub: MakeHub) -> None:
    async with make_hub() as hub:
        await hub.publish("t", "before")
        sub = hub.subscribe("t")
        await hub.publish("t", "after")
        assert [e.data for e in await take(sub, 1)] == ["after"]


async def test_fanout_every_subscriber_every_event_in_order(make_hub: MakeHub) -> None:
    async with make_hub() as hub:
        subs = [hub.subscribe("t") for _ in range(50)]

        async def reader(sub) -> list[str]:  # type: ignore[no-untyped-def]
            return [e.data for e in await take(sub, 200)]

        tasks = [asyncio.create_task(reader(s)) for s in subs]
        for i in range(200):
            await hub.publish("t", str(i))
            if i % 17 == 0:
                await asyncio.sleep(0)
        results = await asyncio.gather(*tasks)
    assert all(r == [str(i) for i in range(200)] for r in results)


async def test_next_chunk_coalesces_many_events_into_one_write(make_hub: MakeHub) -> None:
    async with make_hub() as hub:
        sub = hub.subscribe("t")
        for i in range(10):
            await hub.publish("t", str(i))
        chunk = await sub.next_chunk()
        assert [e.data for e in parse_chunks([chunk])] == [str(i) for i in range(10)]


async def test_chunks_are_bounded_by_max_chunk_bytes(make_hub: MakeHub) -> None:
    async with make_hub(max_chunk_bytes=150) as hub:
        sub = hub.subscribe("t", last_event_id="earliest")
        for i in range(20):
            await hub.publish("t", "x" * 30 + str(i))
        chunks: list[bytes] = []
        while sum(c.count(b"\n\n") for c in chunks) < 20:
            chunks.append(await sub.next_chunk())
        assert all(len(c) <= 150 for c in chunks)
        assert 5 < len(chunks) < 20  # several events per write, but never over the limit
        assert [e.data[30:] for e in parse_chunks(chunks)] == [str(i) for i in range(20)]


async def test_resume_after_id_is_exact_and_exactly_once(make_hub: MakeHub) -> None:
    async with make_hub() as hub:
        ids = [await hub.publish("t", str(i)) for i in range(10)]
        sub = hub.subscribe("t", last_event_id=ids[4])
        got = await take(sub, 5)
        assert [e.data for e in got] == ["5", "6", "7", "8", "9"]
        assert [e.id for e in got] == ids[5:]


async def test_earliest_is_all_retained_history_without_gap(make_hub: MakeHub) -> None:
    async with make_hub(history_size=3) as hub:
        for i in range(5):
            await hub.publish("t", str(i))
        got = await take(hub.subscribe("t", last_event_id="earliest"), 3)
        assert [e.data for e in got] == ["2", "3", "4"]


async def test_multi_topic_merge_in_seq_order_and_one_event_once(make_hub: MakeHub) -> None:
    async with make_hub() as hub:
        first = await hub.publish("a", "a0")
        await hub.publish("b", "b1")
        await hub.publish(["a", "b"], "both")
        await hub.publish("a", "a3")
        got = await take(hub.subscribe(["a", "b"], last_event_id=first), 3)
        assert [e.data for e in got] == ["b1", "both", "a3"]
        # and a live subscriber sees a multi-topic event exactly once too
        sub = hub.subscribe(["b", "a"])
        await hub.publish(["a", "b"], "again")
        await hub.publish("b", "after")
        assert [e.data for e in await take(sub, 2)] == ["again", "after"]


async def test_multi_topic_resume_from_one_id_is_exact(make_hub: MakeHub) -> None:
    async with make_hub() as hub:
        ids = [await hub.publish("ab"[i % 2], str(i)) for i in range(10)]
        got = await take(hub.subscribe(["a", "b"], last_event_id=ids[6]), 3)
        assert [e.data for e in got] == ["7", "8", "9"]


def gap_of(event: Event) -> dict[str, object]:
    assert event.event == "gap" and event.id is None
    return json.loads(event.data)  # type: ignore[no-any-return]


async def test_gap_when_history_was_evicted_then_oldest_retained(make_hub: MakeHub) -> None:
    async with make_hub(history_size=3) as hub:
        ids = [await hub.publish("t", str(i)) for i in range(6)]
        got = await take(hub.subscribe("t", last_event_id=ids[1]), 4)
        assert gap_of(got[0]) == {"topic": "t", "last_event_id": ids[1], "reason": "evicted"}
        assert [e.data for e in got[1:]] == ["3", "4", "5"]
        # resuming from an id whose successors are all still retained: no gap
        got = await take(hub.subscribe("t", last_event_id=ids[2]), 3)
        assert [e.data for e in got] == ["3", "4", "5"]


async def test_gap_only_for_the_topic_whose_continuity_broke(make_hub: MakeHub) -> None:
    async with make_hub(history_size=2) as hub:
        start = await hub.publish("quiet", "q0")
        for i in range(5):
            await hub.publish("busy", str(i))
        await hub.publish("quiet", "q1")
        got = await take(hub.subscribe(["quiet", "busy"], last_event_id=start), 4)
        assert gap_of(got[0])["topic"] == "busy"
        assert [e.data for e in got[1:]] == ["3", "4", "q1"]


@pytest.mark.parametrize(
    ("given", "reason"),
    [("12-3", "other-epoch"), ("garbage", "unknown-id"), ("1-2-3", "unknown-id")],
)
async def test_gap_for_ids_this_hub_cannot_place(given: str, reason: str, make_hub: MakeHub) -> None:
    async with make_hub() as hub:
        await hub.publish("t", "kept")
        got = await take(hub.subscribe(["t", "u"], last_event_id=given), 3)
        assert [gap_of(e) for e in got[:2]] == [
            {"topic": "t", "last_event_id": given, "reason": reason},
            {"topic": "u", "last_event_id": given, "reason": reason},
        ]
        assert got[2].data == "kept"


async def test_gap_for_an_id_from_the_future(make_hub: MakeHub) -> None:
    async with make_hub() as hub:
        ident = await hub.publish("t", "x")
        pos = parse_id(ident)
        assert pos is not None
        got = await take(hub.subscribe("t", last_event_id=f"{pos.epoch}-{pos.seq + 5}"), 2)
        assert gap_of(got[0])["reason"] == "future-id"
        assert got[1].data == "x"


async def test_ids_after_a_hub_restart_resume_exactly_or_are_from_another_epoch(
        make_hub: MakeHub, broker_kind: str) -> None:
    async with make_hub() as hub:
        old = await hub.publish("t", "before")
    async with make_hub() as hub:  # a restarted process (on the same Redis namespace)
        await hub.publish("t", "new")
        if broker_kind == "memory":  # memory does not survive a restart
            got = await take(hub.subscribe("t", last_event_id=old), 2)
            assert gap_of(got[0])["reason"] == "other-epoch"
            got = got[1:]
        else:  # Redis kept the history and the epoch: the resume is exact
            got = await take(hub.subscribe("t", last_event_id=old), 1)
        assert [e.data for e in got] == ["new"]
        assert parse_id(got[0].id or "") > parse_id(old)  # type: ignore[operator]


async def test_slow_consumer_gets_a_gap_and_continues_from_oldest(make_hub: MakeHub) -> None:
    async with make_hub(history_size=5) as hub:
        sub = hub.subscribe("t")
        first = await hub.publish("t", "0")
        assert [e.data for e in await take(sub, 1)] == ["0"]
        for i in range(1, 20):
            await hub.publish("t", str(i))
        got = await take(sub, 6)
        assert gap_of(got[0]) == {"topic": "t", "last_event_id": first, "reason": "slow-consumer"}
        assert [e.data for e in got[1:]] == ["15", "16", "17", "18", "19"]


async def test_slow_consumer_disconnect_policy(make_hub: MakeHub) -> None:
    async with make_hub(history_size=5, slow_consumer="disconnect") as hub:
        sub = hub.subscribe("t")
        for i in range(20):
            await hub.publish("t", str(i))
        with pytest.raises(SlowConsumer):
            await sub.next_chunk()
        assert hub.subscriber_count("t") == 0


async def test_memory_is_bounded_by_retention_not_by_subscribers(make_hub: MakeHub) -> None:
    async with make_hub(history_size=1000, history_bytes=64 * 1024) as hub:
        subs = [hub.subscribe("t") for _ in range(100)]  # none of them reads
        for _ in range(2000):
            await hub.publish("t", "x" * 1000)
        log = hub.topic("t").log
        assert log.retained_bytes <= 64 * 1024
        assert len(log.seqs) - (log.first - log.base) == len(log)
        assert sum(len(f) for f in log.frames) <= 64 * 1024
        for s in subs:
            s.close()


async def test_invalid_publications_are_rejected_and_spend_no_id(make_hub: MakeHub) -> None:
    async with make_hub() as hub:
        sub = hub.subscribe("t")
        with pytest.raises(InvalidField):
            await hub.publish("t", "x", event="a\nb")
        with pytest.raises(InvalidField):
            await hub.publish("t", "x", retry=-1)
        with pytest.raises(InvalidTopic):
            await hub.publish("", "x")
        with pytest.raises(InvalidTopic):
            await hub.publish("a\x00b", "x")
        with pytest.raises(InvalidTopic):
            await hub.publish("x" * 257, "x")
        good = await hub.publish("t", "ok")
        assert parse_id(good).seq == 1  # type: ignore[union-attr]
        assert [e.data for e in await take(sub, 1)] == ["ok"]


async def test_heartbeat_tick_returns_empty_chunk_to_idle_subscribers(make_hub: MakeHub) -> None:
    async with make_hub() as hub:
        sub = hub.subscribe("t")
        waiting = asyncio.create_task(sub.next_chunk())
        await asyncio.sleep(0)
        assert not waiting.done()
        hub.tick()
        assert await asyncio.wait_for(waiting, 5) == b""


async def test_close_ends_subscriptions_after_delivering_what_was_accepted(make_hub: MakeHub) -> None:
    hub = await make_hub().start()
    sub = hub.subscribe("t")
    waiting = asyncio.create_task(take(sub, 10))
    await asyncio.sleep(0)
    await hub.publish("t", "last words")
    await hub.close()
    assert [e.data for e in await asyncio.wait_for(waiting, 5)] == ["last words"]
    with pytest.raises(HubClosed):
        await hub.publish("t", "too late")
    with pytest.raises(HubClosed):
        hub.subscribe("t")


async def test_a_cancelled_subscriber_does_not_break_the_shared_wakeup(make_hub: MakeHub) -> None:
    async with make_hub() as hub:
        a, b = hub.subscribe("t"), hub.subscribe("t")
        ta = asyncio.create_task(a.next_chunk())
        tb = asyncio.create_task(b.next_chunk())
        await asyncio.sleep(0)
        ta.cancel()  # cancels the future both are awaiting
        await asyncio.sleep(0)
        assert not tb.done() or tb.result() is not None
        await hub.publish("t", "still here")
        chunk = await asyncio.wait_for(tb, 5)
        assert b"still here" in chunk


async def test_presence_listeners_and_counts(make_hub: MakeHub) -> None:
    seen: list[tuple[str, int]] = []
    async with make_hub() as hub:
        hub.add_presence_listener(lambda topic, n: seen.append((topic, n)))
        async with hub.subscribe(["a", "b"]):
            assert hub.subscriber_count("a") == 1
            assert {t["topic"] for t in hub.topics()} == {"a", "b"}
        assert hub.subscriber_count("a") == 0
    assert seen == [("a", 1), ("b", 1), ("a", 0), ("b", 0)]


async def test_idle_topics_are_forgotten_beyond_max_topics_with_a_gap_on_resume(
        make_hub: MakeHub, broker_kind: str) -> None:
    async with make_hub(max_topics=10) as hub:
        first = await hub.publish("t0", "x")
        for i in range(1, 30):
            await hub.publish(f"t{i}", "x")
            hub.subscribe(f"t{i}", last_event_id="earliest").close()  # cache it here
        assert len(hub._topics) <= 10 and "t0" not in hub._topics
        sub = hub.subscribe("t0", last_event_id=first)
        await hub.publish("t0", "y")
        got = await take(sub, 2 if broker_kind == "memory" else 1)
        if broker_kind == "memory":  # its history was only here: forgotten, and said so
            gap = gap_of(got.pop(0))
            assert gap["topic"] == "t0" and gap["reason"] == "evicted"
        # (with Redis: forgotten here, still there: warmed again, the resume is exact)
        assert [e.data for e in got] == ["y"]


async def test_retention_by_prefix_keeps_whole_generations(make_hub: MakeHub) -> None:
    async with make_hub(history_size=3) as hub:
        hub.set_retention("chat/", 100, 1 << 20)
        for i in range(10):
            await hub.publish(["news", "chat/g1"], str(i))
        news = hub.topic("news")
        await hub.ready(news)  # with Redis: loaded from the topic's stream
        assert len(news.log) == 3
        got = await take(hub.subscribe("chat/g1", last_event_id="earliest"), 10)
        assert [e.data for e in got] == [str(i) for i in range(10)]


async def test_subscribing_to_a_hub_that_was_not_started_is_a_clear_error(make_hub: MakeHub) -> None:
    hub = make_hub()
    with pytest.raises(RuntimeError, match="start the hub first"):
        hub.subscribe("t")
    await hub.start()
    hub.subscribe("t").close()
    await hub.close()


async def test_a_leaving_subscriber_wakes_nobody_else(make_hub: MakeHub) -> None:
    # With one future shared by all waiters, cancelling one waiting task would cancel it
    # for everybody: a crowd leaving a topic would cost a quadratic number of wake-ups.
    async with make_hub() as hub:
        subs = [hub.subscribe("t") for _ in range(50)]
        tasks = [asyncio.create_task(s.next_chunk()) for s in subs]
        await asyncio.sleep(0)
        waiters = [w for w in hub.topic("t").waiters if isinstance(w, asyncio.Future)]
        assert len(waiters) == 50
        tasks[0].cancel()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert waiters[0].cancelled()
        assert not any(w.done() for w in waiters[1:])
        assert not any(t.done() for t in tasks[1:])
        await hub.publish("t", "x")
        assert all(b"data: x" in c for c in await asyncio.wait_for(asyncio.gather(*tasks[1:]), 5))


async def test_memory_is_bounded_hub_wide_by_forgetting_idle_topics(
        make_hub: MakeHub, broker_kind: str) -> None:
    async with make_hub(history_bytes=10_000, max_retained_bytes=50_000) as hub:
        first = await hub.publish("t0", "x" * 900)
        hub.subscribe("t0", last_event_id="earliest").close()  # cached here, then idle
        async with hub.subscribe("busy"):
            for i in range(1, 200):
                await hub.publish([f"t{i}", "busy"] if i % 50 == 0 else f"t{i}", "x" * 900)
                if broker_kind == "redis":
                    hub.subscribe(f"t{i}", last_event_id="earliest").close()
            assert hub.retained_bytes <= 50_000
            assert sum(t.log.retained_bytes for t in hub._topics.values()) == hub.retained_bytes
            assert hub.subscriber_count("busy") == 1 and "busy" in {t["topic"] for t in hub.topics()}
        sub = hub.subscribe("t0", last_event_id=first)
        await hub.publish("t0", "y")
        got = await take(sub, 2 if broker_kind == "memory" else 1)
        if broker_kind == "memory":
            assert gap_of(got.pop(0))["reason"] == "evicted"  # forgotten, and said so
        # (with Redis: forgotten here, still there: the resume is exact)
        assert [e.data for e in got] == ["y"]


async def test_library_events_keep_their_fields(make_hub: MakeHub) -> None:
    async with make_hub() as hub:
        sub = hub.subscribe("t")
        ident = await hub.publish("t", "a\nb", event="tick", retry=1500)
        plain = await hub.publish("t", "c")
        got = await take(sub, 2)
        assert got == [Event("a\nb", "tick", ident, 1500), Event("c", None, plain, None)]


async def test_when_ready_calls_back_once_per_wake_up_of_any_topic(make_hub: MakeHub) -> None:
    # the fast front's streams wait with a callback, not a future: it must fire once, from
    # the loop (never inside the publish), however many of the subscription's topics woke it
    async with make_hub() as hub:
        sub = hub.subscribe(["a", "b"])
        await sub.start()
        calls: list[object] = []
        waker = Waker(asyncio.get_running_loop(), calls.append)
        sub.when_ready(waker)
        assert sub.poll() is None
        await hub.commit_many([hub.prepare(["a", "b"], "x")])
        await wait_until(lambda: calls == [None], what="the wake-up callback")
        await hub.publish("a", "y")
        await asyncio.sleep(0.05)
        assert calls == [None]  # one-shot: a second wake-up needs the waker armed again
        chunk = sub.poll()
        assert chunk is not None and chunk.count(b"data: x") == 1 and b"data: y" in chunk
        sub.when_ready(waker)  # re-armed (also still listed on "b", from the first arming)
        await hub.commit_many([hub.prepare(["a", "b"], "z")])
        await wait_until(lambda: calls == [None, None], what="the second wake-up")
        await asyncio.sleep(0.05)
        assert calls == [None, None]
        sub.close()


async def test_a_wake_up_callback_is_never_run_inside_the_publish() -> None:
    async with Hub() as hub:  # memory: the publish applies (and wakes) synchronously
        sub = hub.subscribe("a")
        calls: list[object] = []
        sub.when_ready(Waker(asyncio.get_running_loop(), calls.append))
        await hub.publish("a", "x")
        assert calls == []
        await asyncio.sleep(0)
        assert calls == [None]
