"""The SSE driver, through the ASGI interface with a streaming test driver."""

from __future__ import annotations

import asyncio

from ssehub import Settings, create_app
from ssehub.core import parse_id
from ssehub.wire import Event, Parser

from .driver import Stream


def make_app(**kw: object):  # type: ignore[no-untyped-def]
    return create_app(Settings(heartbeat=3600, **kw))  # type: ignore[arg-type]


async def test_stream_headers_retry_first_then_events() -> None:
    app = make_app(retry=1234)
    hub = app.state.hub
    s = await Stream(app, "/subscribe", [("topic", "t")]).start()
    assert s.status == 200
    assert s.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert s.headers["cache-control"] == "no-cache"
    assert s.headers["x-accel-buffering"] == "no"
    assert "connection" not in s.headers and "content-encoding" not in s.headers
    opening = await s.chunk()
    # the retry hint and the starting position, as lines of a block the first event ends: no
    # blank line, which httpx-sse, the OpenAI SDK and fetch-event-source would read as an event
    start = s.headers["ssehub-start-id"]
    assert opening == f"retry: 1234\nid: {start}\n".encode()
    parser = Parser()
    assert parser.feed(opening) == []
    ident = await hub.publish("t", "hello")
    assert parse_id(start) < parse_id(ident)  # type: ignore[operator]
    assert await s.chunk() == f"id: {ident}\ndata: hello\n\n".encode()
    assert parser.feed(f"id: {ident}\ndata: hello\n\n".encode()) == [Event("hello", id=ident)]
    s.disconnect()
    await s.finished()
    await hub.close()


async def test_disconnect_is_noticed_without_any_write() -> None:
    app = make_app()
    hub = app.state.hub
    s = await Stream(app, "/subscribe", [("topic", "quiet")]).start()
    await s.chunk()
    assert hub.subscriber_count("quiet") == 1
    s.disconnect()
    await s.finished()
    assert hub.subscriber_count("quiet") == 0
    assert app.state.ssehub.connections == 0
    await hub.close()


async def test_heartbeat_comment_on_tick() -> None:
    app = make_app()
    hub = app.state.hub
    s = await Stream(app, "/subscribe", [("topic", "t")]).start()
    await s.chunk()
    hub.tick()
    assert await s.chunk() == b":\n"  # a comment line: no blank line, no block to dispatch
    s.disconnect()
    await s.finished()
    await hub.close()


async def test_hub_close_ends_stream_with_jittered_retry_hint() -> None:
    app = make_app(shutdown_retry=1000)
    hub = app.state.hub
    streams = [await Stream(app, "/subscribe", [("topic", "t")]).start() for _ in range(20)]
    for s in streams:
        await s.chunk()
    await hub.publish("t", "bye")
    await app.state.ssehub.close()
    hints = set()
    for s in streams:
        body = await s.body_until_end()
        parser = Parser()
        events = parser.feed(body)
        assert [e.data for e in events] == ["bye"]
        assert parser.retry is not None and 1000 <= parser.retry <= 2000
        hints.add(parser.retry)
        await s.finished()
    assert len(hints) > 1  # jittered, not one value for everybody


async def test_errors_are_json_with_status_before_the_stream_starts() -> None:
    app = make_app(max_topics_per_subscription=2)
    s = Stream(app, "/subscribe", [("topic", "a"), ("topic", "b"), ("topic", "c")])
    await s.start()
    assert s.status == 400
    assert b"too many topics" in await s.body_until_end()
    s = await Stream(app, "/subscribe", []).start()
    assert s.status == 400
    s = await Stream(app, "/nowhere").start()
    assert s.status == 404
    assert (await s.body_until_end()).startswith(b'{"error"')
    await app.state.hub.close()


async def test_resume_prefers_header_over_query() -> None:
    app = make_app()
    hub = app.state.hub
    await app.state.ssehub.ensure_started()
    ids = [await hub.publish("t", str(i)) for i in range(5)]
    s = await Stream(app, "/subscribe", [("topic", "t"), ("last_event_id", ids[0])],
                     headers={"Last-Event-ID": ids[2]}).start()
    body = await s.chunk() + await s.chunk()
    assert [e.data for e in Parser().feed(body)] == ["3", "4"]
    s.disconnect()
    await s.finished()
    await hub.close()


async def test_publish_batch_is_all_or_nothing() -> None:
    app = make_app()
    hub = app.state.hub
    sub = Stream(app, "/subscribe", [("topic", "t")])
    await sub.start()
    await sub.chunk()
    bad = b'[{"topic":"t","data":"ok"},{"topic":"t","data":"x","event":"a\\nb"}]'
    p = await Stream(app, "/publish", method="POST", body=bad,
                     headers={"content-type": "application/json"}).start()
    assert p.status == 400
    good = b'[{"topic":"t","data":"1"},{"topic":"t","data":[2]}]'
    p = await Stream(app, "/publish", method="POST", body=good,
                     headers={"content-type": "application/json"}).start()
    assert p.status == 200
    assert b'"ids"' in await p.body_until_end()
    body = await sub.chunk()
    while body.count(b"\n\n") < 2:
        body += await sub.chunk()
    assert [e.data for e in Parser().feed(body)] == ["1", "[2]"]
    sub.disconnect()
    await sub.finished()
    await asyncio.sleep(0)
    await hub.close()


async def test_a_stream_that_drops_before_its_first_event_resumes_without_loss() -> None:
    # The opening carries the position the stream started after (header and id line): a
    # client that drops before any event arrived still resumes exactly (no silent loss of
    # what was published while it was away).
    app = make_app()
    hub = app.state.hub
    s = await Stream(app, "/subscribe", [("topic", "t")]).start()
    start = s.headers["ssehub-start-id"]
    assert f"id: {start}\n".encode() in await s.chunk()
    s.disconnect()
    await s.finished()
    await hub.publish("t", "while away")
    again = await Stream(app, "/subscribe", [("topic", "t")],
                         headers={"Last-Event-ID": start}).start()
    assert "ssehub-start-id" not in again.headers  # a resumed stream has its position
    body = await again.chunk()
    while b"while away" not in body:
        body += await again.chunk()
    assert [e.data for e in Parser().feed(body)] == ["while away"]
    again.disconnect()
    await again.finished()
    await hub.close()
