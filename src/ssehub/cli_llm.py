"""``ssehub chat`` and ``ssehub simulate-llm``: registered into the main parser by ``cli.py``.

``ssehub chat "question"`` starts a generation (``POST /chat``), follows its topic (resuming
after a dropped connection with ``Last-Event-ID``) and prints the answer as it streams. The
reasoning goes to the terminal dimmed when stdout is a terminal, else to stderr, so that
``ssehub chat "…" > answer.md`` keeps only the answer. Ctrl-C stops the generation on the
server (``DELETE /chat/G``) and exits with status 130; so does a stream that cannot be read
(the generation is stopped rather than left running unread).

Model text is untrusted: C0 and C1 control characters other than newline and tab are
removed before it reaches the terminal (no escape sequences that retitle the window, move
the cursor or rewrite the screen).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import sys
from typing import Any, TextIO

import httpx

from .wire import Parser

__all__ = ["register", "run_chat"]

DEFAULT_URL = "http://127.0.0.1:8181"
DIM, RESET = "\x1b[2m", "\x1b[0m"
_UNREAD = -1  # _follow could not read the stream: stop the generation, exit 1
RECONNECTS = 5
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` without C0/C1 control characters, newline and tab excepted."""
    return _CONTROLS.sub("", text)


class _Printer:
    """Reasoning: dimmed on a terminal, else to stderr. Answer: stdout."""

    def __init__(self, out: TextIO, err: TextIO, tty: bool, reasoning: bool) -> None:
        self.out, self.err, self.tty, self.show_reasoning = out, err, tty, reasoning
        self.reasoning_to = out if tty else err
        self.mode = ""  # "reasoning" | "content" | "" (nothing printed yet, or closed)

    def text(self, kind: str, text: str) -> None:
        if kind == "reasoning" and not self.show_reasoning:
            return
        if kind != self.mode:
            self._end_reasoning("\n\n")
            if kind == "reasoning" and self.tty:
                self.out.write(DIM)
            self.mode = kind
        stream = self.reasoning_to if kind == "reasoning" else self.out
        stream.write(printable(text))
        stream.flush()

    def _end_reasoning(self, gap: str) -> None:
        if self.mode == "reasoning":
            self.reasoning_to.write((RESET if self.tty else "") + gap)
            self.reasoning_to.flush()

    def close(self) -> None:
        self._end_reasoning("\n")
        if self.mode == "content":
            self.out.write("\n")
            self.out.flush()
        self.mode = ""


