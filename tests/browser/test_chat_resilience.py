"""The chat page while things go wrong: a slow demo answer behind a proxy that cuts
connections, page reloads mid-answer, and the stop button."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from .support import (
    CuttingProxy,
    ServeProcess,
    answer_text,
    ask,
    last_answer,
    open_page,
    read_generation,
    render_text,
    stored_chat,
    wait_answer,
    wait_for,
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, chromium_path: str) -> Iterator[ServeProcess]:
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    # ~230 tokens at 60/s: a 4 s answer; a short retry hint so the browser reconnects quickly.
    srv = ServeProcess.configured(log, demo_tokens_per_second=60, retry=250, chat_grace=30).start_blocking()
    yield srv
    srv.stop_blocking()


@pytest.fixture
def proxy(server: ServeProcess) -> Iterator[CuttingProxy]:
    p = CuttingProxy(server.port)
    yield p
    p.close()


def start_question(page: Any, text: str) -> str:
    """Ask, and return the generation's topic from the POST /chat answer."""
    with page.expect_response(lambda r: r.url.endswith("/chat") and r.request.method == "POST") as info:
        ask(page, text)
    assert info.value.status == 200
    return str(info.value.json()["topic"])


def content_length(page: Any) -> int:
    return int(page.evaluate(
        """() => {
             const m = JSON.parse(localStorage.getItem('ssehub.chat.v1.' + location.hash.slice(1)) || 'null');
             return m ? (m.messages.at(-1).content || '').length : 0;
           }"""
    ))


def wait_streamed(page: Any, chars: int) -> None:
    page.wait_for_function(
        """(n) => {
             const answer = document.querySelector('article.msg.assistant:last-of-type .answer');
             return (answer?.innerText || '').length > n;
           }""",
        arg=chars,
        timeout=15_000,
    )


def test_reasoning_shows_while_thinking_then_collapses(server: ServeProcess, new_page: Any) -> None:
    page = open_page(new_page(), server.url + "/")
    ask(page, "Think first")
    answer = last_answer(page)
    reasoning = answer.locator("details.reasoning")
    # One in-page snapshot, taken the moment the reasoning shows (it only lasts about a second).
    snapshot = page.wait_for_function(
        """() => {
             const d = document.querySelector('article.msg.assistant:last-of-type details.reasoning');
             if (!d || d.hidden || !d.textContent.includes('demo')) return null;
             return { open: d.open, label: d.querySelector('.reasoning-label').textContent,
                      busy: d.closest('article').getAttribute('aria-busy'),
                      stop: !document.querySelector('#stop').hidden,
                      send: !document.querySelector('#send').hidden };
           }"""
    ).json_value()
    assert snapshot == {"open": True, "label": "Thinking…", "busy": "true", "stop": True, "send": False}
    # When the answer starts the reasoning folds away by itself.
    wait_streamed(page, 10)
    assert reasoning.get_attribute("open") is None
    assert answer.locator(".reasoning-label").inner_text().startswith("Thought for ")
    # The user can still open it.
    reasoning.locator("summary").click()
    assert reasoning.get_attribute("open") is not None
    assert wait_answer(page) == "done"
    assert answer.get_attribute("aria-busy") == "false"


def test_dropped_connections_resume_without_duplicates_or_holes(
    server: ServeProcess, proxy: CuttingProxy, new_page: Any
) -> None:
    page = open_page(new_page(), proxy.url + "/")
    topic = start_question(page, "Survive a network blip")

    # 1. A plain cut: EventSource reconnects by itself, sending Last-Event-ID.
    wait_streamed(page, 80)
    proxy.cut()
    before = content_length(page)
    wait_for(lambda: content_length(page) > before + 40, timeout=15, what="the answer to continue")

    # 2. A cut while the "proxy" answers 503: EventSource gives up (CLOSED), and the page
    #    re-opens it itself with ?last_event_id=.
    proxy.refusing = True
    proxy.cut()
    status = last_answer(page).locator(".msg-status")
    wait_for(lambda: proxy.refused >= 2, timeout=15, what="the page to retry through the 503s")
    assert status.inner_text() == "Connection lost — reconnecting…"
    proxy.refusing = False

    assert wait_answer(page) == "done"
    truth = read_generation(server.url, topic)
    saved = stored_chat(page)["messages"][-1]
    assert saved["content"] == truth.content, "text was lost or duplicated"
    assert saved["reasoning"] == truth.reasoning
    assert answer_text(page) == render_text(page, truth.content)
    assert status.inner_text() == ""
    assert proxy.cuts == 2


