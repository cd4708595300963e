"""SPEC §5 limits: exceeding one gives a clear 4xx/503 with a JSON error — never a crash, never a
hang — and the limit frees up again when connections close."""

from __future__ import annotations

import json

import httpx

from tests.support.fixtures import HubServer, Serve
from tests.support.hub import wait_subscribers
from tests.support.serve import ServeProcess
from tests.support.sse import SSEStream, subscribe_target
from tests.support.uvicorn import InProcServer
from tests.support.wait import wait_until


def assert_json_error(stream: SSEStream, status: int) -> str:
    assert stream.status == status, (stream.status, stream.body)
    assert (stream.header("content-type") or "").startswith("application/json")
    error = stream.json()["error"]
    assert isinstance(error, str) and error
    return error


async def test_max_connections_and_topics_per_subscription(
    serve: Serve, http: httpx.AsyncClient, sse_streams: list[SSEStream]
) -> None:
    # every open connection counts (streams, publishers, half-sent heads): 3 streams + 1 client
    hub: ServeProcess = await serve("--max-connections", "4", "--max-topics-per-subscription", "2")
    assert (await http.get(hub.url + "/healthz")).status_code == 200  # the client's keep-alive slot
    opened = []
    for i in range(3):
        stream = await SSEStream.open(hub.port, subscribe_target(f"c{i}"))
        sse_streams.append(stream)
        assert stream.status == 200
        opened.append(stream)
    fifth = await SSEStream.open(hub.port, subscribe_target("c3"))
    sse_streams.append(fifth)
    assert_json_error(fifth, 503)
    await fifth.close()
    # the kept-alive client connection still publishes, and the open streams still work
    ident = (await http.post(hub.url + "/publish", json={"topic": "c0", "data": "x"})).json()["id"]
    assert (await opened[0].next_event()).id == ident
    # a slot frees up when a subscriber leaves
    await opened[1].close()

    async def accepted() -> bool:
        stream = await SSEStream.open(hub.port, subscribe_target("c4"))
        sse_streams.append(stream)
        if stream.status == 503:
            await stream.close()
            return False
        assert stream.status == 200
        return True

    await wait_until(accepted, what="the freed connection slot")

    await opened[0].close()
    await opened[2].close()
    await wait_subscribers(http, hub.url, "c0", 0)
    await wait_subscribers(http, hub.url, "c2", 0)
    too_many = await SSEStream.open(hub.port, subscribe_target(["a", "b", "c"]))
    sse_streams.append(too_many)
    assert "too many topics" in assert_json_error(too_many, 400)
    # duplicates count once: a, b, a is two topics
    two = await SSEStream.open(hub.port, subscribe_target(["a", "b", "a"]))
    sse_streams.append(two)
    assert two.status == 200


async def test_subscribe_request_errors(hub_server: HubServer, sse_streams: list[SSEStream]) -> None:
    server: InProcServer = await hub_server(max_subscriptions_per_client=2)
    for target in ("/subscribe", "/subscribe?topic=", subscribe_target("a\x01b"),
                   subscribe_target("x" * 257), subscribe_target(["ok", "bad\x7f"])):
        stream = await SSEStream.open(server.port, target)
        sse_streams.append(stream)
        assert_json_error(stream, 400)
    for i in range(2):
        stream = await SSEStream.open(server.port, subscribe_target(f"p{i}"))
        sse_streams.append(stream)
        assert stream.status == 200
    third = await SSEStream.open(server.port, subscribe_target("p2"))
    sse_streams.append(third)
    assert_json_error(third, 429)


async def test_max_topics_forgets_idle_topics_with_a_gap(
    hub_server: HubServer, http: httpx.AsyncClient, sse_streams: list[SSEStream]
) -> None:
    server: InProcServer = await hub_server(max_topics=3)
    url = server.url + "/publish"
    old = [(await http.post(url, json={"topic": "t0", "data": f"old{i}"})).json()["id"] for i in range(2)]
    for i in range(1, 6):  # more topics than max_topics: the least recently used idle ones go
        assert (await http.post(url, json={"topic": f"t{i}", "data": "x"})).status_code == 200
    listed = {t["topic"] for t in (await http.get(server.url + "/topics")).json()["topics"]}
    assert "t0" not in listed and len(listed) <= 3, listed
    stream = await SSEStream.open(server.port, subscribe_target("t0"), {"Last-Event-ID": old[0]})
    sse_streams.append(stream)
    gap = await stream.next_event()
    assert gap.event == "gap"
    assert json.loads(gap.data) == {"topic": "t0", "last_event_id": old[0], "reason": "evicted"}
    ident = (await http.post(url, json={"topic": "t0", "data": "new"})).json()["id"]
    assert (await stream.next_event()).id == ident


async def test_max_topics_never_forgets_a_topic_being_subscribed(
    hub_server: HubServer, http: httpx.AsyncClient, sse_streams: list[SSEStream]
) -> None:
    server: InProcServer = await hub_server(max_topics=2)
    busy = await SSEStream.open(server.port, subscribe_target("busy"))
    both = await SSEStream.open(server.port, subscribe_target(["n1", "n2"]))
    sse_streams.extend([busy, both])
    assert both.status == 200
    ident = (await http.post(server.url + "/publish", json={"topic": "n1", "data": "x"})).json()["id"]
    assert (await both.next_event(timeout=3)).id == ident
