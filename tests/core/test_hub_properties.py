"""Property: resuming from any id yields, per topic, exactly the events published after it —
or a gap for that topic followed by its oldest retained events. Never a silent loss, never a
duplicate, always in id order."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssehub import Hub, Settings
from ssehub.brokers import from_url
from ssehub.core import parse_id
from tests.support.redis import RedisServer

TOPICS = ["a", "b", "c"]

publications = st.lists(
    st.lists(st.sampled_from(TOPICS), min_size=1, max_size=3, unique=True), min_size=1, max_size=40
)


async def scenario(pubs: list[list[str]], history: int, resume_at: int, subscribed: list[str],
                   url: str = "memory://") -> None:
    namespace = "prop-" + uuid.uuid4().hex[:12]
    settings = Settings(heartbeat=3600, history_size=history)
    async with Hub(from_url(url, namespace=namespace), settings=settings) as hub:
        ids = [await hub.publish(topics, str(i)) for i, topics in enumerate(pubs)]
        resume_id = ids[resume_at]
        sub = hub.subscribe(subscribed, last_event_id=resume_id)
        await sub.start()  # with Redis: loads the topics' history
        got = []
        while True:
            chunk = sub.poll()
            if not chunk:
                break
            got.extend(chunk.split(b"\n\n")[:-1])
        sub.close()

    gaps = []
    events = []
    for frame in got:
        lines = frame.decode().split("\n")
        if lines[0] == "event: gap":
            gaps.append(json.loads(lines[1][len("data: "):]))
        else:
            events.append((lines[0][len("id: "):], lines[-1][len("data: "):]))

    # the model: what each topic retains, and whether anything after the resume point was evicted
    retained: dict[str, list[int]] = {t: [] for t in TOPICS}
    for i, topics in enumerate(pubs):
        for t in topics:
            retained[t].append(i)
    evicted = {t: v[:-history] for t, v in retained.items()}
    kept = {t: v[-history:] for t, v in retained.items()}
    broken = {t for t in subscribed if any(i > resume_at for i in evicted[t])}

    assert not any(g for g in gaps if g["topic"] not in subscribed)
    assert {g["topic"] for g in gaps} == broken
    assert all(g["reason"] == "evicted" and g["last_event_id"] == resume_id for g in gaps)
    assert len(gaps) == len(broken)
    # gaps come before every event
    assert all(f.startswith(b"event: gap") for f in got[: len(gaps)])

    expected: set[int] = set()
    for t in subscribed:
        expected |= set(kept[t]) if t in broken else {i for i in kept[t] if i > resume_at}
    assert [int(d) for _, d in events] == sorted(expected)  # in order, each once
    assert [i for i, _ in events] == [ids[int(d)] for _, d in events]
    seqs = [parse_id(i).seq for i, _ in events]  # type: ignore[union-attr]
    assert seqs == sorted(set(seqs))


@settings(max_examples=150, deadline=None)
@given(
    pubs=publications,
    history=st.integers(1, 8),
    data=st.data(),
    subscribed=st.lists(st.sampled_from(TOPICS), min_size=1, max_size=3, unique=True),
)
def test_resume_is_exact_or_signalled(pubs, history, data, subscribed) -> None:  # type: ignore[no-untyped-def]
    resume_at = data.draw(st.integers(0, len(pubs) - 1))
    asyncio.run(scenario(pubs, history, resume_at, subscribed))


@pytest.fixture(scope="module")
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


def test_resume_is_exact_or_signalled_on_redis(redis_url: str) -> None:
    """The same property with the Redis broker: history loaded from the topic streams."""

    @settings(max_examples=30, deadline=None)
    @given(
        pubs=publications,
        history=st.integers(1, 8),
        data=st.data(),
        subscribed=st.lists(st.sampled_from(TOPICS), min_size=1, max_size=3, unique=True),
    )
    def check(pubs, history, data, subscribed) -> None:  # type: ignore[no-untyped-def]
        resume_at = data.draw(st.integers(0, len(pubs) - 1))
        asyncio.run(scenario(pubs, history, resume_at, subscribed, redis_url))

    check()
