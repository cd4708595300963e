"""Helpers for the browser tests: a TCP proxy that can cut
connections, a fake OpenAI-compatible upstream, and a plain SSE reader for checking pages
against what the hub really sent. Synchronous on purpose (Playwright's sync API).
Servers: tests/support's ServeProcess (``ServeProcess.configured(log, retry=200).start_blocking()``).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import re
import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.serve import ServeProcess
from tests.support.sse import sync_events, terminal
from tests.support.wait import wait_for

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "CuttingProxy", "FakeUpstream", "Generation", "ServeProcess",
           "answer_text", "ask", "last_answer", "open_page", "read_generation", "render_text", "running",
           "stored_chat", "wait_answer", "wait_for"]

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS

# -- reading a generation the way the hub sends it ---------------------------------------


@dataclass
class Generation:
    events: list[tuple[str | None, Any]] = field(default_factory=list)

    @property
    def content(self) -> str:
        return "".join(d["text"] for e, d in self.events if e == "content")

    @property
    def reasoning(self) -> str:
        return "".join(d["text"] for e, d in self.events if e == "reasoning")

    @property
    def terminal(self) -> tuple[str | None, Any]:
        return self.events[-1]


def read_generation(base_url: str, topic: str, timeout: float = 30.0) -> Generation:
    """All events of a generation topic from the start, until its terminal event."""
    gen = Generation()
    url = f"{base_url}/subscribe"
    params = {"topic": topic, "last_event_id": "earliest"}
    with httpx.stream("GET", url, params=params, timeout=timeout) as response:
        assert response.status_code == 200, response.read()
        for event in sync_events(response.iter_bytes()):
            if event.data:
                gen.events.append((event.event, json.loads(event.data)))
                if terminal(event):
                    return gen
    raise AssertionError(f"stream of {topic} ended without a terminal event: {gen.events[-3:]}")


# -- a TCP proxy that can cut every connection -------------------------------------------


class CuttingProxy:
    """127.0.0.1:<port> → target. ``cut()`` drops every open connection (like a network
    blip); while ``refusing`` is set, new connections get ``503`` (like a proxy in front of a
    restarting server), which makes EventSource give up (readyState CLOSED)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.refusing = False
        self.refused = 0
        self.cuts = 0
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.refusing:
                self.refused += 1
                with contextlib.suppress(OSError):
                    client.recv(65536)
                    client.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                                   b"Content-Length: 11\r\nConnection: close\r\n\r\nrestarting\n")
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns |= {client, upstream}
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                readable, _, _ = select.select([a, b], [], [], 0.5)
                for src in readable:
                    data = src.recv(65536)
                    if not data:
                        return
                    (b if src is a else a).sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.close()
            with self._lock:
                self._conns -= {a, b}

    def cut(self) -> None:
        self.cuts += 1
        with self._lock:
            conns = list(self._conns)
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closed = True
        self.listener.close()
        self.cut()


# -- a fake OpenAI-compatible upstream ---------------------------------------------------

XSS_REASONING = (
    'Thinking about <img src=x onerror="window.__xss=\'reasoning\'"> and '
    "<script>window.__xss=1</script>. "
)
XSS_CONTENT = (
    "Here is <script>window.__xss='script'</script> and "
    '<img src=x onerror="window.__xss=\'img\'"> inline.\n\n'
    "<svg onload=\"window.__xss='svg'\"><circle r=5></circle></svg>\n\n"
    "[click me](javascript:window.__xss='link') and ![pic](x\" onerror=\"window.__xss='alt')\n\n"
    "A [safe link](https://example.com/docs) and ![a picture](https://example.com/pixel.png).\n\n"
    '<a href="javascript:window.__xss=\'a\'">raw link</a> '
    '<iframe src="javascript:window.__xss=\'f\'"></iframe>\n\n'
    "```html\n<img src=x onerror=\"window.__xss='code'\">\n```\n\nDone.\n"
)


class FakeUpstream:
    """An OpenAI-compatible ``/v1/chat/completions`` that streams what the tests need.

    The last user message picks the behaviour: ``xss`` streams hostile markup, ``slow`` streams
    a tick every 50 ms for a minute (and records when the client hangs up), ``fail`` answers
    500 with a JSON error body; anything else echoes the message and the turn count.
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.slow_started = threading.Event()
        self.slow_disconnected = threading.Event()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                body = json.dumps({"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
                self._send(200, body.encode(), "application/json")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = json.loads(self.rfile.read(length) or b"{}")
                owner.requests.append(request)
                messages = request.get("messages", [])
                last = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
                if "fail" in last:
                    err = {"error": {"message": "fake upstream is on fire", "type": "server_error"}}
                    self._send(500, json.dumps(err).encode(), "application/json")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                try:
                    if "slow" in last:
                        owner.slow_started.set()
                        for i in range(1200):
                            self._chunk({"content": f"tick {i} "})
                            time.sleep(0.05)
                    elif "xss" in last:
                        self._chunk({"reasoning_content": XSS_REASONING})
                        for piece in re.findall(r".{1,7}", XSS_CONTENT, re.S):
                            self._chunk({"content": piece})
                    else:
                        turns = sum(1 for m in messages if m.get("role") == "user")
                        self._chunk({"content": f"Echo: {last} (turn {turns}, {len(messages)} messages)"})
                    self._chunk({}, finish="stop")
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    owner.slow_disconnected.set()

            def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> None:
                chunk = {"id": "c1", "object": "chat.completion.chunk", "model": "fake-model",
                         "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
                self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                self.wfile.flush()

            def _send(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextlib.contextmanager
def running(*closables: Any) -> Iterator[None]:
    try:
        yield
    finally:
        for c in closables:
            with contextlib.suppress(Exception):
                (c.stop_blocking if isinstance(c, ServeProcess) else c.close)()


# -- driving the chat page ---------------------------------------------------------------

def last_answer(page: Any) -> Any:
    return page.locator("article.msg.assistant").last


def open_page(page: Any, url: str) -> Any:
    page.goto(url)
    page.wait_for_selector("html[data-ready]")
    return page


def ask(page: Any, text: str) -> None:
    page.fill("#prompt", text)
    page.press("#prompt", "Enter")


def wait_answer(page: Any, timeout: float = 30.0) -> str:
    """Wait until the last answer is no longer streaming; returns its status."""
    page.wait_for_function(
        """() => { const a = [...document.querySelectorAll('article.msg.assistant')].pop();
                   return a && a.dataset.status !== 'streaming' && a.dataset.status !== 'interrupted'; }""",
        timeout=timeout * 1000,
    )
    return str(last_answer(page).get_attribute("data-status"))


def stored_chat(page: Any) -> dict[str, Any]:
    """The current conversation as the page saved it in localStorage."""
    chat = page.evaluate("JSON.parse(localStorage.getItem('ssehub.chat.v1.' + location.hash.slice(1)))")
    assert chat, "the current chat is not in localStorage"
    return dict(chat)


def answer_text(page: Any) -> str:
    return str(last_answer(page).locator(".answer").inner_text())


def render_text(page: Any, markdown: str) -> str:
    """The text of ``markdown`` rendered in one go by the page's own renderer."""
    return str(page.evaluate(
        """async (text) => {
             const m = await import('./static/js/markdown.js');
             const div = document.createElement('div');
             div.className = 'answer markdown';
             document.querySelector('#messages').append(div);
             m.renderInto(div, text);
             const out = div.innerText;
             div.remove();
             return out;
           }""",
        markdown,
    ))
