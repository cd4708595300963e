"""SPEC §2 Publish: every body format, data encoding, and errors that publish nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.fixtures import HubServer
from tests.support.sse import SSEStream, subscribe_target
from tests.support.uvicorn import InProcServer

MAX = 1024 * 1024  # default max_event_bytes


def assert_error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"], body
    return str(body["error"])


async def chunked(payload: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(payload), 64 * 1024):
        yield payload[i:i + 64 * 1024]


BAD_JSON = [
    ({"topic": "t", "data": "x", "event": "a\nb"}, "LF-in-event"),
    ({"topic": "t", "data": "x", "event": "a\rb"}, "CR-in-event"),
    ({"topic": "t", "data": "x", "event": "a\0b"}, "NUL-in-event"),
    ({"topic": "t", "data": "x", "event": 5}, "event-not-string"),
    ({"data": "x"}, "missing-topic"),
    ({"topic": "t"}, "missing-data"),
    ({"topic": "a\x01b", "data": "x"}, "control-char-topic"),
    ({"topic": "t\x7f", "data": "x"}, "DEL-in-topic"),
    ({"topic": "", "data": "x"}, "empty-topic"),
    ({"topic": "x" * 257, "data": "x"}, "topic-too-long"),
    ({"topic": [], "data": "x"}, "no-topics"),
    ({"topic": ["t", 3], "data": "x"}, "topic-not-string"),
    ({"topic": "t", "data": "x", "retry": -1}, "negative-retry"),
    ({"topic": "t", "data": "x", "retry": "1_000"}, "retry-not-digits"),
    ({"topic": "t", "data": "x", "colour": "red"}, "unknown-field"),
    ([{"topic": "t", "data": "good"}, {"topic": "t", "data": "x", "event": "a\nb"}], "bad-batch-item"),
    ([], "empty-batch"),
    ("just a string", "not-an-object"),
]


@pytest.fixture
async def live(hub_server: HubServer, sse_streams: list[SSEStream]) -> tuple[InProcServer, SSEStream]:
    server = await hub_server()
    stream = await SSEStream.open(server.port, subscribe_target("t"))
    sse_streams.append(stream)
    assert stream.status == 200
    return server, stream


async def assert_nothing_published(server: InProcServer, stream: SSEStream, http: httpx.AsyncClient) -> None:
    """Nothing retained by the hub besides the checks' own events, and a good publish now is
    the very next event the live subscriber sees."""
    topics = (await http.get(server.url + "/topics")).json()["topics"]
    checks = len(stream.events)  # one "after" event per earlier check
    assert topics == [{"topic": "t", "subscribers": 1, "retained": checks,
                       "last_event_id": stream.events[-1].id if checks else None}], topics
    ident = (await http.post(server.url + "/publish", json={"topic": "t", "data": "after"})).json()["id"]
    event = await stream.next_event()
    assert (event.id, event.data) == (ident, "after")


async def test_bad_json_publications_are_400_and_publish_nothing(
    live: tuple[InProcServer, SSEStream], http: httpx.AsyncClient
) -> None:
    server, stream = live
    for body, case in BAD_JSON:
        response = await http.post(server.url + "/publish", json=body)
        assert response.status_code == 400, (case, response.text)
        assert_error(response, 400)
        await assert_nothing_published(server, stream, http)


async def test_other_publish_errors(live: tuple[InProcServer, SSEStream], http: httpx.AsyncClient) -> None:
    server, stream = live
    url = server.url + "/publish"
    as_json = {"content-type": "application/json"}
    truncated = b'{"topic": "t", "data": '
    assert "JSON" in assert_error(await http.post(url, content=truncated, headers=as_json), 400)
    assert_error(await http.post(url, content=b"\xff\xfe{}", headers=as_json), 400)
    assert_error(await http.post(url, content=b'{"topic": "t", "data": NaN}', headers=as_json), 400)
    assert_error(await http.post(url, content=b'{"topic": "t", "data": [Infinity]}', headers=as_json), 400)
    # unknown content type without ?topic=
    assert_error(await http.post(url, content=b"hello", headers={"content-type": "text/plain"}), 415)
    assert_error(await http.post(url, content=b"hello"), 415)  # no content type at all
    # raw body (?topic=) must be UTF-8
    assert_error(await http.post(url, params={"topic": "t"}, content=b"caf\xe9"), 400)
    assert_error(await http.post(url, params={"topic": "a\x01b"}, content=b"x"), 400)
    assert_error(await http.post(url, params={"topic": "t", "event": "a\nb"}, content=b"x"), 400)
    # forms
    assert_error(await http.post(url, data={"data": "no topic"}), 400)
    assert_error(await http.post(url, data={"topic": "t\x00", "data": "x"}), 400)
    assert_error(await http.post(url, data={"topic": "t", "data": "x", "event": "a\r\nb"}), 400)
    # too large: declared by Content-Length, and streamed without one (chunked)
    big = json.dumps({"topic": "t", "data": "x" * MAX}).encode()
    assert_error(await http.post(url, content=big, headers=as_json), 413)
    assert_error(await http.post(url, content=chunked(big), headers=as_json), 413)
    assert_error(await http.post(url, params={"topic": "t"}, content=chunked(b"y" * (MAX + 1))), 413)
    await assert_nothing_published(server, stream, http)


async def test_publish_formats_and_data_encoding(
    live: tuple[InProcServer, SSEStream], http: httpx.AsyncClient
) -> None:
    server, stream = live
    url = server.url + "/publish"

    # curl -d topic=t -d data=hello
    response = await http.post(url, data={"topic": "t", "data": "hello"})
    assert response.status_code == 200, response.text
    form_id = response.json()["id"]
    # a JSON value that is not a string: compact JSON, UTF-8, not ASCII-escaped
    value = {"b": [1, 2.5, None, True], "s": "é ü 中"}
    json_id = (await http.post(url, json={"topic": "t", "data": value})).json()["id"]
    # a JSON string with every kind of line break
    crlf_id = (await http.post(url, json={"topic": "t", "data": "one\r\ntwo\rthree\nfour"})).json()["id"]
    # the raw body, verbatim, whatever its content type
    raw_id = (await http.post(url, params={"topic": "t", "event": "tick"}, content=b'{"p": 1}\r\n',
                              headers={"content-type": "text/plain"})).json()["id"]
    # a JSON number as data, with a retry hint and an event name
    num_id = (await http.post(url, json={"topic": "t", "data": 42, "event": "n", "retry": 1500})).json()["id"]

    events = await stream.read_events(5)
    assert [e.id for e in events] == [form_id, json_id, crlf_id, raw_id, num_id]
    assert events[0].data == "hello" and events[0].event is None
    assert events[1].data == '{"b":[1,2.5,null,true],"s":"é ü 中"}'
    assert events[2].data == "one\ntwo\nthree\nfour"
    assert (events[3].event, events[3].data) == ("tick", '{"p": 1}\n')
    assert (events[4].event, events[4].data) == ("n", "42")
    assert stream.parser.retry == 1500

    frames = stream.frames()
    assert frames[0].startswith(b"retry: ")
    assert f"id: {json_id}\n".encode() + 'data: {"b":[1,2.5,null,true],"s":"é ü 中"}'.encode() in frames
    assert f"id: {crlf_id}\ndata: one\ndata: two\ndata: three\ndata: four".encode() in frames
    assert b"\r" not in stream.raw  # line breaks become data: lines, never raw CRs
    ids = [form_id, json_id, crlf_id, raw_id, num_id]
    assert len(set(ids)) == 5


async def test_batch_publish_answers_ids_in_order(
    live: tuple[InProcServer, SSEStream], http: httpx.AsyncClient
) -> None:
    server, stream = live
    body = [{"topic": "t", "data": f"b{i}"} for i in range(5)]
    response = await http.post(server.url + "/publish", json=body)
    assert response.status_code == 200
    ids = response.json()["ids"]
    events = await stream.read_events(5)
    assert [(e.id, e.data) for e in events] == [(i, f"b{n}") for n, i in enumerate(ids)]


async def test_lone_surrogate_in_data_or_event_is_400(
    live: tuple[InProcServer, SSEStream], http: httpx.AsyncClient
) -> None:
    server, stream = live
    for body in ({"topic": "t", "data": "\ud800"}, {"topic": "t", "data": "x", "event": "\udfff"}):
        response = await http.post(server.url + "/publish", content=json.dumps(body).encode(),
                                    headers={"content-type": "application/json"})
        assert_error(response, 400)
    await assert_nothing_published(server, stream, http)


async def test_topic_with_lone_surrogate_is_rejected_and_topics_keeps_working(
    hub_server: HubServer, http: httpx.AsyncClient
) -> None:
    server: InProcServer = await hub_server()
    body = json.dumps({"topic": "bad\ud800", "data": "x"}).encode()
    response = await http.post(server.url + "/publish", content=body,
                               headers={"content-type": "application/json"})
    topics = await http.get(server.url + "/topics")
    assert topics.status_code == 200, topics.text
    assert_error(response, 400)
