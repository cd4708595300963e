"""``ssehub.client.subscribe`` dropped before its first event resumes from where it subscribed
(the ``SSEHub-Start-Id`` header), not from "now": what was published while it was away
arrives, once."""

from __future__ import annotations

import asyncio

import httpx

from ssehub.client import Retrying, subscribe
from tests.browser.support import CuttingProxy, wait_for
from tests.support.serve import ServeProcess

from .conftest import publish


def subscribers(server: ServeProcess, topic: str) -> int:
    items = httpx.get(server.url + "/topics", timeout=10).json()["topics"]
    return next((int(t["subscribers"]) for t in items if t["topic"] == topic), 0)


async def test_drop_before_the_first_event_loses_nothing(server: ServeProcess) -> None:
    proxy = CuttingProxy(server.port)
    away: list[str] = []

    def on_retry(info: Retrying) -> None:  # the stream dropped; the client waits to reconnect
        if not away:
            wait_for(lambda: subscribers(server, "cl") == 0, what="the hub to see the drop")
            away.append(publish(server, "cl", "while away"))  # nobody subscribed now

    try:
        events = subscribe(proxy.url, "cl", on_retry=on_retry)
        first = asyncio.ensure_future(anext(events))
        await asyncio.to_thread(wait_for, lambda: subscribers(server, "cl") == 1, what="the stream to open")
        proxy.cut()
        event = await asyncio.wait_for(first, 15)
        assert (event.data, event.id) == ("while away", away[0])
        after = publish(server, "cl", "after")
        event = await asyncio.wait_for(anext(events), 15)
        assert (event.data, event.id) == ("after", after)  # nothing twice, nothing else
        await events.aclose()  # type: ignore[attr-defined]  # an async generator
    finally:
        proxy.close()
