"""Browser-test fixtures: Debian's Chromium driven by Playwright (never `playwright install`).

Without /usr/bin/chromium these tests skip, except under CI (env CI set), where they fail.
Each test module starts its own ``ssehub serve``; each test gets a fresh browser context that
records uncaught page errors and Content-Security-Policy violations, and fails on either.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.browser import require_chromium

from .support import CHROMIUM_ARGS

# Recorded in the page before any of its own scripts run.
_WATCH = """
window.__problems = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__problems.push('CSP: ' + e.violatedDirective + ' ' + (e.blockedURI || '') + ' ' + (e.sample || ''));
});
"""


@pytest.fixture(scope="session")
def chromium_path() -> str:
    return require_chromium()


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class PageWatch:
    """Uncaught errors of a page; ``check()`` fails the test when there were any."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.pages: list[Any] = []

    def attach(self, page: Any) -> None:
        self.pages.append(page)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))

    def problems(self) -> list[str]:
        found = list(self.errors)
        for page in self.pages:
            if not page.is_closed():
                # A page in the middle of a navigation has no window to ask.
                with contextlib.suppress(Exception):
                    found += page.evaluate("window.__problems || []")
        return found


@pytest.fixture
def new_page(browser: Any) -> Iterator[Any]:
    """Factory: ``new_page(color_scheme="dark", viewport={...}, bypass_csp=False)`` → Page."""
    contexts: list[Any] = []
    watch = PageWatch()

    def make(**options: Any) -> Any:
        options.setdefault("viewport", {"width": 1280, "height": 860})
        options.setdefault("color_scheme", "light")
        context = browser.new_context(**options)
        context.add_init_script(_WATCH)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        watch.attach(page)
        return page

    yield make
    problems = watch.problems()
    for context in contexts:
        context.close()
    assert not problems, problems
