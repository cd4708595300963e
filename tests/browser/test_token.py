"""The pages with auth on (token.js): a 401 shows the token dialog, the pasted token is kept
as the `ssehub_token` cookie (SameSite=Strict, path=/) and the request is retried; a wrong
token asks again; "Clear token" forgets it.

The server is real (uvicorn serving ssehub's app) behind a small ASGI gate with the auth
contract of SPEC §5 for the cookie: 401 + JSON error without a valid token, the hub's own
answer with it. (Server-side JWT auth is built separately; the pages only need the contract.)
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.support.serve import uvicorn_process

from .support import open_page

pytestmark = pytest.mark.browser

GOOD = "good-token"
GATE = f"""
import json
from http.cookies import SimpleCookie
from ssehub.asgi import create_app
from ssehub.config import Settings

hub = create_app(Settings(retry=200))
PROTECTED = ("/publish", "/topics", "/subscribe", "/chat", "/v1/models")
seen = []

async def app(scope, receive, send):
    if scope["type"] == "http" and scope["path"].startswith(PROTECTED):
        headers = dict(scope["headers"])
        cookie = SimpleCookie(headers.get(b"cookie", b"").decode())
        token = cookie["ssehub_token"].value if "ssehub_token" in cookie else None
        if token != {GOOD!r}:
            error = "missing token" if token is None else "invalid token: bad signature"
            body = json.dumps({{"error": error}}).encode()
            await send({{"type": "http.response.start", "status": 401, "headers": [
                (b"content-type", b"application/json"),
                (b"www-authenticate", b'Bearer error="invalid_token"'),
                (b"content-length", str(len(body)).encode())]}})
            await send({{"type": "http.response.body", "body": body}})
            return
    await hub(scope, receive, send)
"""


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory, chromium_path: str) -> Iterator[str]:


    folder: Path = tmp_path_factory.mktemp("gate")
    (folder / "gate.py").write_text(GATE)
    cmd = [sys.executable, "-m", "uvicorn", "gate:app", "--host", "127.0.0.1", "--port", "0"]
    with uvicorn_process(cmd, folder / "uvicorn.log", cwd=folder) as port:
        yield f"http://127.0.0.1:{port}"


def token_cookie(page: Any) -> dict[str, Any] | None:
    return next((c for c in page.context.cookies() if c["name"] == "ssehub_token"), None)


def topics_say(page: Any, text: str) -> None:
    page.wait_for_function("(t) => document.querySelector('#topics-empty').textContent === t", arg=text)


def test_console_asks_for_a_token_keeps_it_and_retries(gated: str, new_page: Any) -> None:
    page = open_page(new_page(), gated + "/console")
    dialog = page.locator("dialog.token-dialog")
    dialog.wait_for()  # GET topics answered 401
    assert "missing token" in dialog.inner_text()
    assert page.locator(".token-bar").is_hidden()  # nothing to clear yet

    # a wrong token: saved, retried, refused again -> the dialog comes back with the reason
    page.fill(".token-input", "wrong")
    page.click(".token-save")
    page.wait_for_function(
        "() => document.querySelector('dialog.token-dialog')?.innerText.includes('bad signature')")
    page.fill(".token-input", GOOD)
    page.click(".token-save")
    dialog.wait_for(state="detached")
    cookie = token_cookie(page)
    assert cookie is not None
    assert (cookie["value"], cookie["path"], cookie["sameSite"]) == (GOOD, "/", "Strict")
    # the retried request went through: the topic list is the hub's answer, not an error
    topics_say(page, "No active topics.")

    # later requests carry the cookie: subscribing (fetch) and publishing work
    page.fill("#sub-topic-input", "gated")
    page.press("#sub-topic-input", "Enter")
    page.click("#sub-btn")
    page.locator("#subs .sub .state-dot.open").wait_for()
    page.fill("#pub-topic", "gated")
    page.fill("#pub-data", "behind the gate")
    page.click("#pub-form button[type=submit]")
    page.locator("#pub-result.ok").wait_for()
    page.locator("#events tr:not(.note)").first.wait_for()
    assert "behind the gate" in page.locator("#events tr:not(.note)").first.inner_text()

    # "Clear token" deletes the cookie; the next 401 asks again
    assert page.locator(".token-bar").is_visible()
    page.click(".token-clear")
    assert token_cookie(page) is None
    assert page.locator(".token-bar").is_hidden()
    # the next 401 asks again: the refresh asks the hub, unless another request of the page
    # (a periodic refresh, a reconnect) already got its 401 and the dialog is up
    if not dialog.is_visible():
        with contextlib.suppress(PlaywrightTimeout):
            page.click("#topics-refresh", timeout=3000)
    dialog.wait_for()
    page.click(".token-cancel")
    dialog.wait_for(state="detached")
    topics_say(page, "Topic list unavailable.")


def test_chat_sends_the_question_after_the_token_is_given(gated: str, new_page: Any) -> None:
    page = new_page()
    page.goto(gated + "/")
    page.wait_for_selector("html[data-ready]")
    page.locator("dialog.token-dialog").wait_for()  # GET v1/models answered 401
    page.fill(".token-input", GOOD)
    page.click(".token-save")
    page.locator("dialog.token-dialog").wait_for(state="detached")
    page.fill("#prompt", "hello")
    page.press("#prompt", "Enter")
    page.wait_for_function(
        "() => document.querySelector('article.msg.assistant')?.dataset.status === 'done'", timeout=60_000)
    assert "demo" in page.locator("article.msg.assistant .answer").inner_text().lower()