def _error_text(resp: httpx.Response) -> str:
    try:
        return str(resp.json()["error"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {resp.status_code}"


async def _follow(client: httpx.AsyncClient, url: str, printer: _Printer) -> int:
    """Read the generation's events to the end; resume after drops. Returns the exit status."""
    parser = Parser()
    for _ in range(RECONNECTS + 1):
        headers = {"last-event-id": parser.last_event_id} if parser.last_event_id else {}
        try:
            async with client.stream("GET", url, headers=headers) as resp:
                if resp.status_code != 200:
                    await resp.aread()
                    printer.close()
                    print(f"ssehub chat: cannot read the answer: {_error_text(resp)}", file=printer.err)
                    return _UNREAD
                async for piece in resp.aiter_bytes():
                    for event in parser.feed(piece):
                        status = _show(event.event, event.data, printer)
                        if status is not None:
                            return status
        except (httpx.TransportError, httpx.RemoteProtocolError):
            pass
        parser.close()
        await asyncio.sleep(0.5)
    printer.close()
    print("ssehub chat: lost the connection to the server", file=printer.err)
    return _UNREAD


def _show(kind: str | None, data: str, printer: _Printer) -> int | None:
    try:
        payload: Any = json.loads(data)
    except ValueError:
        return None
    if kind in ("reasoning", "content") and isinstance(payload, dict):
        printer.text(kind, str(payload.get("text", "")))
    elif kind == "done":
        printer.close()
        reason = payload.get("finish_reason") if isinstance(payload, dict) else None
        if reason == "length":
            print("ssehub chat: the answer was cut off (max_tokens)", file=printer.err)
        return 130 if reason == "cancelled" else 0
    elif kind == "error":
        printer.close()
        message = payload.get("message") if isinstance(payload, dict) else payload
        print(f"ssehub chat: upstream error: {printable(str(message))}", file=printer.err)
        return 1
    return None


async def run_chat(
    url: str,
    question: str,
    *,
    model: str | None = None,
    provider: str | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    tty: bool | None = None,
    reasoning: bool = True,
    token: str | None = None,
) -> int:
    """Ask, stream the answer; on cancellation (Ctrl-C) stop the generation and return 130.
    ``token`` (sent as ``Authorization: Bearer``) is needed when the hub has auth on."""
    out = out or sys.stdout
    err = err or sys.stderr
    if tty is None:
        tty = out.isatty() and os.environ.get("NO_COLOR") is None
    printer = _Printer(out, err, tty, reasoning)
    base = url.rstrip("/")
    body: dict[str, Any] = {"messages": [{"role": "user", "content": question}]}
    if model:
        body["model"] = model
    if provider:
        body["provider"] = provider
    timeout = httpx.Timeout(10.0, read=None)
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=timeout, headers=auth) as client:
        try:
            resp = await client.post(base + "/chat", json=body)
        except httpx.TransportError as exc:
            print(f"ssehub chat: cannot reach {base}: {type(exc).__name__}", file=err)
            return 1
        if resp.status_code != 200:
            print(f"ssehub chat: {_error_text(resp)}", file=err)
            return 1
        info = resp.json()

        async def stop() -> None:
            with contextlib.suppress(httpx.HTTPError, asyncio.TimeoutError):
                await asyncio.wait_for(client.delete(f"{base}/chat/{info['id']}"), 5)

        try:
            status = await _follow(client, events_url(base, info["events"]), printer)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            printer.close()
            await stop()
            return 130
        except BrokenPipeError:  # `ssehub chat … | head -3`: nobody reads the rest
            await stop()
            raise
        if status == _UNREAD:
            await stop()
            return 1
        return status


def events_url(base: str, events: str) -> str:
    """The generation's events URL, from the ``events`` field of ``POST /chat``.

    A mounted hub answers a path that already carries its prefix (``/hub/subscribe?…``):
    an absolute path is resolved against the origin, as a browser does, not appended to
    ``--url`` (which would give ``/hub/hub/subscribe``); a relative one against ``--url``.
    """
    return str(httpx.URL(base.rstrip("/") + "/").join(events))


def _cmd_chat(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(run_chat(args.url, args.question, model=args.model, provider=args.provider,
                                    reasoning=not args.no_reasoning, token=args.token or None))
    except KeyboardInterrupt:
        return 130


def _cmd_simulate(args: argparse.Namespace) -> int:
    import uvicorn

    from .relay.simulator import create_simulator

    try:
        app = create_simulator(args.tokens_per_second, args.fault)
    except ValueError as exc:
        print(f"ssehub simulate-llm: {exc}", file=sys.stderr)
        return 2
    print(f"OpenAI-compatible simulator on http://{args.host}:{args.port}/v1 "
          f"({args.tokens_per_second:g} tokens/s{', fault ' + args.fault if args.fault else ''})",
          file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def register(subparsers: Any) -> None:
    """Add ``chat`` and ``simulate-llm`` to the ``ssehub`` command."""
    chat = subparsers.add_parser("chat", help="ask a question and stream the answer to the terminal")
    chat.add_argument("question")
    chat.add_argument("--model", help="model name (default: the provider's first model)")
    chat.add_argument("--provider", help="provider name (default: the server's default provider)")
    chat.add_argument("--url", default=os.environ.get("SSEHUB_URL") or DEFAULT_URL,
                      help=f"ssehub server URL (default {DEFAULT_URL}, or SSEHUB_URL)")
    chat.add_argument("--no-reasoning", action="store_true", help="do not print the reasoning")
    chat.add_argument("--token", default=os.environ.get("SSEHUB_TOKEN"),
                      help="JWT for a hub with auth on (default: SSEHUB_TOKEN; prefer the variable: "
                           "flags show up in process lists)")
    chat.set_defaults(func=_cmd_chat)

    sim = subparsers.add_parser("simulate-llm", help="run the simulated OpenAI-compatible LLM server")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8282)
    sim.add_argument("--tokens-per-second", type=float, default=40.0,
                     help="pace of the stream; 0 = as fast as possible (default 40)")
    sim.add_argument("--fault", help="error-<status> | drop | stall | midstream-error | think | "
                                     "reasoning-field (also per request: X-Simulator-Fault header)")
    sim.add_argument("--log-level", default="info")
    sim.set_defaults(func=_cmd_simulate)
