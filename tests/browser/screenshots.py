"""Make docs/screenshots/{chat,console}-{light,dark}.png with a real server and Chromium.

    python -m tests.browser.screenshots [--out docs/screenshots]

Not a test (it writes into the repository); run it after changing how the pages look.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import ViewportSize, sync_playwright

from .support import CHROMIUM, CHROMIUM_ARGS, ServeProcess, ask, open_page, wait_answer

ROOT = Path(__file__).resolve().parents[2]
VIEWPORT: dict[str, ViewportSize] = {
    "chat": {"width": 1360, "height": 1000},
    "console": {"width": 1360, "height": 900},
}


def chat(page: Any, url: str, out: Path) -> None:
    open_page(page, url + "/")
    for question in ("How does Last-Event-ID make a stream resumable?", "Publish from a cron job with curl"):
        ask(page, question)
        wait_answer(page)
        page.click("#new-chat")
    ask(page, "Compare SSE, WebSockets and long polling in a table")
    wait_answer(page)
    page.mouse.move(0, 0)
    # Show the question, the folded reasoning, the code block and the start of the table.
    page.evaluate("() => { document.querySelector('#scroller').scrollTop = 0; }")
    page.locator("#prompt").blur()
    page.wait_for_timeout(200)
    page.evaluate("() => { document.querySelector('#jump').hidden = true; }")
    page.screenshot(path=str(out))


def console(page: Any, url: str, out: Path) -> None:
    open_page(page, url + "/console")
    def post(**body: Any) -> None:
        httpx.post(f"{url}/publish", json=body).raise_for_status()


    def sub(*topics: str, resume: str = "") -> None:
        for t in topics:
            page.fill("#sub-topic-input", t)
            page.press("#sub-topic-input", "Enter")
        page.fill("#sub-resume", resume)
        page.click("#sub-btn")
        page.locator("#subs .sub").last.locator(".state-dot.open").wait_for()

    post(topic="orders", data={"order": 1041, "status": "paid"}, event="order")
    sub("news", "prices")
    sub("orders", resume="1-1")
    post(topic="news", data="Release 0.1 is out: exact resume, LLM streaming, a console.")
    post(topic="prices", data={"symbol": "ACME", "bid": 101.25, "ask": 101.5}, event="tick")
    post(topic="orders", data={"order": 1042, "status": "shipped", "items": 3}, event="order")
    post(topic="prices", data={"symbol": "ACME", "bid": 101.5, "ask": 101.75}, event="tick")
    post(topic="news", data={"headline": "Redis broker lands", "tags": ["scale", "resume"]}, event="update")
    page.fill("#pub-topic", "news")
    page.fill("#pub-event", "update")
    page.fill("#pub-data", '{"headline": "Hello from the console"}')
    page.check("#pub-json")
    page.click("#topics-refresh")
    page.locator("#topics li").first.wait_for()
    page.wait_for_timeout(1500)  # let the "fresh" highlight fade
    page.evaluate("() => { document.activeElement.blur(); window.scrollTo(0, 0); }")
    page.mouse.move(0, 0)
    page.screenshot(path=str(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for scheme in ("light", "dark"):
            for name, make in (("chat", chat), ("console", console)):
                # A fresh server each time, so every picture starts from an empty hub.
                server = ServeProcess.configured(Path(tmp) / f"{name}-{scheme}.log",
                                                 demo_tokens_per_second=2000, heartbeat=5)
                server.start_blocking()
                try:
                    context = browser.new_context(viewport=VIEWPORT[name], color_scheme=scheme)
                    make(context.new_page(), server.url, args.out / f"{name}-{scheme}.png")
                    context.close()
                finally:
                    server.stop_blocking()
                print(args.out / f"{name}-{scheme}.png")
        browser.close()


if __name__ == "__main__":
    main()
