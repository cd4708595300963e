"""The fast front: uvicorn's httptools protocol, serving the two hot routes itself.

``POST /publish`` and ``GET /subscribe`` are served straight from the llhttp callbacks
(``publish.py``, ``stream.py``): no ASGI scope round trip, no request task, no ``send``
coroutine per write; one ``transport.write`` per response or stream chunk. Every other
request — and these two whenever the direct path does not apply — goes to the ASGI app
exactly as before, on the same connection: keep-alive, pipelining, the edge limits of
``server_protocol.GuardedProtocol`` (head size and time, connection cap) and uvicorn's
parser defences (invalid bytes, obs-fold, Content-Length with Transfer-Encoding) are
shared by both paths.

The direct path applies when the app has no middleware (no CORS: ``HubApp.fast_path``), the
hub has started, no ``root_path`` is set, the request is HTTP/1.1 and no response is pending
on the connection (a request pipelined behind a pending one takes the ASGI path, which
queues it). The route semantics are the ASGI routes' own (``asgi/publishing.py``,
``asgi/hub_routes.open_subscription``), so the same tests pass against both paths.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, cast

import httptools
from starlette.types import Scope
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from ..asgi.app import HubApp, refused_host
from ..asgi.hub_routes import open_subscription
from ..asgi.state import HubState
from ..errors import SSEHubError
from ..server_protocol import EdgeLimits, GuardedProtocol
from .cycle import DirectCycle
from .publish import DirectPublish
from .stream import DirectStream

__all__ = ["FrontProtocol", "front_protocol_class", "proxy_headers"]

log = logging.getLogger("ssehub")

_HOT = (b"/publish", b"/subscribe")


async def _nothing(scope: Any, receive: Any, send: Any) -> None:
    return None


class FrontProtocol(GuardedProtocol):
    hub_app: HubApp
    hub_state: HubState
    proxy: ProxyHeadersMiddleware | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._direct: DirectCycle | None = None  # the request this front is answering itself

    # routing
    def _dispatch(self) -> None:
        try:
            self._route()
        except Exception as exc:  # a bug in a direct route: never a silent "invalid request"
            self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        cycle = self.cycle
        if isinstance(cycle, DirectCycle) and not cycle.response_complete:
            cycle.fail(exc)
        else:
            log.error("error serving a request", exc_info=exc)
            self.transport.abort()

    def _route(self) -> None:
        url = self.url
        if not url.startswith(_HOT) or not self._direct_ok():
            super()._dispatch()
            return
        try:
            parsed = httptools.parse_url(url)
        except httptools.HttpParserInvalidURLError:
            super()._dispatch()  # uvicorn answers it as it answers any such URL
            return
        path = parsed.path
        method = self.parser.get_method()
        publish = path == b"/publish" and method == b"POST"
        if not (publish or (path == b"/subscribe" and method == b"GET")):
            super()._dispatch()  # HEAD, OPTIONS, another method (405), /publish/x …
            return
        scope = cast(Scope, self.scope)
        scope["method"] = method.decode("ascii")
        scope["path"] = path.decode("ascii")
        scope["raw_path"] = path
        scope["query_string"] = parsed.query or b""
        scope["app"] = self.hub_app
        if self.proxy is not None:  # uvicorn's own X-Forwarded-For logic, for trusted proxies
            # (the middleware wraps an app that does nothing: run to its end, it has only
            # rewritten scope["client"] and scope["scheme"])
            step = self.proxy(scope, None, None)  # type: ignore[arg-type]
            with contextlib.suppress(StopIteration):
                step.send(None)
        keep_alive = self.parser.should_keep_alive()
        refused = self._refused_host(scope)
        if refused is not None:
            self._answer_error(DirectCycle(self, scope, keep_alive), refused, publish)
        elif publish:
            self._start(DirectPublish(self, scope, keep_alive, self.expect_100_continue))
        else:
            try:
                opened = open_subscription(self.hub_state, scope)
            except SSEHubError as exc:
                self._answer_error(DirectCycle(self, scope, keep_alive), exc, False)
                return
            self._start(DirectStream(self, scope, keep_alive, opened))

    def _refused_host(self, scope: Scope) -> SSEHubError | None:
        """``refused_host``, answered at once for a Host value allowed by name before."""
        allowed = self.hub_app.allowed_hosts
        if allowed is None:
            return None
        for name, value in self.headers:
            if name == b"host":
                if allowed.allows_value(value):
                    return None
                break
        return refused_host(self.hub_app, scope)

    def _direct_ok(self) -> bool:
        cycle = self.cycle
        return (self.hub_app.fast_path and self.hub_state.started and not self.root_path
                and (cycle is None or cycle.response_complete) and not self.pipeline
                and self.parser.get_http_version() == "1.1" and not self.parser.should_upgrade())

    def _start(self, cycle: DirectCycle) -> None:
        self.cycle = cycle  # type: ignore[assignment]  # duck-types uvicorn's RequestResponseCycle
        self._direct = cycle
        cycle.begin()

    def _answer_error(self, cycle: DirectCycle, exc: SSEHubError, publish: bool) -> None:
        self.cycle = cycle  # type: ignore[assignment]
        cycle.respond_error(exc, publish=publish)

    def on_response_complete(self) -> None:
        self._direct = None
        super().on_response_complete()

    # the request body and its end
    def _body(self, body: bytes) -> None:
        cycle = self.cycle
        if isinstance(cycle, DirectCycle):
            try:
                cycle.on_body(body)
            except Exception as exc:
                self._failed(exc)
        else:
            super()._body(body)

    def _complete(self) -> None:
        cycle = self.cycle
        if isinstance(cycle, DirectCycle):
            try:
                cycle.on_message_complete()
            except Exception as exc:
                self._failed(exc)
        else:
            super()._complete()

    # the connection
    def connection_lost(self, exc: Exception | None) -> None:
        direct, self._direct = self._direct, None
        super().connection_lost(exc)
        if direct is not None:
            direct.connection_lost()

    def resume_writing(self) -> None:  # (a pause is read from uvicorn's FlowControl)
        super().resume_writing()
        if self._direct is not None:
            self._direct.resume_writing()


def proxy_headers(trusted: list[str]) -> ProxyHeadersMiddleware:
    """uvicorn's proxy-headers logic for the direct path: its middleware around an app that
    does nothing (``_dispatch`` runs it to the end: it only rewrites the scope)."""
    return ProxyHeadersMiddleware(_nothing, trusted)


def front_protocol_class(limits: EdgeLimits, app: HubApp, proxy: ProxyHeadersMiddleware | None = None
                         ) -> type[FrontProtocol]:
    """The fast front for ``app`` (pass it as ``uvicorn.Config(http=...)``); ``proxy``: the
    proxy-headers middleware uvicorn wraps the app in when ``proxy_headers`` is on."""
    return type("SSEHubFrontProtocol", (FrontProtocol,), {
        "limits": limits, "hub_app": app, "hub_state": app.state.ssehub, "proxy": proxy})
