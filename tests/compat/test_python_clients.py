"""httpx-sse 0.4 and sseclient-py read ssehub streams: exactly the published events, with
their ids — no empty event for the opening, a heartbeat or the closing retry hint.

Neither client reconnects by itself: "resume" here is what their users do, a new request with
``Last-Event-ID`` (the last event's id, or ``SSEHub-Start-Id`` when none arrived yet).
Both are synchronous; every read is bounded by httpx's read timeout.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any, cast

import httpx
import pytest
import sseclient
from httpx_sse import EventSource, ServerSentEvent, SSEError, connect_sse
from httpx_sse._decoders import SSEDecoder, SSELineDecoder

from tests.support.serve import ServeProcess

from .conftest import HEARTBEAT, publish

TIMEOUT = httpx.Timeout(10.0)  # a read that gets nothing for 10 s fails the test
pytestmark = pytest.mark.filterwarnings("error")


def until(events: Iterator[Any], last: str) -> list[Any]:
    """Events up to and including the one whose data is ``last``."""
    out = []
    for event in events:
        out.append(event)
        if event.data == last:
            return out
    raise AssertionError(f"the stream ended before {last!r}: {out}")


def summary(events: list[Any]) -> list[tuple[str, str, str]]:
    return [(e.event, e.data, e.id) for e in events]


# -- httpx-sse ----------------------------------------------------------------------------


def counting_sse(source: EventSource, comments: list[str]) -> Iterator[ServerSentEvent]:
    """``EventSource.iter_sse()`` line for line (httpx-sse's own decoders), also counting the
    comment lines it skips, so a test can tell that heartbeats really passed through it."""
    lines, decoder = SSELineDecoder(), SSEDecoder()
    for text in source.response.iter_text():
        for line in lines.decode(text):
            if line.startswith(":"):
                comments.append(line)
            sse = decoder.decode(line.rstrip("\n"))
            if sse is not None:
                yield sse


def test_httpx_sse_fresh_subscribe_heartbeats_and_named_events(server: ServeProcess) -> None:
    with httpx.Client(timeout=TIMEOUT) as client, \
            connect_sse(client, "GET", server.url + "/subscribe", params={"topic": "hx"}) as source:
        start = source.response.headers["ssehub-start-id"]
        time.sleep(HEARTBEAT * 6)  # heartbeats queue up before the first event
        a = publish(server, "hx", "one")
        b = publish(server, "hx", '{"n": 2}', event="update")
        comments: list[str] = []
        events = until(counting_sse(source, comments), '{"n": 2}')
    assert len(comments) >= 2, "no heartbeat reached the client: the test proves nothing"
    assert summary(events) == [("message", "one", a), ("update", '{"n": 2}', b)]
    assert events[0].retry == 200  # the opening retry hint rides on the first event
    assert start < a  # (same epoch: digit-aware order is plain order here)


def test_httpx_sse_iter_sse_as_users_write_it(server: ServeProcess) -> None:
    """The loop from httpx-sse's README, ``json.loads(sse.data)`` on every event: it used to
    meet an empty event first (the id-only opening block) and fail."""
    with httpx.Client(timeout=TIMEOUT) as client, \
            connect_sse(client, "GET", server.url + "/subscribe", params={"topic": "readme"}) as source:
        time.sleep(HEARTBEAT * 3)
        publish(server, "readme", '{"price": 1}')
        publish(server, "readme", '{"price": 2}')
        seen = []
        for sse in source.iter_sse():
            seen.append(json.loads(sse.data)["price"])
            if len(seen) == 2:
                break
    assert seen == [1, 2]


def test_httpx_sse_resume_from_the_last_id_and_from_the_start(server: ServeProcess) -> None:
    with httpx.Client(timeout=TIMEOUT) as client:
        with connect_sse(client, "GET", server.url + "/subscribe", params={"topic": "hr"}) as source:
            start = source.response.headers["ssehub-start-id"]
        # dropped before any event: what was published meanwhile comes from the start position
        a = publish(server, "hr", "while away")
        with connect_sse(client, "GET", server.url + "/subscribe", params={"topic": "hr"},
                         headers={"Last-Event-ID": start}) as source:
            assert "ssehub-start-id" not in source.response.headers
            first = until(source.iter_sse(), "while away")
        b = publish(server, "hr", "later")
        with connect_sse(client, "GET", server.url + "/subscribe", params={"topic": "hr"},
                         headers={"Last-Event-ID": a}) as source:
            second = until(source.iter_sse(), "later")
    assert summary(first) == [("message", "while away", a)]
    assert summary(second) == [("message", "later", b)]


def test_httpx_sse_gap(server: ServeProcess) -> None:
    ids = [publish(server, "hg", f"e{i}") for i in range(8)]  # history_size=5: e0…e2 evicted
    with httpx.Client(timeout=TIMEOUT) as client, \
            connect_sse(client, "GET", server.url + "/subscribe", params={"topic": "hg"},
                        headers={"Last-Event-ID": ids[0]}) as source:
        events = until(source.iter_sse(), "e7")
    assert events[0].event == "gap" and events[0].id == ""  # a gap has no id
    assert json.loads(events[0].data) == {"topic": "hg", "last_event_id": ids[0], "reason": "evicted"}
    assert summary(events[1:]) == [("message", f"e{i}", ids[i]) for i in range(3, 8)]


def test_httpx_sse_stream_end_adds_no_event(server: ServeProcess,
                                            tmp_path_factory: pytest.TempPathFactory) -> None:
    """The shutdown hint (``retry:`` with jitter) ends the stream without an empty event."""
    own = ServeProcess.configured(tmp_path_factory.mktemp("end") / "serve.log",
                                  heartbeat=HEARTBEAT).start_blocking()
    try:
        with httpx.Client(timeout=TIMEOUT) as client, \
                connect_sse(client, "GET", own.url + "/subscribe", params={"topic": "end"}) as source:
            ident = publish(own, "end", "last")
            events = source.iter_sse()
            assert summary([next(events)]) == [("message", "last", ident)]
            own.stop_blocking()  # SIGTERM: the hub ends every stream with a retry hint
            rest = list(events)
        assert rest == []
    finally:
        own.stop_blocking()


def test_httpx_sse_refuses_nothing_ssehub_sends(server: ServeProcess) -> None:
    """httpx-sse checks the content type: ssehub's is text/event-stream; an error is JSON."""
    with httpx.Client(timeout=TIMEOUT) as client, \
            connect_sse(client, "GET", server.url + "/subscribe") as source:
        assert source.response.status_code == 400
        with pytest.raises(SSEError):
            next(source.iter_sse())


# -- sseclient-py -------------------------------------------------------------------------


class Chunks:
    """What sseclient-py wants: an iterable of byte chunks with ``close()`` (here an httpx
    stream's raw chunks), counting the heartbeat lines that pass."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.heartbeats = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.response.iter_raw():
            self.heartbeats += chunk.count(b":\n")
            yield chunk

    def close(self) -> None:
        self.response.close()


def open_sseclient(client: httpx.Client, server: ServeProcess, topic: str, last: str | None = None
                   ) -> tuple[httpx.Response, Chunks]:
    headers = {"Accept": "text/event-stream"} | ({"Last-Event-ID": last} if last else {})
    request = client.build_request("GET", server.url + "/subscribe", params={"topic": topic}, headers=headers)
    response = client.send(request, stream=True)
    assert response.status_code == 200
    return response, Chunks(response)


def test_sseclient_fresh_heartbeats_resume_gap(server: ServeProcess) -> None:
    with httpx.Client(timeout=TIMEOUT) as client:
        response, chunks = open_sseclient(client, server, "sc")
        start = response.headers["ssehub-start-id"]
        time.sleep(HEARTBEAT * 6)
        a = publish(server, "sc", "one")
        b = publish(server, "sc", "two\nlines", event="multi")
        events = until(sseclient.SSEClient(cast(Iterator[bytes], chunks)).events(), "two\nlines")
        response.close()
        assert chunks.heartbeats >= 2, "no heartbeat reached the client: the test proves nothing"
        assert summary(events) == [("message", "one", a), ("multi", "two\nlines", b)]

        c = publish(server, "sc", "missed")  # resume after the last event seen
        response, chunks = open_sseclient(client, server, "sc", last=b)
        missed = sseclient.SSEClient(cast(Iterator[bytes], chunks)).events()
        assert summary(until(missed, "missed")) == [("message", "missed", c)]
        response.close()

        for i in range(6):  # history_size=5: everything after `start` is no longer retained
            publish(server, "sc", f"x{i}")
        response, chunks = open_sseclient(client, server, "sc", last=start)
        events = until(sseclient.SSEClient(cast(Iterator[bytes], chunks)).events(), "x5")
        response.close()
    assert events[0].event == "gap" and events[0].id is None
    assert json.loads(events[0].data)["reason"] == "evicted"
    assert [e.data for e in events[1:]] == ["x1", "x2", "x3", "x4", "x5"]
