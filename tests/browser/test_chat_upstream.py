"""The chat page against a fake OpenAI-compatible upstream that the test controls:
hostile markup, multi-turn context, stop reaching the upstream, upstream errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .support import (
    FakeUpstream,
    ServeProcess,
    ask,
    last_answer,
    open_page,
    stored_chat,
    wait_answer,
)

pytestmark = pytest.mark.browser

PROMPT_XSS = "xss <img src=x onerror=\"window.__xss='prompt'\"><script>window.__xss='prompt2'</script>"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    upstream = FakeUpstream()
    yield upstream
    upstream.close()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, fake: FakeUpstream, chromium_path: str
) -> Iterator[ServeProcess]:
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    srv = ServeProcess.configured(
        log, llm_base_url=fake.base_url, llm_model="fake-model", llm_api_key="sk-test-not-real", chat_grace=2
    ).start_blocking()
    yield srv
    srv.stop_blocking()


def test_hostile_markup_from_user_and_model_never_runs(
    server: ServeProcess, fake: FakeUpstream, new_page: Any
) -> None:
    # bypass_csp: prove that the sanitizer alone stops it (the CSP is a second wall).
    page = open_page(new_page(bypass_csp=True), server.url + "/")
    ask(page, PROMPT_XSS)
    assert wait_answer(page) == "done"
    page.wait_for_timeout(300)  # give any injected handler (img onerror…) the chance to fire
    assert page.evaluate("() => window.__xss") is None

    # The user's text is shown verbatim, as text.
    assert page.locator("article.msg.user .bubble").inner_text() == PROMPT_XSS
    answer = last_answer(page)
    # The model's raw HTML is shown as text, its Markdown is rendered.
    text = answer.locator(".answer").inner_text()
    assert "<script>window.__xss='script'</script>" in text
    assert "<img src=x onerror=" in text
    assert "[click me](javascript:" in text  # markdown-it refuses javascript: links
    safe = answer.locator(".answer a", has_text="safe link")
    assert safe.get_attribute("href") == "https://example.com/docs"
    assert safe.get_attribute("target") == "_blank" and "noopener" in safe.get_attribute("rel")
    # Images become links: no request to a third party (no tracking pixels, no exfiltration).
    assert answer.locator(".answer a.img-link").get_attribute("href") == "https://example.com/pixel.png"
    assert answer.locator(".reasoning-text").text_content().startswith("Thinking about <img src=x onerror=")
    assert "<img src=x onerror" in answer.locator(".codeblock code").inner_text()
    dangerous = page.evaluate(
        """() => {
             const root = document.querySelector('#messages');
             const out = [];
             for (const el of root.querySelectorAll('*')) {
               const tag = el.tagName.toUpperCase();
               const banned = ['SCRIPT', 'IMG', 'IFRAME', 'SVG', 'OBJECT', 'EMBED', 'STYLE', 'FORM'];
               const ownIcon = tag === 'SVG' && el.matches('svg.icon') && el.children.length === 1
                 && (el.firstElementChild.getAttribute('href') || '').startsWith('#i-');
               if (banned.includes(tag) && !ownIcon) out.push(el.outerHTML);
               for (const a of el.attributes) {
                 if (a.name.startsWith('on')) out.push(el.tagName + ' ' + a.name);
                 if (/^\\s*javascript:/i.test(a.value)) out.push(el.tagName + ' ' + a.name + '=' + a.value);
               }
             }
             return out;
           }"""
    )
    assert dangerous == []
    assert fake.requests[-1]["messages"][-1]["content"] == PROMPT_XSS


def test_the_whole_conversation_is_sent_each_turn(
    server: ServeProcess, fake: FakeUpstream, new_page: Any
) -> None:
    page = open_page(new_page(), server.url + "/")
    page.wait_for_function("() => document.querySelector('#model').options[0].text === 'fake-model'")
    ask(page, "hello one")
    wait_answer(page)
    assert last_answer(page).locator(".answer").inner_text() == "Echo: hello one (turn 1, 1 messages)"
    ask(page, "hello two")
    wait_answer(page)
    assert last_answer(page).locator(".answer").inner_text() == "Echo: hello two (turn 2, 3 messages)"
    sent = fake.requests[-1]
    assert sent["model"] == "fake-model" and sent["stream"] is True
    assert [(m["role"], m["content"]) for m in sent["messages"]] == [
        ("user", "hello one"),
        ("assistant", "Echo: hello one (turn 1, 1 messages)"),
        ("user", "hello two"),
    ]
    assert len(stored_chat(page)["messages"]) == 4


def test_stop_closes_the_upstream_connection(server: ServeProcess, fake: FakeUpstream, new_page: Any) -> None:
    fake.slow_disconnected.clear()
    page = open_page(new_page(), server.url + "/")
    ask(page, "slow please")
    last_answer(page).locator(".answer", has_text="tick 3").wait_for()
    with page.expect_response(lambda r: r.request.method == "DELETE") as deleted:
        page.click("#stop")
    assert deleted.value.ok
    assert wait_answer(page) == "stopped"
    assert fake.slow_disconnected.wait(5), "the upstream request was not cancelled"
    assert stored_chat(page)["messages"][-1]["finish"] == "cancelled"


def test_upstream_error_is_shown_with_a_retry(
    server: ServeProcess, fake: FakeUpstream, new_page: Any
) -> None:
    page = open_page(new_page(), server.url + "/")
    ask(page, "fail please")
    assert wait_answer(page) == "error"
    alert = last_answer(page).locator(".notice.error[role=alert]")
    assert "fake upstream is on fire" in alert.inner_text() or "500" in alert.inner_text()
    count = len(fake.requests)
    with page.expect_request(lambda r: r.url.endswith("/chat") and r.method == "POST"):
        alert.get_by_role("button", name="Retry").click()
    assert wait_answer(page) == "error"
    assert len(fake.requests) == count + 1
    assert page.locator("article.msg.assistant").count() == 1  # retried in place


def test_a_rejected_request_is_shown_clearly(server: ServeProcess, new_page: Any) -> None:
    page = open_page(new_page(), server.url + "/")
    page.route("**/chat", lambda route: route.fulfill(status=429, json={"error": "slow down"}))
    ask(page, "too fast")
    assert wait_answer(page) == "error"
    alert = last_answer(page).locator(".notice.error")
    assert "slow down" in alert.inner_text() and "429" in alert.inner_text()
    page.unroute("**/chat")
    alert.get_by_role("button", name="Retry").click()
    assert wait_answer(page) == "done"
    assert "Echo: too fast" in last_answer(page).inner_text()
