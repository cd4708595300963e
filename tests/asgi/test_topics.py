"""GET /topics lists topics but never generation topics, whose name is their secret."""

from __future__ import annotations

import json

from ssehub import Settings, create_app

from .driver import Stream


async def test_topics_lists_public_topics_and_hides_generations() -> None:
    app = create_app(Settings(heartbeat=3600))
    await app.state.ssehub.ensure_started()
    hub = app.state.hub
    await hub.publish("news", "x")
    await hub.publish("chat/SECRETgenerationid", "y")
    s = await Stream(app, "/topics").start()
    body = json.loads(await s.body_until_end())
    assert [t["topic"] for t in body["topics"]] == ["news"]
    assert body["generations"] == 1
    assert b"SECRET" not in json.dumps(body).encode()
    await app.state.ssehub.close()
