"""Chromium's own EventSource reads ssehub streams: fresh subscribe, heartbeats, a reconnect
after the connection drops (it resumes with Last-Event-ID: nothing lost, nothing twice), a
gap — every event exactly once with its id, and nothing else (``onmessage`` and the named
listeners are the only ways a page sees events)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.browser.support import CuttingProxy, wait_for
from tests.support.serve import ServeProcess

from .conftest import HEARTBEAT, publish

pytestmark = pytest.mark.browser

# A same-origin page (any page of the hub will do) that opens an EventSource and records what
# it sees: every `message`, every event of the names given, `open`/`error`, readyState.
OPEN = """([url, names]) => {
  window.__seen = []; window.__opens = 0; window.__errors = 0;
  const es = new EventSource(url);
  window.__es = es;
  const record = (e) => window.__seen.push([e.type, e.data, e.lastEventId]);
  es.onmessage = record;
  for (const name of names) es.addEventListener(name, record);
  es.onopen = () => { window.__opens += 1; };
  es.onerror = () => { window.__errors += 1; };
}"""


def open_source(page: Any, base: str, query: str, names: tuple[str, ...] = ()) -> None:
    page.goto(base + "/favicon.svg")
    page.evaluate(OPEN, [base + "/subscribe?" + query, list(names)])
    page.wait_for_function("() => window.__opens >= 1")


def seen(page: Any) -> list[list[str]]:
    result: list[list[str]] = page.evaluate("window.__seen")
    return result


def test_fresh_subscribe_named_events_and_heartbeats(server: ServeProcess, page: Any) -> None:
    open_source(page, server.url, "topic=es", ("update",))
    page.wait_for_timeout(HEARTBEAT * 6 * 1000)  # heartbeats pass: none may become an event
    a = publish(server, "es", "one")
    b = publish(server, "es", "{}", event="update")
    c = publish(server, "es", "hidden", event="unlistened")  # a name nobody listens to
    d = publish(server, "es", "last")
    page.wait_for_function("() => window.__seen.length >= 3")
    page.wait_for_timeout(200)
    assert seen(page) == [["message", "one", a], ["update", "{}", b], ["message", "last", d]]
    assert c < d
    assert page.evaluate("[window.__es.readyState, window.__errors]") == [1, 0]


def subscribers(server: ServeProcess, topic: str) -> int:
    listed = httpx.get(server.url + "/topics", timeout=10).json()
    items = listed["topics"] if isinstance(listed, dict) else listed
    return next((int(t["subscribers"]) for t in items if t["topic"] == topic), 0)


def test_reconnect_after_a_drop_resumes_exactly(server: ServeProcess, page: Any) -> None:
    proxy = CuttingProxy(server.port)
    try:
        open_source(page, proxy.url, "topic=esr")
        # the first event also sets a long reconnection time: the test publishes while away
        a = httpx.post(server.url + "/publish", json={"topic": "esr", "data": "before", "retry": 3000},
                       timeout=10).json()["id"]
        page.wait_for_function("() => window.__seen.length >= 1")
        proxy.cut()  # the server's stream drops; EventSource reconnects with Last-Event-ID
        wait_for(lambda: subscribers(server, "esr") == 0, what="the hub to see the drop")
        b = publish(server, "esr", "while away")  # nobody subscribed: only a resume finds it
        page.wait_for_function("() => window.__seen.length >= 2 && window.__opens >= 2", timeout=15_000)
        c = publish(server, "esr", "after")
        page.wait_for_function("() => window.__seen.length >= 3")
        page.wait_for_timeout(200)
        assert seen(page) == [["message", "before", a], ["message", "while away", b], ["message", "after", c]]
    finally:
        proxy.close()


def test_gap_reaches_its_listener_only(server: ServeProcess, page: Any) -> None:
    ids = [publish(server, "esg", f"e{i}") for i in range(8)]  # history_size=5
    open_source(page, server.url, f"topic=esg&last_event_id={ids[0]}", ("gap",))
    page.wait_for_function("() => window.__seen.length >= 6")
    page.wait_for_timeout(200)
    events = seen(page)
    assert events[0][0] == "gap" and events[0][2] == ""  # a gap has no id
    assert json.loads(events[0][1]) == {"topic": "esg", "last_event_id": ids[0], "reason": "evicted"}
    assert events[1:] == [["message", f"e{i}", ids[i]] for i in range(3, 8)]


def test_topic_field_is_invisible_to_eventsource(server: ServeProcess, page: Any) -> None:
    """``topic_field=1`` adds ``topic:`` lines: not a WHATWG field, EventSource ignores them."""
    open_source(page, server.url, "topic=t1&topic=t2&topic_field=1")
    a = publish(server, ["t1", "t2"], "both")
    page.wait_for_function("() => window.__seen.length >= 1")
    page.wait_for_timeout(200)
    assert seen(page) == [["message", "both", a]]
