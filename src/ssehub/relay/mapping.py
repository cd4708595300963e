"""Upstream chat-completion chunks → hub events. Pure: no I/O, no clock, no asyncio.

The OpenAI-compatible streaming dialects this module accepts (fixtures for each live in
``tests/fixtures/upstream/``):

- a chunk is ``{"choices": [{"index": 0, "delta": {...}, "finish_reason": ...}], ...}``;
  the first delta often carries only ``role``; ``content`` may be ``null`` or ``""``;
- reasoning arrives as ``delta.reasoning_content`` (DeepSeek, SiliconFlow, older vLLM) or
  ``delta.reasoning`` (newer vLLM, Ollama ``/v1``, OpenRouter), or inline in ``content``
  between ``<think>`` and ``</think>`` (models served without a reasoning parser) — the tags
  may be split across chunks at any character, so :class:`ThinkSplitter` is a small state
  machine that holds back a possible tag prefix;
- ``choices`` may be empty: Azure's prompt-filter chunk, or the usage-only final chunk of
  ``stream_options.include_usage``; a choice may lack ``delta`` (Azure content-filter chunk);
- ``usage`` may be on the last chunk, on a chunk of its own, or (SiliconFlow) on every chunk:
  only the last one seen is published, once, just before ``done``;
- an error may arrive mid-stream as ``{"error": {...}}`` (OpenRouter, Ollama), as a vLLM
  ``{"object": "error", ...}``, or as ``finish_reason: "error"``;
- the stream ends with ``data: [DONE]``; some providers just close the connection after the
  chunk with ``finish_reason``. Closing before either is a dropped connection → ``error``.

Output events (``Out``): ``reasoning`` {"text"}, ``content`` {"text"}, ``usage`` {...} and
exactly one terminal ``done`` {"finish_reason"} or ``error`` {"message", "status"}. After the
terminal event the mapper ignores everything (``finished`` is True). ``start`` is published by
the generation itself, before the upstream answers.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

__all__ = [
    "ChunkMapper",
    "Out",
    "ThinkSplitter",
    "error_from_response",
    "map_completion",
    "merge_texts",
]

MAX_MESSAGE_CHARS = 500
_OPEN = "<think>"
_CLOSE = "</think>"


class Out(NamedTuple):
    """One hub event to publish: its name and its JSON payload."""

    event: str
    data: dict[str, Any]


def _text(kind: str, text: str) -> Out:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate ("\\ud83d" in the JSON): not UTF-8 text
            text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return Out(kind, {"text": text})


def _error(message: str, status: int | None) -> Out:
    return Out("error", {"message": _clip(message), "status": status})


def _clip(message: str) -> str:
    message = " ".join(str(message).split())  # no control characters, no line breaks
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 1] + "…"
    return message or "upstream error"


def _status(code: Any) -> int | None:
    """An HTTP-like status from an error object's ``code``/``status``, else None."""
    if isinstance(code, bool):
        return None
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    if isinstance(code, int) and 100 <= code <= 599:
        return code
    return None


def _error_message(obj: Any) -> tuple[str, int | None] | None:
    """Find an error in a decoded JSON body or chunk; None when there is none.

    Shapes: OpenAI/DeepSeek/Ollama/OpenRouter ``{"error": {"message", "code"|"type"}}``,
    ``{"error": "text"}``, vLLM ``{"object": "error", "message", "code"}``, SiliconFlow
    ``{"code": 20015, "message": "..."}``, FastAPI-style ``{"detail": "..."}``.
    """
    if not isinstance(obj, dict):
        return None
    err = obj.get("error")
    if isinstance(err, dict):
        message = err.get("message") or err.get("msg") or err.get("type") or "upstream error"
        meta = err.get("metadata")
        if isinstance(meta, dict) and isinstance(meta.get("raw"), str) and meta["raw"].strip():
            message = f"{message}: {meta['raw']}"
        return str(message), _status(err.get("code")) or _status(err.get("status"))
    if isinstance(err, str) and err:
        return err, _status(obj.get("code"))
    if obj.get("object") == "error":
        return str(obj.get("message") or "upstream error"), _status(obj.get("code"))
    return None


