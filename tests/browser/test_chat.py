"""The chat page against the built-in demo provider (fast): rendering, conversations, keys."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .support import (
    ServeProcess,
    answer_text,
    ask,
    last_answer,
    open_page,
    read_generation,
    render_text,
    stored_chat,
    wait_answer,
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, chromium_path: str) -> Iterator[ServeProcess]:
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    srv = ServeProcess.configured(log, demo_tokens_per_second=2000).start_blocking()
    yield srv
    srv.stop_blocking()


def test_demo_answer_renders_markdown_code_and_table(server: ServeProcess, new_page: Any) -> None:
    page = open_page(new_page(), server.url + "/")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    ask(page, "Show me a table")
    assert wait_answer(page) == "done"

    answer = last_answer(page)
    # The question is shown as typed, in its own bubble.
    assert page.locator("article.msg.user .bubble").inner_text() == "Show me a table"
    # A highlighted code block with a copy button, and a real table.
    code = answer.locator(".codeblock pre code.language-bash")
    assert "export SSEHUB_LLM_BASE_URL=" in code.inner_text()
    assert code.locator("span.hljs-built_in, span.hljs-keyword").count() > 0
    assert answer.locator(".codeblock-lang").first.inner_text() == "bash"
    assert answer.locator("table thead th").count() == 3
    assert answer.locator("table tbody tr").count() >= 4
    assert answer.locator("blockquote strong").count() == 1
    # The reasoning is there, collapsed, with its duration.
    reasoning = answer.locator("details.reasoning")
    assert reasoning.is_visible()
    assert reasoning.get_attribute("open") is None
    assert answer.locator(".reasoning-label").inner_text().startswith("Thought for")
    assert "demo simulator" in answer.locator(".reasoning-text").text_content()
    # The model named by the `start` event, the usage from the `usage` event.
    assert answer.locator(".model-name").inner_text() == "ssehub-demo"
    assert "tokens" in answer.locator(".usage").inner_text()

    # What the page assembled is exactly what the hub sent.
    chat = stored_chat(page)
    assert [m["role"] for m in chat["messages"]] == ["user", "assistant"]
    saved = chat["messages"][1]
    assert "gen" not in saved and saved["status"] == "done" and saved["finish"] == "stop"
    assert answer_text(page) == render_text(page, saved["content"])

    # Copy a code block, then the whole answer.
    answer.locator(".copy-code").first.click()
    assert page.evaluate("navigator.clipboard.readText()") == code.inner_text()
    answer.locator(".copy-answer").click()
    assert page.evaluate("navigator.clipboard.readText()") == saved["content"]
    assert answer.locator(".copy-answer").inner_text() == "Copied"


def test_streamed_text_matches_the_hub_and_a_one_shot_render(server: ServeProcess, new_page: Any) -> None:
    page = open_page(new_page(), server.url + "/")
    with page.expect_response(lambda r: r.url.endswith("/chat") and r.request.method == "POST") as info:
        ask(page, "Compare things")
    topic = info.value.json()["topic"]
    wait_answer(page)
    truth = read_generation(server.url, topic)
    saved = stored_chat(page)["messages"][1]
    assert saved["content"] == truth.content
    assert saved["reasoning"] == truth.reasoning


def test_incremental_rendering_equals_a_full_render(server: ServeProcess, new_page: Any) -> None:
    """The streaming renderer freezes finished blocks; whatever the chunking, the text it
    shows before finish() is the text of one full render."""
    page = open_page(new_page(), server.url + "/")
    with page.expect_response(lambda r: r.url.endswith("/chat") and r.request.method == "POST") as info:
        ask(page, "Markdown please")
    wait_answer(page)
    text = read_generation(server.url, info.value.json()["topic"]).content
    text += (
        "\n\n1. one\n2. two\n\n   still two\n\n- a\n- b\n\n"
        "~~~py\nx = 1\n\n\ny = 2\n~~~\n\nend [ref]\n\n[ref]: /x\n"
    )
    result = page.evaluate(
        """async (text) => {
             const m = await import('./static/js/markdown.js');
             const results = [];
             for (const seed of [1, 7, 42]) {
               let s = seed;
               const rand = () => (s = (s * 16807) % 2147483647) / 2147483647;
               const a = document.createElement('div');
               a.className = 'answer markdown';
               document.querySelector('#messages').append(a);
               const stream = new m.MarkdownStream(a);
               let frozenSeen = 0;
               for (let i = 0; i < text.length; ) {
                 const n = 1 + Math.floor(rand() * 12);
                 stream.append(text.slice(i, i + n));
                 i += n;
                 if (rand() < 0.3) {
                   stream.flush();
                   frozenSeen = Math.max(frozenSeen, stream.frozen.children.length);
                 }
               }
               stream.flush();
               const streamed = a.innerText;
               stream.finish();
               results.push({ streamed, full: a.innerText, frozenSeen });
               a.remove();
             }
             return results;
           }""",
        text,
    )
    def norm(s: str) -> str:  # reference links resolve at finish
        return " ".join(s.split()).replace("[ref]", "ref")

    for r in result:
        assert r["frozenSeen"] > 3, "finished blocks should be frozen, not re-rendered"
        assert norm(r["streamed"]) == norm(r["full"])


def test_enter_sends_shift_enter_adds_a_line_and_the_box_grows(server: ServeProcess, new_page: Any) -> None:
    page = open_page(new_page(), server.url + "/")
    box = page.locator("#prompt")
    assert page.locator("#send").is_disabled()
    height = box.bounding_box()["height"]
    box.type("first line")
    for n in range(4):
        box.press("Shift+Enter")
        box.type(f"line {n + 2}")
    assert box.input_value() == "first line\nline 2\nline 3\nline 4\nline 5"
    assert page.locator("article.msg").count() == 0
    assert box.bounding_box()["height"] > height * 2
    assert page.locator("#send").is_enabled()
    box.press("Enter")
    bubble = page.locator("article.msg.user .bubble")
    bubble.wait_for()
    assert bubble.inner_text() == "first line\nline 2\nline 3\nline 4\nline 5"
    assert box.input_value() == ""
    wait_answer(page)
    assert box.bounding_box()["height"] <= height + 1


def test_conversations_new_switch_delete_and_survive_reload(server: ServeProcess, new_page: Any) -> None:
    page = open_page(new_page(), server.url + "/")
    ask(page, "First conversation")
    wait_answer(page)
    first = page.evaluate("location.hash")
    page.click("#new-chat")
    assert page.locator("article.msg").count() == 0
    assert page.locator("#welcome").is_visible()
    ask(page, "Second conversation")
    wait_answer(page)
    items = page.locator("#chat-list .chat-item-title")
    assert items.all_inner_texts() == ["Second conversation", "First conversation"]
    assert page.locator("#chat-list [aria-current=page]").inner_text().startswith("Second conversation")

    page.locator("#chat-list .chat-open", has_text="First conversation").click()
    assert page.evaluate("location.hash") == first
    assert page.locator("article.msg.user .bubble").all_inner_texts() == ["First conversation"]
    assert page.locator("#chat-title").inner_text() == "First conversation"

    page.reload()
    page.wait_for_selector("html[data-ready]")
    assert page.locator("article.msg.user .bubble").all_inner_texts() == ["First conversation"]
    assert last_answer(page).locator("table").count() == 1

    page.locator("#chat-list .chat-item", has_text="Second conversation").locator(".chat-delete").click()
    assert items.all_inner_texts() == ["First conversation"]
    toast = page.locator("#toast")
    assert "Deleted" in toast.inner_text()
    toast.locator("button", has_text="Undo").click()
    assert sorted(items.all_inner_texts()) == ["First conversation", "Second conversation"]

    page.locator("#chat-list .chat-item", has_text="First conversation").locator(".chat-delete").click()
    assert items.all_inner_texts() == ["Second conversation"]
    assert page.locator("article.msg").count() == 0  # the open chat was the deleted one


def test_regenerate_replaces_the_last_answer(server: ServeProcess, new_page: Any) -> None:
    page = open_page(new_page(), server.url + "/")
    ask(page, "Once more")
    wait_answer(page)
    with page.expect_request(lambda r: r.url.endswith("/chat") and r.method == "POST") as req:
        last_answer(page).locator(".regenerate").click()
    assert req.value.post_data_json["messages"] == [{"role": "user", "content": "Once more"}]
    wait_answer(page)
    assert page.locator("article.msg.assistant").count() == 1
    assert [m["role"] for m in stored_chat(page)["messages"]] == ["user", "assistant"]


def test_model_picker_lists_models_and_sends_the_choice(server: ServeProcess, new_page: Any) -> None:
    page = open_page(new_page(), server.url + "/")
    page.wait_for_function("() => document.querySelector('#model').options[0].text !== 'Default model'")
    assert "ssehub-demo" in page.locator("#model option").all_inner_texts()
    with page.expect_request(lambda r: r.url.endswith("/chat") and r.method == "POST") as req:
        ask(page, "Which model?")
    body = req.value.post_data_json
    assert body["model"] == "ssehub-demo" and body["provider"] == "demo"
    wait_answer(page)


def test_controls_have_accessible_names(server: ServeProcess, new_page: Any) -> None:
    page = open_page(new_page(), server.url + "/")
    ask(page, "Accessibility")
    wait_answer(page)
    unnamed = page.evaluate(
        """() => [...document.querySelectorAll('button, select, textarea, input, a[href]')]
              .filter((el) => el.offsetParent !== null)
              .filter((el) => !(el.getAttribute('aria-label') || el.textContent.trim() || el.labels?.length))
              .map((el) => el.outerHTML.slice(0, 80))"""
    )
    assert unnamed == []
    assert page.locator("#messages[role=log]").count() == 1
    assert page.get_by_label("Message", exact=True).count() == 1
    assert page.get_by_role("button", name="Send message").count() == 1


def test_phone_viewport(server: ServeProcess, new_page: Any) -> None:
    page = open_page(
        new_page(viewport={"width": 390, "height": 780}, is_mobile=True, has_touch=True),
        server.url + "/",
    )
    sidebar = page.locator("#sidebar")
    menu = page.locator("#menu")
    assert menu.is_visible()
    assert sidebar.bounding_box()["x"] + sidebar.bounding_box()["width"] <= 0  # off-canvas
    ask(page, "Phone question")
    wait_answer(page)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, "the page scrolls sideways"
    # Wide code and tables scroll inside their own boxes.
    wide = "() => { const t = document.querySelector('.table-wrap'); return t.scrollWidth > t.clientWidth; }"
    assert page.evaluate(wide)
    menu.tap()
    page.wait_for_function("() => document.querySelector('#sidebar').getBoundingClientRect().x >= 0")
    assert menu.get_attribute("aria-expanded") == "true"
    page.locator("#scrim").tap(position={"x": 370, "y": 400})
    page.wait_for_function("() => document.querySelector('#sidebar').getBoundingClientRect().right <= 0")
