"""SPEC §2 delivery guarantee over HTTP: resume with Last-Event-ID / last_event_id / earliest is
exact, and every break of continuity is announced with `event: gap` (never a silent loss)."""

from __future__ import annotations

import httpx

from ssehub.wire import Event
from tests.support.fixtures import HubServer, Serve
from tests.support.serve import ServeProcess
from tests.support.sse import SSEStream, gap_info, subscribe_target
from tests.support.uvicorn import InProcServer


async def publish(http: httpx.AsyncClient, base: str, topic: str | list[str], data: str) -> str:
    response = await http.post(base + "/publish", json={"topic": topic, "data": data})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def open_stream(port: int, sse_streams: list[SSEStream], topics: str | list[str],
                      headers: dict[str, str] | None = None, **params: str) -> SSEStream:
    stream = await SSEStream.open(port, subscribe_target(topics, **params), headers)
    sse_streams.append(stream)
    assert stream.status == 200, stream.body
    return stream


async def assert_next_is_live(
    http: httpx.AsyncClient, server_url: str, topic: str, *streams: SSEStream
) -> None:
    """Nothing else is queued on the streams: the next event of each is one published now."""
    ident = await publish(http, server_url, topic, "live-marker")
    for stream in streams:
        event = await stream.next_event()
        assert (event.id, event.data) == (ident, "live-marker"), event


def pairs(events: list[Event]) -> list[tuple[str | None, str]]:
    return [(e.id, e.data) for e in events]


def gap_frames(stream: SSEStream) -> list[bytes]:
    return [f for f in stream.frames() if b"event: gap" in f]


async def test_resume_with_header_query_and_precedence(
    hub_server: HubServer, http: httpx.AsyncClient, sse_streams: list[SSEStream]
) -> None:
    server: InProcServer = await hub_server()
    first = await open_stream(server.port, sse_streams, "r")
    before = [await publish(http, server.url, "r", f"e{i}") for i in range(3)]
    assert [e.id for e in await first.read_events(3)] == before
    await first.close()
    missed = [(await publish(http, server.url, "r", f"m{i}"), f"m{i}") for i in range(4)]

    # Last-Event-ID header → exactly the missed ones, then live events
    by_header = await open_stream(server.port, sse_streams, "r", {"Last-Event-ID": before[-1]})
    assert pairs(await by_header.read_events(4)) == missed
    # the query parameter (EventSource's first request) does the same
    by_query = await open_stream(server.port, sse_streams, "r", last_event_id=before[-1])
    assert pairs(await by_query.read_events(4)) == missed
    # both given: the header wins (it is what EventSource sends on its reconnects)
    both = await open_stream(server.port, sse_streams, "r", {"Last-Event-ID": before[-1]},
                             last_event_id=before[0])
    assert pairs(await both.read_events(4)) == missed
    # resuming from the newest id: nothing to replay
    at_head = await open_stream(server.port, sse_streams, "r", {"Last-Event-ID": missed[-1][0]})
    # earliest: all retained history
    earliest = await open_stream(server.port, sse_streams, "r", last_event_id="earliest")
    history = [(i, f"e{n}") for n, i in enumerate(before)] + missed
    assert pairs(await earliest.read_events(7)) == history

    # then every stream continues live with the same events: nothing replayed twice
    live = [(await publish(http, server.url, "r", f"live{i}"), f"live{i}") for i in range(3)]
    for s in (by_header, by_query, both, at_head, earliest):
        assert pairs(await s.read_events(3)) == live
        assert all(e.event != "gap" for e in s.events)
        assert s.pending() == []


async def test_gap_when_history_evicted(
    hub_server: HubServer, http: httpx.AsyncClient, sse_streams: list[SSEStream]
) -> None:
    server: InProcServer = await hub_server(history_size=5)
    ids = [await publish(http, server.url, "ev", f"e{i}") for i in range(10)]
    retained = [(ident, f"e{i}") for i, ident in enumerate(ids)][5:]

    lost = await open_stream(server.port, sse_streams, "ev", {"Last-Event-ID": ids[1]})
    events = await lost.read_events(6)
    assert gap_info(events[0]) == {"topic": "ev", "last_event_id": ids[1], "reason": "evicted"}
    assert pairs(events[1:]) == retained  # continues from the oldest retained event
    assert len(gap_frames(lost)) == 1 and b"id:" not in gap_frames(lost)[0]

    # ids[3]: the event after it (ids[4]) is gone too
    also_lost = await open_stream(server.port, sse_streams, "ev", {"Last-Event-ID": ids[3]})
    assert gap_info(await also_lost.next_event())["reason"] == "evicted"
    assert pairs(await also_lost.read_events(5)) == retained

    # ids[4]: everything after it is still retained — exact, no gap
    exact = await open_stream(server.port, sse_streams, "ev", {"Last-Event-ID": ids[4]})
    assert pairs(await exact.read_events(5)) == retained
    await assert_next_is_live(http, server.url, "ev", lost, also_lost, exact)
    assert exact.events[-1].id == lost.events[-1].id
    assert all(e.event != "gap" for e in exact.events)