def error_from_response(status: int, body: bytes, content_type: str = "") -> Out:
    """The ``error`` event for a non-2xx upstream answer: its message, never a stack trace."""
    text = body.decode("utf-8", "replace").strip()
    message: str | None = None
    try:
        obj = json.loads(text) if text else None
    except ValueError:
        obj = None
    found = _error_message(obj)
    if found:
        message = found[0]
    elif isinstance(obj, dict):
        for key in ("message", "detail", "msg"):
            if isinstance(obj.get(key), str) and obj[key]:
                message = obj[key]
                break
    elif isinstance(obj, str):
        message = obj
    if message is None and text and "html" not in content_type.lower() and obj is None:
        message = text  # a short plain-text answer ("Invalid token")
    if not message:
        message = f"upstream answered HTTP {status}"
    return _error(message, status)


class ThinkSplitter:
    """Separate ``<think>…</think>`` at the start of ``content`` into reasoning.

    The opening tag counts only before any other non-blank content, so an answer that
    *talks about* ``<think>`` tags is not mangled; after ``</think>`` everything is content.
    Whitespace right after either tag is dropped. Text that might be the start of a tag is
    held back until the next piece decides (a tag may be split at any character).
    """

    __slots__ = ("_pending", "_skip_ws", "_state")

    def __init__(self) -> None:
        self._state = "start"  # "start" | "think" | "answer"
        self._pending = ""
        self._skip_ws = False

    def feed(self, text: str) -> list[Out]:
        if self._state == "answer" and not self._skip_ws:
            return [_text("content", text)] if text else []
        out: list[Out] = []
        buf = self._pending + text
        self._pending = ""
        if self._state == "start":
            head = buf.lstrip()
            if not head or (len(head) < len(_OPEN) and _OPEN.startswith(head)):
                self._pending = buf
                return out
            if not head.startswith(_OPEN):
                self._state = "answer"
                return [_text("content", buf)]
            self._state, self._skip_ws = "think", True
            buf = head[len(_OPEN):]
        if self._state == "think":
            if self._skip_ws:
                buf = buf.lstrip()
                if not buf:
                    return out
                self._skip_ws = False
            end = buf.find(_CLOSE)
            if end < 0:
                keep = _partial_suffix(buf, _CLOSE)
                if keep:
                    self._pending, buf = buf[-keep:], buf[:-keep]
                return [_text("reasoning", buf)] if buf else out
            if end:
                out.append(_text("reasoning", buf[:end]))
            self._state, self._skip_ws = "answer", True
            buf = buf[end + len(_CLOSE):]
        # state "answer", still dropping the whitespace after </think>
        buf = buf.lstrip()
        if buf:
            self._skip_ws = False
            out.append(_text("content", buf))
        return out

    def flush(self) -> list[Out]:
        """End of stream: release held-back text as what it would have been."""
        pending, self._pending = self._pending, ""
        if not pending:
            return []
        if self._state == "think":
            return [_text("reasoning", pending)]
        return [_text("content", pending)] if pending.strip() else []


def _partial_suffix(buf: str, tag: str) -> int:
    """Length of the longest suffix of ``buf`` that is a proper prefix of ``tag``."""
    for k in range(min(len(buf), len(tag) - 1), 0, -1):
        if buf.endswith(tag[:k]):
            return k
    return 0


