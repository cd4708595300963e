"""SPEC §6 with real processes: three `ssehub serve --broker redis://…` on one Redis behave as
one hub — publish anywhere, subscribe anywhere, resume anywhere, one order of ids."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from ssehub.core import parse_id
from tests.support.fixtures import Serve, redis_server  # noqa: F401
from tests.support.redis import RedisServer
from tests.support.serve import ServeProcess
from tests.support.sse import SSEStream, gap_info, subscribe_target


async def publish(http: httpx.AsyncClient, base: str, topic: str | list[str], data: str) -> str:
    response = await http.post(base + "/publish", json={"topic": topic, "data": data})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def open_stream(port: int, streams: list[SSEStream], topics: str | list[str],
                      **params: str) -> SSEStream:
    stream = await SSEStream.open(port, subscribe_target(topics, **params))
    streams.append(stream)
    assert stream.status == 200, stream.body
    return stream


@pytest.fixture
async def three(serve: Serve, redis_server: RedisServer) -> list[ServeProcess]:  # noqa: F811
    namespace = "e2e-" + uuid.uuid4().hex[:10]
    args = ("--broker", redis_server.url, "--namespace", namespace)
    return list(await asyncio.gather(*(serve(*args) for _ in range(3))))


async def test_publish_on_one_process_reaches_subscribers_on_the_others(
        three: list[ServeProcess], http: httpx.AsyncClient, sse_streams: list[SSEStream]) -> None:
    a, b, c = three
    on_b = await open_stream(b.port, sse_streams, "news")
    on_c = await open_stream(c.port, sse_streams, "news")
    ids = [await publish(http, a.url, "news", f"n{i}") for i in range(3)]
    for stream in (on_b, on_c):
        got = await stream.read_events(3)
        assert [(e.id, e.data) for e in got] == list(zip(ids, ["n0", "n1", "n2"], strict=True))
    health = await http.get(b.url + "/healthz")
    assert health.status_code == 200


async def test_ids_strictly_increase_across_processes_with_concurrent_publishers(
        three: list[ServeProcess], http: httpx.AsyncClient, sse_streams: list[SSEStream]) -> None:
    a, b, c = three
    watchers = [await open_stream(p.port, sse_streams, "race") for p in three]

    async def publisher(p: ServeProcess, tag: str) -> list[str]:
        return [await publish(http, p.url, "race", f"{tag}{i}") for i in range(50)]

    results = await asyncio.gather(publisher(a, "a"), publisher(a, "A"), publisher(b, "b"), publisher(c, "c"))
    for ids in results:  # each publisher sees its own ids increase
        assert [parse_id(i) for i in ids] == sorted(parse_id(i) for i in ids)  # type: ignore[type-var]
    every = {i for ids in results for i in ids}
    assert len(every) == 200
    for stream in watchers:  # every process delivers the one order, every event once
        got = await stream.read_events(200)
        positions = [parse_id(e.id or "") for e in got]
        assert positions == sorted(positions) and len(set(positions)) == 200  # type: ignore[type-var]
        assert {e.id for e in got} == every
    assert [e.id for e in watchers[0].events] == [e.id for e in watchers[2].events]


async def test_resume_on_another_process_single_and_multi_topic(
        three: list[ServeProcess], http: httpx.AsyncClient, sse_streams: list[SSEStream]) -> None:
    a, b, c = three
    ids = [await publish(http, a.url, "ab"[i % 2] if i % 3 else ["a", "b"], str(i)) for i in range(9)]
    single = await open_stream(c.port, sse_streams, "a", last_event_id=ids[3])
    want_a = [(ids[i], str(i)) for i in range(4, 9) if i % 3 == 0 or i % 2 == 0]
    assert [(e.id, e.data) for e in await single.read_events(len(want_a))] == want_a
    multi = await open_stream(c.port, sse_streams, ["a", "b"], last_event_id=ids[3])
    assert [(e.id, e.data) for e in await multi.read_events(5)] == [(ids[i], str(i)) for i in range(4, 9)]
    # and live events keep coming on the resumed streams, published elsewhere
    live = await publish(http, b.url, "a", "live")
    assert (await single.next_event()).id == live
    assert (await multi.next_event()).id == live


async def test_earliest_on_a_process_that_never_saw_the_topic(
        three: list[ServeProcess], http: httpx.AsyncClient, sse_streams: list[SSEStream]) -> None:
    a, _, c = three
    ids = [await publish(http, a.url, "hist", str(i)) for i in range(5)]
    stream = await open_stream(c.port, sse_streams, "hist", last_event_id="earliest")
    assert [(e.id, e.data) for e in await stream.read_events(5)] == [(ids[i], str(i)) for i in range(5)]
    # an id from before this namespace's epoch: other-epoch, then all that is retained
    old = await open_stream(c.port, sse_streams, "hist", last_event_id="12-3")
    events = await old.read_events(6)
    assert gap_info(events[0])["reason"] == "other-epoch"
    assert [e.data for e in events[1:]] == [str(i) for i in range(5)]
