"""Hub routes: GET /subscribe, POST /publish, GET /topics, GET /healthz."""

from __future__ import annotations

from collections.abc import Coroutine
from functools import partial
from typing import Any, NamedTuple

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from ..core import Subscription
from ..errors import BadRequest, InvalidTopic, SSEHubError
from ..relay import GENERATION_PREFIX
from .bodies import read_body
from .limits import admit_stream, resume_id
from .publishing import PublishRequest, publish_gate
from .query import Query
from .state import HubState, state_of
from .streaming import SSE_HEADERS, stream_subscription

__all__ = ["PRIVATE_PREFIX", "Opened", "hub_routes", "open_subscription"]

#: topics under this prefix are LLM generations: never listed by GET /topics
PRIVATE_PREFIX = GENERATION_PREFIX


def _flag(query: Query, name: str) -> bool:
    """A boolean query parameter: absent, ``0``/``false`` or ``1``/``true``; else a 400."""
    value = query.get(name)
    if value is None or value in ("0", "false"):
        return False
    if value in ("1", "true"):
        return True
    raise BadRequest(f"{name} must be 1 or 0 (true or false)")


class Opened(NamedTuple):
    sub: Subscription
    addr: str  # the client address it counts against (release with ``state.closed(addr)``)
    expires: float | None  # when the token ends the stream (Unix time), if auth is on


def open_subscription(state: HubState, scope: Scope) -> Opened:
    """GET /subscribe up to its stream, shared by both fronts: check the request (topics,
    flags, token, resume id, limits) and subscribe, or raise the SSEHubError to answer."""
    settings = state.settings
    query = Query(scope["query_string"])
    topics = query.getlist("topic")
    if not topics:
        raise InvalidTopic("at least one topic parameter is required")
    label = _flag(query, "topic_field")
    # auth (asgi/auth.py): 401/403 before subscribing; the stream ends when the token expires
    expires = state.auth.check_subscribe(scope, topics) if state.auth is not None else None
    resume = resume_id(scope, query, settings.max_last_event_id)
    addr = admit_stream(state, scope)
    sub = state.hub.subscribe(topics, last_event_id=resume)
    if label:
        sub.label_topics()
    state.opened(addr)
    return Opened(sub, addr, expires)


class Subscribe:
    """GET /subscribe?topic=T[&topic=…][&last_event_id=ID][&topic_field=1] → text/event-stream.

    ``topic_field=1``: each event carries a ``topic: <name>`` line for each of the requested
    topics it was published to (``Subscription.label_topics``); SSE parsers ignore the field.

    Not a coroutine function: it checks the request and subscribes synchronously, raising
    any SSEHubError at once, and returns the stream coroutine itself. The connection's task
    then holds one coroutine frame for the whole life of the stream, not a chain of them.
    """

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Coroutine[Any, Any, None]:
        state: HubState = state_of(scope)
        if not state.started:
            return self._start_then_open(state, scope, receive, send)
        if scope["method"] == "HEAD":  # the headers a GET would get, and no endless body
            return Response(status_code=200, headers={k.decode(): v.decode() for k, v in SSE_HEADERS})(
                scope, receive, send)
        sub, addr, expires = open_subscription(state, scope)
        return stream_subscription(sub, receive, send, state.settings, release=partial(state.closed, addr),
                                   stats=state.stats, expires=expires)

    async def _start_then_open(self, state: HubState, scope: Scope, receive: Receive, send: Send) -> None:
        await state.ensure_started()
        try:
            stream = self(scope, receive, send)
        except SSEHubError as exc:
            state.stats.count_error(exc)
            await JSONResponse({"error": exc.message}, status_code=exc.status,
                               headers=dict(exc.headers) or None)(scope, receive, send)
            return
        await stream


class Publish:
    """POST /publish → 200 {"id": …} (or {"ids": […]} for a JSON array). Raw ASGI: it is the
    publisher's hot path, so no Request/Response objects. The rules: ``publishing.py``."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state: HubState = state_of(scope)
        await state.ensure_started()
        headers = Headers(scope=scope)
        # the site and the token are checked before the body is read
        grant = publish_gate(state, scope)
        body = await read_body(receive, headers, state.settings.max_event_bytes)
        answer = await PublishRequest(state, grant, body, headers.get("content-type", ""),
                                      Query(scope["query_string"])).run()
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(answer)).encode())]})
        await send({"type": "http.response.body", "body": answer})


async def topics(request: Request) -> Response:
    state = state_of(request.scope)
    await state.ensure_started()
    # Generation topics are readable (and stoppable) by whoever knows their unguessable
    # name: listing them would hand that out. Only their number is shown.
    # auth: only public topics and those the (optional) token may subscribe to are listed
    visible = state.auth.listable(request.scope) if state.auth is not None else None
    listed, private = [], 0
    for info in state.hub.topics():
        if str(info["topic"]).startswith(PRIVATE_PREFIX):
            private += 1
        elif visible is None or visible(str(info["topic"])):
            listed.append(info)
    return JSONResponse({"topics": listed, "generations": private})


async def healthz(request: Request) -> Response:
    state = state_of(request.scope)
    await state.ensure_started()
    if await state.hub.healthy():
        return JSONResponse({"status": "ok"})
    return JSONResponse({"status": "unavailable", "error": "hub or broker not answering"}, status_code=503)


def hub_routes() -> list[BaseRoute]:
    return [
        Route("/subscribe", Subscribe(), methods=["GET"]),
        Route("/publish", Publish(), methods=["POST"]),
        Route("/topics", topics, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