class ChunkMapper:
    """Feed it the ``data`` of each upstream SSE event; it returns the hub events."""

    __slots__ = ("_finish", "_think", "_usage", "finished")

    def __init__(self, *, think_tags: bool = True) -> None:
        self._think = ThinkSplitter() if think_tags else None
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None
        self.finished = False

    def feed(self, data: str, event: str | None = None) -> list[Out]:
        """One upstream SSE event (its data and its ``event:`` type)."""
        if self.finished:
            return []
        if event == "error":
            return self._terminal([_error(data or "upstream error", None)])
        stripped = data.strip()
        if stripped == "[DONE]":
            return self.done()
        if not stripped:
            return []
        try:
            chunk = json.loads(stripped)
        except ValueError:
            return self._terminal([_error("upstream sent a chunk that is not JSON", None)])
        return self.feed_chunk(chunk)

    def feed_chunk(self, chunk: Any) -> list[Out]:
        """One decoded chunk."""
        if self.finished:
            return []
        if not isinstance(chunk, dict):
            return self._terminal([_error("upstream sent a chunk that is not an object", None)])
        found = _error_message(chunk)
        if found:
            return self._terminal([_error(*found)])
        usage = chunk.get("usage")
        if isinstance(usage, dict) and usage:
            self._usage = usage
        out: list[Out] = []
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            return out
        for choice in choices:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue  # n=1: only the first choice is relayed
            delta = choice.get("delta")
            if not isinstance(delta, dict):
                delta = choice.get("message")  # a whole message (non-streaming shape)
            if isinstance(delta, dict):
                out.extend(self._delta(delta))
            finish = choice.get("finish_reason")
            if finish == "error":
                return self._terminal(out, _error("upstream reported an error", None))
            if isinstance(finish, str) and finish:
                self._finish = finish
        return out

    def _delta(self, delta: dict[str, Any]) -> list[Out]:
        out: list[Out] = []
        reasoning = delta.get("reasoning_content")
        if not (isinstance(reasoning, str) and reasoning):
            reasoning = delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            out.append(_text("reasoning", reasoning))
        content = delta.get("content")
        if isinstance(content, str) and content:
            out.extend(self._think.feed(content) if self._think else [_text("content", content)])
        return out

    def end(self) -> list[Out]:
        """The upstream body ended (cleanly or not) without ``[DONE]``."""
        if self.finished:
            return []
        if self._finish is not None:
            return self.done()
        flushed = self._think.flush() if self._think else []
        return self._terminal(
            flushed,
            _error("upstream closed the connection before the answer was complete", None),
        )

    def fail(self, message: str, status: int | None = None) -> list[Out]:
        """A transport failure (time-out, refused connection): the terminal ``error``."""
        if self.finished:
            return []
        return self._terminal([], _error(message, status))

    def done(self) -> list[Out]:
        """The upstream said the answer is complete (``[DONE]``): usage, then ``done``."""
        if self.finished:
            return []
        out = self._think.flush() if self._think else []
        if self._usage is not None:
            out.append(Out("usage", self._usage))
        return self._terminal(out, Out("done", {"finish_reason": self._finish or "stop"}))

    def _terminal(self, out: list[Out], last: Out | None = None) -> list[Out]:
        self.finished = True
        if last is not None:
            out.append(last)
        return out


def map_completion(obj: Any, *, think_tags: bool = True) -> list[Out]:
    """A whole (non-streamed) ``chat.completion`` JSON answer → the same event sequence."""
    mapper = ChunkMapper(think_tags=think_tags)
    out = mapper.feed_chunk(obj)
    if mapper.finished:
        return out
    if not (isinstance(obj, dict) and isinstance(obj.get("choices"), list) and obj["choices"]):
        return out + mapper.fail("upstream answer has no choices")
    return out + mapper.done()


def merge_texts(outs: list[Out]) -> list[Out]:
    """Join consecutive ``reasoning`` (or ``content``) events into one.

    Used on what one network read produced: no added latency, fewer hub events when the
    upstream is faster than the relay's reads (and more answer per retained history entry).
    """
    if len(outs) < 2:
        return outs
    merged: list[Out] = []
    for out in outs:
        if merged and out.event in ("reasoning", "content") and merged[-1].event == out.event:
            merged[-1] = Out(out.event, {"text": merged[-1].data["text"] + out.data["text"]})
        else:
            merged.append(out)
    return merged
