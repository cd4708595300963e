"""Hub-wide bounds (max_topics, max_retained_bytes), Hub.publish of any JSON value, hub.stats.

Costs are measured by counting work (topics examined), never by wall-clock time.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from ssehub import Hub
from ssehub.errors import InvalidField
from ssehub.wire import Event

MakeHub = Callable[..., Hub]


async def take(sub: Any, n: int) -> list[Event]:
    out: list[Event] = []
    async with asyncio.timeout(10):
        async for event in sub:
            out.append(event)
            if len(out) == n:
                break
    return out


class CountingDict(dict[str, Any]):
    """A dict that counts how many entries were walked through ``values()``."""

    walked = 0

    def values(self) -> Any:
        for v in super().values():
            CountingDict.walked += 1
            yield v


async def test_forgetting_topics_at_the_cap_does_not_scan_the_subscribed_ones(make_hub: MakeHub) -> None:
    # 2,000 subscribed topics at a cap of 2,000, then 500 publishes of 64 new topics each:
    # every new topic forgets one idle topic. A scan per forget would walk 2,000 × 32,000
    # topics; the LRU of idle topics walks none.
    async with make_hub(max_topics=2000) as hub:
        subs = [hub.subscribe(f"s{i}") for i in range(2000)]
        hub._topics = CountingDict(hub._topics)
        CountingDict.walked = 0
        for i in range(500):
            await hub.publish([f"n{i}-{k}" for k in range(64)], "x")
        if hub.broker.durable:  # uncached topics are not created by a publish: cache them
            for i in range(500):
                hub.subscribe(f"m{i}", last_event_id="earliest").close()
        assert CountingDict.walked == 0
        assert len(hub._topics) <= 2000 + 64
        assert all(hub.subscriber_count(f"s{i}") == 1 for i in range(0, 2000, 97))
        for s in subs:
            s.close()


async def test_retained_bytes_hold_even_when_every_topic_is_subscribed(make_hub: MakeHub) -> None:
    limit = 40_000
    async with make_hub(history_bytes=1 << 20, history_size=10_000, max_retained_bytes=limit) as hub:
        subs = [hub.subscribe(f"t{i}") for i in range(8)]  # none of them reads
        for n in range(400):
            await hub.publish(f"t{n % 8}", "x" * 500)
            assert hub.retained_bytes <= limit
            assert sum(t.log.retained_bytes for t in hub._topics.values()) == hub.retained_bytes
        assert hub.stats["frames_evicted_hub_wide"] > 0
        # a reader whose events were evicted hub-wide is told so before it continues
        got = await take(subs[0], 2)
        gap = json.loads(got[0].data)
        assert got[0].event == "gap" and gap["topic"] == "t0" and gap["reason"] == "slow-consumer"
        assert got[1].event is None and got[1].data == "x" * 500
        assert hub.stats["gaps_slow-consumer"] == 1
        for s in subs:
            s.close()


@pytest.mark.parametrize(("data", "text"), [
    ("plain text", "plain text"),
    ({"b": [1, 2.5, None], "a": "é"}, '{"b":[1,2.5,null],"a":"é"}'),
    ([1, "two"], '[1,"two"]'),
    (42, "42"),
    (None, "null"),
    (True, "true"),
    ("", ""),
])
async def test_publish_takes_any_json_value_like_http(make_hub: MakeHub, data: object, text: str) -> None:
    async with make_hub() as hub:
        sub = hub.subscribe("t")
        ident = await hub.publish("t", data)
        assert await take(sub, 1) == [Event(text, None, ident, None)]


@pytest.mark.parametrize("data", [float("nan"), float("inf"), {"x": object()}, b"bytes"])
async def test_publish_refuses_what_json_cannot_carry(make_hub: MakeHub, data: object) -> None:
    async with make_hub() as hub:
        with pytest.raises(InvalidField):
            await hub.publish("t", data)
        assert hub.stats["published"] == 0


async def test_stats_count_publishes_gaps_and_broker_calls(make_hub: MakeHub, broker_kind: str) -> None:
    async with make_hub(history_size=2) as hub:
        ids = [await hub.publish("t", str(i)) for i in range(5)]
        await hub.commit_many([hub.prepare("t", "a"), hub.prepare(["t", "u"], "b")])
        got = await take(hub.subscribe("t", last_event_id=ids[0]), 3)
        assert got[0].event == "gap"
        stats = hub.stats
        assert stats["published"] == 7
        assert stats["gaps_evicted"] == 1
        assert stats["broker_up"] == 1 and stats["broker_outages"] == 0
        if broker_kind == "redis":  # 6 appends (the batch is one), a history load, the open
            assert stats["broker_round_trips"] >= 8
            assert stats["broker_rtt_seconds_sum"] > 0
        else:
            assert stats["broker_round_trips"] == 0
