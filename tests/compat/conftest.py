"""Compatibility suite: ssehub's streams read by the clients people really use.

One real ``ssehub serve`` per module (tests/support/serve.ServeProcess: SSEHUB_* settings, a free
port), with a short heartbeat so every test sees heartbeats, and a short retry so that
EventSource reconnects quickly. The clients are the real packages: httpx-sse, sseclient-py,
Chromium's EventSource (Playwright on /usr/bin/chromium), the OpenAI Python SDK.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, require_chromium
from tests.support.serve import ServeProcess

HEARTBEAT = 0.1  # seconds: several heartbeats pass in any test that waits a moment


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    srv = ServeProcess.configured(tmp_path_factory.mktemp("serve") / "serve.log", retry=200,
                                  heartbeat=HEARTBEAT, history_size=5).start_blocking()
    yield srv
    srv.stop_blocking()


def publish(server: ServeProcess, topic: str | list[str], data: str, event: str | None = None) -> str:
    body: dict[str, Any] = {"topic": topic, "data": data}
    if event is not None:
        body["event"] = event
    response = httpx.post(server.url + "/publish", json=body, timeout=10)
    assert response.status_code == 200, response.text
    ident: str = response.json()["id"]
    return ident


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_chromium()
    from playwright import sync_api
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    context.set_default_timeout(15_000)
    errors: list[str] = []
    pg = context.new_page()
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, errors
