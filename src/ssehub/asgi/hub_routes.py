"""Hub routes: GET /subscribe, POST /publish, GET /topics, GET /healthz."""

from __future__ import annotations

from collections.abc import Coroutine
from functools import partial
from typing import Any

from starlette.datastructures import Headers, QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from ..errors import CapacityExceeded, Forbidden, InvalidTopic, RateLimited, SSEHubError
from .bodies import parse_publications, read_body
from .origin import refuse_cross_site
from .state import HubState, state_of
from .streaming import SSE_HEADERS, stream_subscription

__all__ = ["PRIVATE_PREFIX", "hub_routes"]

#: topics under this prefix are LLM generations: never listed by GET /topics
PRIVATE_PREFIX = "chat/"


class Subscribe:
    """GET /subscribe?topic=T[&topic=…][&last_event_id=ID] → text/event-stream.

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
        settings = state.settings
        query = QueryParams(scope["query_string"])
        topics = query.getlist("topic")
        if not topics:
            raise InvalidTopic("at least one topic parameter is required")
        # EventSource sends Last-Event-ID itself on reconnects; its first request can only
        # carry the query parameter, so the header wins when both are present.
        resume = Headers(scope=scope).get("last-event-id") or query.get("last_event_id") or None
        if state.connections >= settings.max_connections:
            raise CapacityExceeded("too many open connections; try again later")
        client = scope.get("client")
        addr = client[0] if client else ""
        if state.per_client.get(addr, 0) >= settings.max_subscriptions_per_client:
            raise RateLimited("too many open subscriptions from this address")
        sub = state.hub.subscribe(topics, last_event_id=resume)
        state.opened(addr)
        return stream_subscription(sub, receive, send, settings, release=partial(state.closed, addr))

    async def _start_then_open(self, state: HubState, scope: Scope, receive: Receive, send: Send) -> None:
        await state.ensure_started()
        try:
            stream = self(scope, receive, send)
        except SSEHubError as exc:
            await JSONResponse({"error": exc.message}, status_code=exc.status)(scope, receive, send)
            return
        await stream


class Publish:
    """POST /publish → 200 {"id": …} (or {"ids": […]} for a JSON array). Raw ASGI: it is the
    publisher's hot path, so no Request/Response objects."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state: HubState = state_of(scope)
        await state.ensure_started()
        headers = Headers(scope=scope)
        refuse_cross_site(headers, state.settings)
        body = await read_body(receive, headers, state.settings.max_event_bytes)
        pubs, batch = parse_publications(body, headers, QueryParams(scope["query_string"]))
        hub = state.hub
        for p in pubs:
            for topic in p.topics:
                if isinstance(topic, str) and topic.startswith(PRIVATE_PREFIX):
                    raise Forbidden(f"topics under {PRIVATE_PREFIX} are written by the LLM relay only")
        # Validate every publication before publishing any: a bad batch publishes nothing.
        prepared = [hub.prepare(p.topics, p.data, event=p.event, retry=p.retry) for p in pubs]
        ids = await hub.commit_many(prepared)  # one broker round trip for the batch
        if batch:
            answer = ('{"ids":[' + ",".join(f'"{i}"' for i in ids) + "]}").encode()
        else:
            answer = b'{"id":"' + ids[0].encode() + b'"}'
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(answer)).encode())]})
        await send({"type": "http.response.body", "body": answer})


async def topics(request: Request) -> Response:
    state = state_of(request.scope)
    await state.ensure_started()
    # Generation topics are readable (and stoppable) by whoever knows their unguessable
    # name: listing them would hand that out. Only their number is shown.
    listed, private = [], 0
    for info in state.hub.topics():
        if str(info["topic"]).startswith(PRIVATE_PREFIX):
            private += 1
        else:
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