async def test_gap_for_future_and_unknown_ids(
    hub_server: HubServer, http: httpx.AsyncClient, sse_streams: list[SSEStream]
) -> None:
    server: InProcServer = await hub_server()
    ident = await publish(http, server.url, "f", "only")
    epoch, seq = ident.rsplit("-", 1)  # ARCHITECTURE.md: ids are "<epoch>-<seq>"
    future = f"{epoch}-{int(seq) + 100}"
    stream = await open_stream(server.port, sse_streams, "f", {"Last-Event-ID": future})
    events = await stream.read_events(2)
    assert gap_info(events[0]) == {"topic": "f", "last_event_id": future, "reason": "future-id"}
    assert pairs(events[1:]) == [(ident, "only")]
    await assert_next_is_live(http, server.url, "f", stream)

    garbage = await open_stream(server.port, sse_streams, "f", {"Last-Event-ID": "not-an-id"})
    events = await garbage.read_events(2)
    assert gap_info(events[0]) == {"topic": "f", "last_event_id": "not-an-id", "reason": "unknown-id"}
    assert pairs(events[1:]) == [(ident, "only")]


async def test_multi_topic_subscription_once_in_order_and_exact_resume(
    hub_server: HubServer, http: httpx.AsyncClient, sse_streams: list[SSEStream]
) -> None:
    server: InProcServer = await hub_server()
    stream = await open_stream(server.port, sse_streams, ["a", "b"])
    sent = [
        (await publish(http, server.url, "a", "1"), "1"),
        (await publish(http, server.url, ["a", "b"], "both"), "both"),  # one event, one id
        (await publish(http, server.url, "b", "2"), "2"),
        (await publish(http, server.url, ["b", "a", "c"], "three"), "three"),
    ]
    await publish(http, server.url, "c", "not mine")
    assert pairs(await stream.read_events(4)) == sent
    await assert_next_is_live(http, server.url, "b", stream)  # "both"/"three" not repeated
    last = stream.events[-1].id
    assert last is not None
    await stream.close()

    missed = [
        (await publish(http, server.url, "b", "m1"), "m1"),
        (await publish(http, server.url, ["a", "b"], "m2"), "m2"),
        (await publish(http, server.url, "a", "m3"), "m3"),
        (await publish(http, server.url, "b", "m4"), "m4"),
    ]
    await publish(http, server.url, "c", "not mine either")
    resumed = await open_stream(server.port, sse_streams, ["b", "a"], {"Last-Event-ID": last})
    assert pairs(await resumed.read_events(4)) == missed
    await assert_next_is_live(http, server.url, "a", resumed)
    assert all(e.event != "gap" for e in resumed.events)

    # resuming one topic of the two from an id of the other is exact too (ids are hub-wide)
    only_a = await open_stream(server.port, sse_streams, "a", {"Last-Event-ID": missed[0][0]})
    assert pairs(await only_a.read_events(2)) == [missed[1], missed[2]]


async def test_gap_other_epoch_after_restart(
    serve: Serve, http: httpx.AsyncClient, sse_streams: list[SSEStream]
) -> None:
    """A memory hub forgets everything on restart: an id from before is answered with one gap
    per subscribed topic, then the retained events of the new run."""
    first: ServeProcess = await serve()
    port = first.port
    old = await publish(http, first.url, ["x", "y"], "before restart")
    await first.stop()
    second: ServeProcess = await serve(port=port)
    new_x = await publish(http, second.url, "x", "after restart")
    assert new_x != old
    stream = await open_stream(port, sse_streams, ["x", "y"], {"Last-Event-ID": old})
    events = await stream.read_events(3)
    assert [gap_info(e) for e in events[:2]] == [
        {"topic": "x", "last_event_id": old, "reason": "other-epoch"},
        {"topic": "y", "last_event_id": old, "reason": "other-epoch"},
    ]
    assert pairs(events[2:]) == [(new_x, "after restart")]
    assert len(gap_frames(stream)) == 2 and all(b"id:" not in f for f in gap_frames(stream))
    await assert_next_is_live(http, second.url, "y", stream)
    # ids keep increasing across the restart (digit-aware): epoch first, then seq
    assert tuple(map(int, new_x.split("-"))) > tuple(map(int, old.split("-")))
