"""The hub console: subscribe, watch events arrive live, publish from the form, gaps."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .support import CuttingProxy, ServeProcess, open_page, wait_for

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, chromium_path: str) -> Iterator[ServeProcess]:
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    srv = ServeProcess.configured(log, retry=250, heartbeat=0.5).start_blocking()
    yield srv
    srv.stop_blocking()


def subscribe(page: Any, *topics: str, resume: str = "") -> Any:
    for topic in topics:
        page.fill("#sub-topic-input", topic)
        page.press("#sub-topic-input", "Enter")
    if resume:
        page.fill("#sub-resume", resume)
    page.click("#sub-btn")
    sub = page.locator("#subs .sub").last
    sub.locator(".state-dot.open").wait_for()
    return sub


def rows(page: Any) -> Any:
    return page.locator("#events tr:not(.note)")


def test_published_events_arrive_live(server: ServeProcess, new_page: Any) -> None:
    page = open_page(new_page(), server.url + "/console")
    sub = subscribe(page, "news")
    assert sub.locator(".sub-topics").inner_text() == "news"

    # From outside (any backend): a plain POST /publish.
    body = {"topic": "news", "data": "hello <b>world</b>"}
    published = httpx.post(f"{server.url}/publish", json=body).json()
    row = rows(page).first
    row.wait_for()
    assert row.locator(".c-id").inner_text() == published["id"]
    assert row.locator(".c-event").inner_text() == "message"
    assert row.locator(".c-topic").inner_text() == "news"
    assert row.locator(".c-data").inner_text() == "hello <b>world</b>"  # text, not markup
    assert row.locator(".c-time").inner_text().count(":") == 2

    # From the form: a named event with JSON data.
    assert page.locator("#pub-topic").input_value() == "news"  # prefilled from the subscription
    page.fill("#pub-event", "update")
    page.fill("#pub-data", '{"headline": "ssehub ships", "n": 1}')
    page.check("#pub-json")
    assert '"event":"update"' in page.locator("#pub-curl").inner_text()
    with page.expect_response(lambda r: r.url.endswith("/publish")) as info:
        page.click("#pub-btn")
    new_id = info.value.json()["id"]
    assert info.value.request.post_data_json == {
        "topic": "news", "data": {"headline": "ssehub ships", "n": 1}, "event": "update"
    }
    page.locator("#pub-result.ok").wait_for()
    assert new_id in page.locator("#pub-result").inner_text()
    wait_for(lambda: rows(page).count() == 2, what="the second event")
    row = rows(page).first
    assert row.locator(".c-id").inner_text() == new_id
    assert row.locator(".c-event .badge").inner_text() == "update"
    assert json.loads(row.locator(".c-data").inner_text()) == {"headline": "ssehub ships", "n": 1}
    assert "2 events" in sub.locator(".sub-meta").inner_text()

    # Topics panel knows the topic; the counter counts.
    page.click("#topics-refresh")
    page.locator("#topics button", has_text="news").wait_for()
    assert page.locator("#counter").inner_text().startswith("2 received")


def test_multi_topic_subscription_and_filters(server: ServeProcess, new_page: Any) -> None:
    page = open_page(new_page(), server.url + "/console")
    subscribe(page, "alpha", "beta")
    assert page.locator("#subs .sub-topics").inner_text() == "alpha, beta"
    assert "topic=alpha&topic=beta" in page.url  # a reload subscribes again
    for topic, data in (("alpha", "one"), ("beta", "two"), (["alpha", "beta"], "both")):
        httpx.post(f"{server.url}/publish", json={"topic": topic, "data": data, "event": "tick"})
    wait_for(lambda: rows(page).count() == 3, what="three events")
    assert rows(page).locator(".c-data").all_inner_texts() == ["both", "two", "one"]
    # each event's own topic(s), not the subscription's (the stream's opt-in `topic:` lines)
    assert rows(page).locator(".c-topic").all_inner_texts() == ["alpha, beta", "beta", "alpha"]

    page.fill("#filter", "two")
    assert [r.is_visible() for r in rows(page).all()] == [False, True, False]
    page.fill("#filter", "")

    page.click("#pause")
    httpx.post(f"{server.url}/publish", json={"topic": "alpha", "data": "held"})
    wait_for(lambda: "1 held" in page.locator("#counter").inner_text(), what="the held counter")
    assert rows(page).count() == 3
    page.click("#pause")
    assert rows(page).first.locator(".c-data").inner_text() == "held"

    page.locator("#subs .sub button").click()
    assert page.locator("#subs .sub").count() == 0
    page.click("#clear")
    assert rows(page).count() == 0 and page.locator("#events-empty").is_visible()


def test_gap_is_shown_distinctly(server: ServeProcess, new_page: Any) -> None:
    page = open_page(new_page(), server.url + "/console")
    subscribe(page, "lost", resume="1-1")  # an id from another epoch: the hub must say so
    gap = page.locator("#events tr.gap")
    gap.wait_for()
    assert gap.locator(".badge.gap").inner_text() == "gap"
    assert gap.locator(".c-topic").inner_text() == "lost"
    assert "after 1-1" in gap.locator(".c-data").inner_text()
    assert gap.locator(".c-id").inner_text() == "—"


def test_any_event_name_and_resume_after_a_cut(server: ServeProcess, new_page: Any) -> None:
    """Events of any name show up (EventSource would need a listener per name), and a cut
    connection resumes with Last-Event-ID: nothing lost, nothing twice."""
    proxy = CuttingProxy(server.port)
    try:
        page = open_page(new_page(), proxy.url + "/console")
        subscribe(page, "feed")

        def post(n: int) -> httpx.Response:
            return httpx.post(f"{server.url}/publish",
                              json={"topic": "feed", "data": f"n{n}", "event": f"custom-{n}"})

        post(1)
        wait_for(lambda: rows(page).count() == 1, what="first event")
        proxy.cut()
        post(2)
        post(3)
        page.locator("#subs .state-dot.open").wait_for()
        wait_for(lambda: rows(page).count() == 3, what="events published while cut")
        post(4)
        wait_for(lambda: rows(page).count() == 4, what="live again")
        assert rows(page).locator(".c-data").all_inner_texts() == ["n4", "n3", "n2", "n1"]
        assert rows(page).locator(".badge").all_inner_texts() == [f"custom-{n}" for n in (4, 3, 2, 1)]
        meta = page.locator("#subs .sub-meta")
        wait_for(lambda: "♥" in meta.inner_text(), timeout=5, what="a heartbeat to be seen")
    finally:
        proxy.close()


def test_publish_errors_are_shown(server: ServeProcess, new_page: Any) -> None:
    page = open_page(new_page(), server.url + "/console")
    page.fill("#pub-topic", "news")
    page.fill("#pub-data", "{not json")
    page.check("#pub-json")
    page.click("#pub-btn")
    assert "not valid JSON" in page.locator("#pub-result.err").inner_text()
    page.route("**/publish", lambda route: route.fulfill(status=503, json={"error": "broker unavailable"}))
    page.uncheck("#pub-json")
    page.click("#pub-btn")
    page.locator("#pub-result.err", has_text="broker unavailable").wait_for()
    assert "503" in page.locator("#pub-result").inner_text()
