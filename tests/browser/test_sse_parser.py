"""The console's own SSE parser (static/js/sse.js), run in Chromium: the WPT ``format-*``
table that the Python parser passes (tests/wire/test_parse_wpt.py), fed whole, one byte at a
time and split at every position; and the position a hub stream opens at (its
``SSEHub-Start-Id`` header and opening ``id:`` line) survives into the reconnect."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ..wire.test_parse_wpt import CASES
from .support import CuttingProxy, ServeProcess, open_page, wait_for

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, chromium_path: str) -> Iterator[ServeProcess]:
    srv = ServeProcess.configured(tmp_path_factory.mktemp("serve") / "serve.log", retry=200).start_blocking()
    yield srv
    srv.stop_blocking()


# Runs one case under every chunking; returns what the page's parser observed per chunking.
RUN_CASES = """
async (cases) => {
  const { SSEParser } = await import('./static/js/sse.js');
  const run = (bodies, split) => {
    const events = [];
    let retry = null;
    const parser = new SSEParser({
      onEvent: (e) => events.push([e.type, e.data, e.id]),
      onRetry: (ms) => (retry = ms),
    });
    for (const body of bodies) {
      const bytes = Uint8Array.from(body);
      const decoder = new TextDecoder();  // a fresh connection: one leading BOM is stripped
      for (const chunk of split(bytes)) parser.feed(decoder.decode(chunk, { stream: true }));
      parser.feed(decoder.decode());
      parser.reset();  // end of stream: an unterminated event is discarded
    }
    return JSON.stringify({ events, retry, lastEventId: parser.lastEventId });
  };
  const out = {};
  for (const c of cases) {
    const results = new Set();
    results.add(run(c.bodies, (b) => [b]));
    results.add(run(c.bodies, (b) => Array.from(b, (_, i) => b.subarray(i, i + 1))));
    const longest = Math.max(...c.bodies.map((b) => b.length));
    for (let cut = 0; cut <= longest; cut++) {
      results.add(run(c.bodies, (b) => [b.subarray(0, cut), b.subarray(cut)]));
    }
    out[c.name] = [...results].map((r) => JSON.parse(r));
  }
  return out;
}
"""


def test_wpt_table_through_the_console_parser(server: ServeProcess, new_page: Any) -> None:
    page = open_page(new_page(), server.url + "/console")
    cases = [{"name": c.name, "bodies": [list(b) for b in c.bodies]} for c in CASES]
    observed = page.evaluate(RUN_CASES, cases)
    for case in CASES:
        expected = {
            "events": [[e.event or "message", e.data, e.id or ""] for e in case.events],
            "retry": case.retry,
            "lastEventId": case.last_event_id,
        }
        # every chunking gave one and the same result, and it is the expected one
        assert observed[case.name] == [expected], case.name


def test_reconnect_resumes_from_the_opening_position(server: ServeProcess, new_page: Any) -> None:
    """No event arrives before the drop: the only id the console saw is the opening's (the
    hub's position when the stream opened, from the SSEHub-Start-Id header). The reconnect
    must send it, so an event published while the console was away still arrives (and none
    from before)."""
    before = httpx.post(server.url + "/publish", json={"topic": "open", "data": "before"}).json()["id"]
    proxy = CuttingProxy(server.port)
    try:
        page = open_page(new_page(), proxy.url + "/console")
        page.evaluate("""async () => {
            const { FetchEventSource } = await import('./static/js/sse.js');
            window.__seen = []; window.__states = [];
            window.__src = new FetchEventSource('subscribe?topic=open', {
              onEvent: (e) => window.__seen.push([e.data, e.id]),
              onState: (s) => window.__states.push(s),
            });
        }""")
        page.wait_for_function("() => window.__states.includes('open') && window.__src.lastEventId !== ''")
        assert page.evaluate("window.__src.lastEventId") == before  # where the stream opened
        proxy.refusing = True
        proxy.cut()
        missed = httpx.post(server.url + "/publish", json={"topic": "open", "data": "missed"}).json()["id"]
        wait_for(lambda: proxy.refused >= 1, what="a refused reconnect")
        proxy.refusing = False
        page.wait_for_function("() => window.__seen.length >= 1", timeout=15_000)
        page.wait_for_timeout(300)
        assert page.evaluate("window.__seen") == [["missed", missed]]
        page.evaluate("window.__src.close()")
    finally:
        proxy.close()
