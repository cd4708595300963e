"""Chat routes (SPEC §3): POST /chat, DELETE /chat/{id}, GET /chat/stream, GET /v1/models,
and the built-in demo provider mounted at /demo/v1 when no provider is configured.

``GET /chat/stream`` re-encodes the generation's events with ids ``"<G>/<hub id>"``: on a
reconnect, ``Last-Event-ID`` alone names the generation and the position in it, so the stream
resumes after that event and no second upstream request is made. A reconnect after the
terminal event (or for a generation this process does not know) is answered 204 No Content,
which tells an EventSource to stop reconnecting.
"""

from __future__ import annotations

import json
from functools import partial

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import Settings
from ..errors import MalformedBody, Unavailable
from ..relay import ChatRequest, Relay, generation_topic, parse_chat_request
from ..relay.generation import TERMINAL
from .bodies import read_body
from .hosts import hosts_of
from .limits import admit_stream, client_addr, resume_id
from .origin import refuse_cross_site, refuse_cross_site_start
from .query import Query
from .state import HubState, state_of
from .streaming import stream_subscription

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


def _require_token(state: HubState, scope: Scope) -> None:
    """auth (asgi/auth.py): starting or stopping a generation needs a valid token (any)."""
    if state.auth is not None:
        state.auth.authenticate(scope)


async def start_chat(request: Request) -> Response:
    state, relay = await _relay(request.scope)
    settings = state.settings
    _require_token(state, request.scope)
    refuse_cross_site(request.headers, settings, hosts_of(request.scope))
    raw = await read_body(request.receive, request.headers, settings.max_event_bytes)
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise MalformedBody("the body must be JSON (and not nested too deeply)") from None
    gen = await relay.start(parse_chat_request(body, limits=settings), client=client_addr(request.scope))
    root = request.scope.get("root_path", "")
    return JSONResponse({"id": gen.id, "topic": gen.topic,
                         "events": f"{root}/subscribe?topic={gen.topic}&last_event_id=earliest"})


async def stop_chat(request: Request) -> Response:
    state, relay = await _relay(request.scope)
    _require_token(state, request.scope)
    gid = await relay.stop(request.path_params["id"])
    return JSONResponse({"id": gid, "finish_reason": "cancelled"})


async def models(request: Request) -> Response:
    _, relay = await _relay(request.scope)
    return JSONResponse(relay.models())


class ChatStream:
    """GET /chat/stream?prompt=…[&model=…&provider=…] — one generation, streamed, then the end."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state, relay = await _relay(scope)
        settings = state.settings
        query = Query(scope["query_string"])
        resume = resume_id(scope, query, settings.max_last_event_id)
        if resume:
            gid, _, after = resume.partition("/")
            status = await relay.find(gid)
            if not after or status is None or status == ("finished", after):
                await Response(status_code=204)(scope, receive, send)
                return
            addr = admit_stream(state, scope)
            sub = state.hub.subscribe(generation_topic(gid), last_event_id=after)
        else:
            _require_token(state, scope)
            # it starts a paid call: the request must prove it is not another site's page (a
            # valid token does: the pages keep theirs in a SameSite=Strict cookie)
            refuse_cross_site_start(Headers(scope=scope), settings, hosts_of(scope),
                                    authenticated=state.auth is not None)
            prompt = query.get("prompt", "")
            if not prompt.strip():
                raise MalformedBody("prompt is required")
            request = ChatRequest.from_prompt(prompt, query.get("model"), query.get("provider"),
                                              limits=settings)
            addr = admit_stream(state, scope)
            gen = await relay.start(request, client=addr)
            gid = gen.id
            sub = state.hub.subscribe(gen.topic, last_event_id="earliest")
        state.opened(addr)
        prefix = gid.encode("ascii") + b"/"
        await stream_subscription(sub, receive, send, settings, release=partial(state.closed, addr),
                                  transform=partial(relabel, prefix=prefix))


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


class _DemoGate:
    """The demo upstream as mounted in the hub: the hub's origin rules and body limit apply
    before the simulator sees a request (the body is read with ``read_body``, then replayed)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        settings = state_of(scope).settings
        headers = Headers(scope=scope)
        refuse_cross_site(headers, settings, hosts_of(scope))
        body = await read_body(receive, headers, settings.max_event_bytes)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def chat_routes(settings: Settings) -> list[BaseRoute]:
    routes: list[BaseRoute] = [
        Route("/chat", start_chat, methods=["POST"]),
        Route("/chat/stream", ChatStream(), methods=["GET"]),
        Route("/chat/{id}", stop_chat, methods=["DELETE"]),
        Route("/v1/models", models, methods=["GET"]),
    ]
    if not settings.llm_base_url and not settings.providers:
        from ..relay.simulator import create_simulator

        # only where it is needed (no provider configured); fault models only when enabled
        simulator = create_simulator(settings.demo_tokens_per_second, faults=settings.simulator_faults,
                                     max_body_bytes=settings.max_event_bytes)
        routes.append(Mount(DEMO_MOUNT, app=_DemoGate(simulator)))
    return routes

