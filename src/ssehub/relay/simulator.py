"""A simulated OpenAI-compatible LLM server (ASGI): the demo provider and a test/bench upstream.

``POST /v1/chat/completions`` (``stream`` true or false) streams DeepSeek-style chunks: a
role-only first delta, ``reasoning_content`` deltas, a Markdown answer (code block, table),
a finish chunk, a usage chunk with empty ``choices``, ``data: [DONE]``. ``GET /v1/models``
lists the model. ``tokens_per_second`` paces the stream (0 = as fast as possible).

``X-Simulator-Timestamps: 1`` (benchmarks) makes every answer token the time it was sent
(``"1763700000.123456 "``), so a reader can measure each token's latency.

Faults, for the server (``fault=``) or per request (``X-Simulator-Fault`` header, or the model
name ``ssehub-demo+<fault>``; per request only with ``faults=True``, which the hub's demo
provider sets only when ``simulator_faults`` is on):

- ``error-<status>`` — answer that HTTP status with an OpenAI-style JSON error body;
- ``drop`` — after a few tokens, abort the connection (no finish, no ``[DONE]``);
- ``stall`` — after a few tokens, send nothing more and keep the connection open;
- ``midstream-error`` — after a few tokens, an ``{"error": …}`` chunk (as OpenRouter does);
- ``think`` — reasoning inline in ``content`` as ``<think>…</think>`` (no reasoning parser);
- ``reasoning-field`` — reasoning in ``delta.reasoning`` (vLLM ≥ 0.10, Ollama, OpenRouter).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .demo_answer import demo_answer, demo_reasoning, tokens
from .providers import DEMO_MODEL

__all__ = ["FAULTS", "create_simulator"]

FAULTS = ("error-<status>", "drop", "stall", "midstream-error", "think", "reasoning-field")
FAULT_AFTER = 6  # tokens sent before drop / stall / midstream-error
MAX_BODY = 4 * 1024 * 1024  # request body limit of a standalone simulator
_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no")]
_ERRORS = {
    400: ("invalid_request_error", "Simulated bad request."),
    401: ("invalid_request_error", "Incorrect API key provided (simulated)."),
    402: ("insufficient_quota", "Insufficient balance (simulated)."),
    429: ("rate_limit_error", "Rate limit reached for requests (simulated)."),
    500: ("server_error", "The server had an error while processing your request (simulated)."),
    503: ("server_error", "The engine is currently overloaded (simulated)."),
}


def _check_fault(fault: str | None) -> str | None:
    if not fault:
        return None
    if fault.startswith("error-"):
        code = fault[6:]
        if code.isdigit() and 400 <= int(code) <= 599:
            return fault
    elif fault in FAULTS:
        return fault
    raise ValueError(f"unknown simulator fault {fault!r}; one of: {', '.join(FAULTS)}")


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def _prompt(messages: Any) -> str:
    if isinstance(messages, list):
        for m in reversed(messages):
            if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str):
                return str(m["content"])
    return ""


class _Run:
    """One simulated completion: the chunks it will send."""

    def __init__(self, body: dict[str, Any], fault: str | None, timestamps: bool = False) -> None:
        self.timestamps = timestamps  # benchmarks: each answer token is its send time (Unix seconds)
        self.model = str(body.get("model") or DEMO_MODEL)
        self.fault = fault
        prompt = _prompt(body.get("messages"))
        self.reasoning = tokens(demo_reasoning(prompt))
        self.answer = tokens(demo_answer(prompt))
        limit = body.get("max_tokens")
        self.finish = "stop"
        if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:
            # like DeepSeek-R1: max_tokens bounds reasoning and answer together
            if limit < len(self.reasoning) + len(self.answer):
                self.finish = "length"
            self.reasoning = self.reasoning[:limit]
            self.answer = self.answer[: limit - len(self.reasoning)]
        self.prompt_tokens = max(1, sum(len(str(m).split()) for m in body.get("messages") or []))
        self.id = "chatcmpl-sim-" + secrets.token_hex(12)
        self.created = int(time.time())

    def chunk(self, delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> bytes:
        obj: dict[str, Any] = {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                               "model": self.model, "system_fingerprint": "fp_ssehub_sim"}
        obj["choices"] = [] if delta is None else [
            {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        obj.update(extra)
        return b"data: " + _dumps(obj) + b"\n\n"

    def deltas(self) -> list[dict[str, Any]]:
        if self.fault == "think":
            think = ["<think>\n", *self.reasoning, "\n</think>\n\n"]
            return [{"content": t} for t in think + self.answer]
        field = "reasoning" if self.fault == "reasoning-field" else "reasoning_content"
        return ([{"content": None, field: t} for t in self.reasoning]
                + [{"content": t, field: None} for t in self.answer])

    def usage(self) -> dict[str, Any]:
        done = len(self.reasoning) + len(self.answer)
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": done,
                "total_tokens": self.prompt_tokens + done,
                "completion_tokens_details": {"reasoning_tokens": len(self.reasoning)}}

    def completion(self) -> dict[str, Any]:
        message = {"role": "assistant", "content": "".join(self.answer),
                   "reasoning_content": "".join(self.reasoning)}
        return {"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": self.finish}],
                "usage": self.usage()}


class _Stream(Response):
    """The streamed answer, paced, stopping as soon as the client disconnects."""

    def __init__(self, run: _Run, tokens_per_second: float) -> None:
        super().__init__()
        self.run = run
        self.interval = 1.0 / tokens_per_second if tokens_per_second > 0 else 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        writer = asyncio.current_task()
        assert writer is not None

        async def listen() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            writer.cancel()

        listener = asyncio.get_running_loop().create_task(listen())
        try:
            await self._send_all(send)
        except asyncio.CancelledError:
            if not listener.done():
                raise
            writer.uncancel()  # the client left: nothing more to do
        except OSError:
            pass
        finally:
            listener.cancel()

    async def _send_all(self, send: Send) -> None:
        run = self.run

        async def body(data: bytes, more: bool = True) -> None:
            await send({"type": "http.response.body", "body": data, "more_body": more})

        await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
        stamps = run.timestamps
        await body(b": keep-alive\n\n")
        await body(run.chunk({"role": "assistant", "content": None, "reasoning_content": ""}))
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i, delta in enumerate(run.deltas()):
            if run.fault in ("drop", "stall", "midstream-error") and i == FAULT_AFTER:
                if run.fault == "drop":
                    return  # returning without the final body: the server aborts the connection
                if run.fault == "stall":
                    await asyncio.Event().wait()  # until the client gives up
                error = {"message": "Simulated upstream failure mid-stream.", "type": "server_error",
                         "code": 502}
                await body(run.chunk({"content": ""}, "error", error=error))
                await body(b"data: [DONE]\n\n", more=False)
                return
            if self.interval:
                delay = start + i * self.interval - loop.time()
                await asyncio.sleep(max(delay, 0.0))
            else:
                await asyncio.sleep(0)  # full speed, but every stream advances (as in a batching server)
            if stamps and delta.get("content"):
                await body(run.chunk({**delta, "content": f"{time.time():.6f} "}))
            else:
                await body(run.chunk(delta))
        await body(run.chunk({"content": ""}, run.finish))
        await body(run.chunk(None, usage=run.usage()))
        await body(b"data: [DONE]\n\n", more=False)


def create_simulator(tokens_per_second: float = 40.0, fault: str | None = None, *, faults: bool = True,
                     max_body_bytes: int = MAX_BODY) -> Starlette:
    """The simulator app; serve it alone (``ssehub simulate-llm``) or mount it (the demo).

    ``faults``: honour per-request faults (``X-Simulator-Fault``, ``ssehub-demo+<fault>``); the
    hub's demo mount turns them off unless ``simulator_faults`` is set. A request body over
    ``max_body_bytes`` is refused (413) before it is read whole."""
    default_fault = _check_fault(fault)

    async def completions(request: Request) -> Response:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_body_bytes:
            return _error(413, f"request body larger than {max_body_bytes} bytes (simulated server)")
        raw = bytearray()
        async for piece in request.stream():
            raw += piece
            if len(raw) > max_body_bytes:
                return _error(413, f"request body larger than {max_body_bytes} bytes (simulated server)")
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error(400, "messages must be a list (simulated server)")
        model = str(body.get("model") or DEMO_MODEL)
        wanted = (request.headers.get("x-simulator-fault") or model.partition("+")[2] or None) if faults \
            else None
        try:
            chosen = _check_fault(wanted) or default_fault
        except ValueError as exc:
            return _error(400, str(exc))
        if chosen and chosen.startswith("error-"):
            return _error(int(chosen[6:]))
        run = _Run(body, chosen, request.headers.get("x-simulator-timestamps") == "1")
        if body.get("stream"):
            return _Stream(run, tokens_per_second)
        return JSONResponse(run.completion())

    async def models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [
            {"id": DEMO_MODEL, "object": "model", "created": 0, "owned_by": "ssehub"}]})

    return Starlette(routes=[
        Route("/v1/chat/completions", completions, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
    ])


def _error(status: int, message: str | None = None) -> Response:
    kind, text = _ERRORS.get(status, ("server_error", f"Simulated HTTP {status}."))
    return JSONResponse({"error": {"message": message or text, "type": kind, "param": None, "code": None}},
                        status_code=status)
