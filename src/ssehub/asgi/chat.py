"""Chat routes (SPEC §3): POST /chat, DELETE /chat/{id}, GET /chat/stream, GET /v1/models,
and the built-in demo provider mounted at /demo/v1 when no provider is configured.

``GET /chat/stream`` re-encodes the generation's events with ids ``"<G>/<hub id>"``: on a
reconnect, ``Last-Event-ID`` alone names the generation and the position in it, so the stream
resumes after that event and no second upstream request is made. A reconnect after the
terminal event (or for a generation this process does not know) is answered 204 No Content,
which tells an EventSource to stop reconnecting.
"""

from __future__ import annotations

import asyncio
import json
import random

from starlette.datastructures import Headers, QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Receive, Scope, Send

from ..config import Settings
from ..core import Subscription, SubscriptionClosed
from ..errors import CapacityExceeded, MalformedBody, RateLimited, Unavailable
from ..relay import ChatRequest, Relay, parse_chat_request
from ..relay.generation import TERMINAL
from ..wire import encode_retry
from .bodies import read_body
from .origin import refuse_cross_site
from .state import HubState, state_of
from .streaming import HEARTBEAT, SSE_HEADERS

__all__ = ["chat_routes", "demo_base_url"]

DEMO_MOUNT = "/demo"


def demo_base_url(scope: Scope, settings: Settings) -> str:
    """The demo provider's base URL on the socket this request came in on (loopback if wildcard)."""
    server = scope.get("server")
    host, port = (server[0], server[1]) if server and server[1] else (settings.host, settings.port)
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    root = scope.get("root_path", "")
    return f"http://{host}:{port}{root}{DEMO_MOUNT}/v1"


async def _relay(scope: Scope) -> tuple[HubState, Relay]:
    state = state_of(scope)
    await state.ensure_started()
    relay = state.relay
    if relay is None:
        raise Unavailable("the LLM relay is not available")
    if relay.demo_base_url is None and relay.providers.demo_only:
        relay.demo_base_url = demo_base_url(scope, state.settings)
    return state, relay


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else ""


async def start_chat(request: Request) -> Response:
    state, relay = await _relay(request.scope)
    refuse_cross_site(request.headers, state.settings)
    raw = await read_body(request.receive, request.headers, state.settings.max_event_bytes)
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise MalformedBody("the body must be JSON (and not nested too deeply)") from None
    gen = await relay.start(parse_chat_request(body), client=_client(request.scope))
    root = request.scope.get("root_path", "")
    return JSONResponse({"id": gen.id, "topic": gen.topic,
                         "events": f"{root}/subscribe?topic={gen.topic}&last_event_id=earliest"})


async def stop_chat(request: Request) -> Response:
    _, relay = await _relay(request.scope)
    gen = await relay.stop(request.path_params["id"])
    return JSONResponse({"id": gen.id, "finish_reason": "cancelled"})


async def models(request: Request) -> Response:
    _, relay = await _relay(request.scope)
    return JSONResponse(relay.models())


class ChatStream:
    """GET /chat/stream?prompt=…[&model=…&provider=…] — one generation, streamed, then the end."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state, relay = await _relay(scope)
        query = QueryParams(scope["query_string"])
        resume = Headers(scope=scope).get("last-event-id") or query.get("last_event_id")
        if resume:
            gid, _, after = resume.partition("/")
            status = relay.status(gid)
            if not after or status is None or status == ("finished", after):
                await Response(status_code=204)(scope, receive, send)
                return
            self._check_connections(state, scope)
            sub = state.hub.subscribe(f"chat/{gid}", last_event_id=after)
        else:
            refuse_cross_site(Headers(scope=scope), state.settings)  # it starts a paid call
            prompt = query.get("prompt", "")
            if not prompt.strip():
                raise MalformedBody("prompt is required")
            request = ChatRequest.from_prompt(prompt, query.get("model"), query.get("provider"))
            self._check_connections(state, scope)
            gen = await relay.start(request, client=_client(scope))
            gid = gen.id
            sub = state.hub.subscribe(gen.topic, last_event_id="earliest")
        addr = _client(scope)
        state.opened(addr)
        try:
            await _stream(sub, gid, receive, send, state.settings)
        finally:
            state.closed(addr)

    @staticmethod
    def _check_connections(state: HubState, scope: Scope) -> None:
        settings = state.settings
        if state.connections >= settings.max_connections:
            raise CapacityExceeded("too many open connections; try again later")
        if state.per_client.get(_client(scope), 0) >= settings.max_subscriptions_per_client:
            raise RateLimited("too many open subscriptions from this address")


_TERMINALS = tuple(f"\nevent: {name}\n".encode() for name in TERMINAL)


def relabel(chunk: bytes, prefix: bytes) -> tuple[bytes, bool]:
    """Prefix every ``id:`` with ``<G>/``; cut after a terminal event (then True).

    Works on the hub's encoded frames without parsing them: ``wire.encode`` writes one field
    per line, every line starting with its field name (a value's line breaks become more
    ``data:`` lines), so a line starting with ``id: `` is an id field and nothing else.
    """
    data = (b"\n" + chunk).replace(b"\nid: ", b"\nid: " + prefix)
    cut = -1
    for marker in _TERMINALS:
        at = data.find(marker)
        if at >= 0 and (cut < 0 or at < cut):
            cut = at
    if cut < 0:
        return data[1:], False
    end = data.find(b"\n\n", cut + 1)  # the blank line that ends that frame
    return data[1 : end + 2], True


async def _stream(sub: Subscription, gid: str, receive: Receive, send: Send, settings: Settings) -> None:
    """One writer (this task) plus one disconnect listener; ends after the terminal event."""
    writer = asyncio.current_task()
    assert writer is not None
    gone = asyncio.Event()

    async def listen() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        gone.set()
        writer.cancel()

    try:
        await sub.start()  # a resume on a shared broker loads the topic's history first
    except BaseException:
        sub.close()
        raise
    listener = asyncio.get_running_loop().create_task(listen())
    prefix = gid.encode("ascii") + b"/"
    try:
        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        await send({"type": "http.response.body", "body": encode_retry(settings.retry), "more_body": True})
        ended = False
        while not ended:
            try:
                chunk = await sub.next_chunk()
            except SubscriptionClosed:  # the hub is shutting down: come back later, with jitter
                hint = encode_retry(settings.shutdown_retry + random.randint(0, settings.shutdown_retry))
                await send({"type": "http.response.body", "body": hint, "more_body": False})
                return
            if not chunk:
                await send({"type": "http.response.body", "body": HEARTBEAT, "more_body": True})
                continue
            body, ended = relabel(chunk, prefix)
            await send({"type": "http.response.body", "body": body, "more_body": not ended})
    except asyncio.CancelledError:
        if not gone.is_set():
            raise
        writer.uncancel()
    except OSError:
        pass
    finally:
        listener.cancel()
        sub.close()


def chat_routes(settings: Settings) -> list[BaseRoute]:
    routes: list[BaseRoute] = [
        Route("/chat", start_chat, methods=["POST"]),
        Route("/chat/stream", ChatStream(), methods=["GET"]),
        Route("/chat/{id}", stop_chat, methods=["DELETE"]),
        Route("/v1/models", models, methods=["GET"]),
    ]
    if not settings.llm_base_url and not settings.providers:
        from ..relay.simulator import create_simulator

        routes.append(Mount(DEMO_MOUNT, app=create_simulator(settings.demo_tokens_per_second)))
    return routes

