"""``GET /subscribe?…&topic_field=1``: events name the topics they came from; off by default."""

from __future__ import annotations

import json

import pytest

from ssehub import Settings, create_app
from ssehub.wire import Parser

from .driver import Stream


@pytest.mark.parametrize("flag", ["1", "true"])
async def test_opt_in_topic_lines(flag: str) -> None:
    app = create_app(Settings(heartbeat=3600))
    hub = app.state.hub
    query = [("topic", "news"), ("topic", "sport")]
    s = await Stream(app, "/subscribe", [*query, ("topic_field", flag)]).start()
    plain = await Stream(app, "/subscribe", [("topic", "news"), ("topic", "sport")]).start()
    await s.chunk()
    await plain.chunk()
    n = await hub.publish("news", "n")
    both = await hub.publish(["news", "sport"], "b")
    body = await s.chunk()
    while body.count(b"\n\n") < 2:
        body += await s.chunk()
    assert body == (f"topic: news\nid: {n}\ndata: n\n\n"
                    f"topic: news\ntopic: sport\nid: {both}\ndata: b\n\n").encode()
    plain_body = await plain.chunk()
    while plain_body.count(b"\n\n") < 2:
        plain_body += await plain.chunk()
    assert b"topic:" not in plain_body  # off by default: plain EventSource users see no change
    assert Parser().feed(body) == Parser().feed(plain_body)
    for stream in (s, plain):
        stream.disconnect()
        await stream.finished()
    await hub.close()


async def test_bad_flag_is_a_400_and_subscribes_nobody() -> None:
    app = create_app(Settings(heartbeat=3600))
    s = await Stream(app, "/subscribe", [("topic", "news"), ("topic_field", "yes")]).start()
    assert s.status == 400
    assert json.loads(await s.body_until_end()) == {"error": "topic_field must be 1 or 0 (true or false)"}
    assert app.state.hub.subscriber_count("news") == 0
    await app.state.hub.close()