def test_reload_mid_answer_reattaches_to_the_same_generation(server: ServeProcess, new_page: Any) -> None:
    page = open_page(new_page(), server.url + "/")
    topic = start_question(page, "Reload me")
    wait_streamed(page, 60)
    saved = stored_chat(page)["messages"][-1]
    assert saved["status"] == "streaming"
    assert saved["gen"]["topic"] == topic and saved["gen"]["lastEventId"]

    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    with page.expect_request("**/subscribe?*") as resumed:
        page.reload()
    page.wait_for_selector("html[data-ready]")
    # It resumes after the last event it had, it does not replay from the start.
    query = parse_qs(urlsplit(resumed.value.url).query)
    assert query["topic"] == [topic] and query["last_event_id"][0] not in ("", "earliest")
    assert page.locator("article.msg.user .bubble").all_inner_texts() == ["Reload me"]
    assert wait_answer(page) == "done"
    assert posts == [], "a reload must not start a new generation"

    truth = read_generation(server.url, topic)
    saved = stored_chat(page)["messages"][-1]
    assert saved["content"] == truth.content
    assert "gen" not in saved
    assert answer_text(page) == render_text(page, truth.content)


def test_stop_cancels_the_generation(server: ServeProcess, new_page: Any) -> None:
    page = open_page(new_page(), server.url + "/")
    topic = start_question(page, "Stop me")
    wait_streamed(page, 20)
    with page.expect_response(lambda r: r.request.method == "DELETE") as deleted:
        page.click("#stop")
    assert deleted.value.ok, deleted.value.status
    assert deleted.value.url.endswith("/chat/" + topic.split("/", 1)[1])
    assert wait_answer(page) == "stopped"
    answer = last_answer(page)
    assert answer.locator(".msg-status").inner_text() == "Stopped"
    assert page.locator("#send").is_visible() and not page.locator("#stop").is_visible()

    truth = read_generation(server.url, topic)
    assert truth.terminal == ("done", {"finish_reason": "cancelled"})
    assert "the answer resumes where it was" not in truth.content  # the demo answer's last line
    saved = stored_chat(page)["messages"][-1]
    assert saved["finish"] == "cancelled" and saved["content"] == truth.content
    # The generation is gone on the server: a second DELETE is a 404.
    assert httpx.delete(f"{server.url}/chat/{topic.split('/', 1)[1]}").status_code == 404


def test_escape_stops_too(server: ServeProcess, new_page: Any) -> None:
    page = open_page(new_page(), server.url + "/")
    start_question(page, "Escape me")
    wait_streamed(page, 5)
    page.keyboard.press("Escape")
    assert wait_answer(page) == "stopped"


def test_grace_keeps_an_abandoned_generation_for_a_returning_page(
    server: ServeProcess, new_page: Any
) -> None:
    """Close the tab mid-answer, open the page again later: the answer is complete."""
    page = open_page(new_page(), server.url + "/")
    topic = start_question(page, "Come back later")
    wait_streamed(page, 30)
    state = page.context.storage_state()
    page.close()
    time.sleep(1.0)
    page2 = new_page(storage_state=state)
    open_page(page2, server.url + "/")
    assert page2.locator("article.msg.user .bubble").all_inner_texts() == ["Come back later"]
    assert wait_answer(page2) == "done"
    assert stored_chat(page2)["messages"][-1]["content"] == read_generation(server.url, topic).content

