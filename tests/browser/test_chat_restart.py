"""The chat page when the server restarts mid-answer (a memory hub: the generation is gone).

It must say what happened — "Connection lost — reconnecting…" while it is away, then
"Generation lost" once it is clear the answer cannot be resumed — keep what arrived,
rendered as Markdown, and offer Retry (which works against the new server). Never
"Stopped": nobody pressed stop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .support import ServeProcess, answer_text, ask, last_answer, open_page, wait_for

pytestmark = pytest.mark.browser

SETTINGS = {"demo_tokens_per_second": 25, "retry": 250, "chat_grace": 30}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def streamed_past_the_bold_line(page: Any) -> None:
    # the demo answer opens with "> **This is a demonstration answer …** No language model was
    # called.": wait until that line is complete, so what arrived is valid Markdown
    page.wait_for_function(
        """() => (document.querySelector('article.msg.assistant:last-of-type .answer')?.innerText || '')
                   .includes('You asked')""",
        timeout=30_000,
    )


def check_lost(page: Any) -> None:
    answer = last_answer(page)
    page.wait_for_function(
        "() => document.querySelector('article.msg.assistant:last-of-type')?.dataset.status === 'lost'",
        timeout=30_000,
    )
    status = answer.locator(".msg-status").inner_text()
    assert status == "Generation lost", status
    notice = answer.locator(".notice")
    assert notice.is_visible() and "Generation lost" in notice.inner_text()
    assert answer.locator(".notice .retry").is_visible()
    # what arrived stays, rendered as Markdown (the bold is bold, no raw asterisks)
    text = answer_text(page)
    assert "This is a demonstration answer" in text and "**" not in text, text
    assert answer.locator(".answer blockquote strong").count() == 1
    assert "Stopped" not in answer.inner_text()


def retry_works(page: Any) -> None:
    last_answer(page).locator(".notice .retry").click()
    page.wait_for_function(
        "() => document.querySelector('article.msg.assistant:last-of-type')?.dataset.status === 'done'",
        timeout=60_000,
    )
    assert "Connect a real model" in answer_text(page)
    assert page.locator("article.msg.assistant").count() == 1  # replaced, not added


def test_graceful_restart_mid_answer(tmp_path: Path, chromium_path: str, new_page: Any) -> None:
    port = free_port()
    first = ServeProcess.configured(tmp_path / "first.log", port=port, **SETTINGS).start_blocking()
    second = None
    try:
        page = open_page(new_page(), first.url + "/")
        ask(page, "hello")
        streamed_past_the_bold_line(page)
        first.stop_blocking()  # SIGTERM: the hub ends the generation (done: cancelled) and its streams
        second = ServeProcess.configured(tmp_path / "second.log", port=port, **SETTINGS).start_blocking()
        check_lost(page)
        retry_works(page)
    finally:
        first.stop_blocking()
        if second is not None:
            second.stop_blocking()


def test_crash_mid_answer(tmp_path: Path, chromium_path: str, new_page: Any) -> None:
    port = free_port()
    first = ServeProcess.configured(tmp_path / "first.log", port=port, **SETTINGS).start_blocking()
    second = None
    try:
        page = open_page(new_page(), first.url + "/")
        ask(page, "hello")
        streamed_past_the_bold_line(page)
        first.kill()  # no terminal event: the browser keeps reconnecting
        status = last_answer(page).locator(".msg-status")
        wait_for(lambda: status.inner_text() == "Connection lost — reconnecting…", timeout=15,
                 what="the reconnecting notice")
        assert last_answer(page).get_attribute("data-status") == "streaming"
        # the new hub does not know the generation: its resume answers a gap (other-epoch)
        second = ServeProcess.configured(tmp_path / "second.log", port=port, **SETTINGS).start_blocking()
        check_lost(page)
        retry_works(page)
    finally:
        first.kill()
        if second is not None:
            second.stop_blocking()
