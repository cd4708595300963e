"""create_app(): the Starlette app — routes, lifespan, CORS, and the ONE error→status table."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from ..brokers import from_url
from ..config import Settings
from ..core import Hub
from ..errors import HostNotAllowed, SSEHubError
from ..relay import Relay
from ..relay.coordination import Coordination
from .auth import Auth
from .chat import ChatStream, chat_routes
from .hosts import AllowedHosts
from .hub_routes import PRIVATE_PREFIX, Publish, Subscribe, hub_routes
from .metrics import metrics_routes, registry_for
from .pages import page_routes
from .state import HubState

__all__ = ["HubApp", "create_app", "refused_host"]


async def _sse_hub_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SSEHubError)
    return _error_response(exc, request.scope)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


class HubApp(Starlette):
    """Starlette, plus a direct path to the two hot routes when no middleware is configured.

    A stream lives for hours: every coroutine frame between the server and the writer loop
    stays in memory for as long as the connection does, so skipping the middleware stack
    keeps an idle subscriber at a few KiB; a publish skips a dozen calls. Every other route,
    and every request when CORS is on, takes the ordinary path.
    """

    fast_path = True
    allowed_hosts: AllowedHosts | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # (A coroutine function, as servers detect ASGI 3 apps by that.)
        if scope["type"] == "http":
            # DNS-rebinding defence, before routing and on the direct path too (hosts.py)
            error = refused_host(self, scope)
            if error is not None:
                scope["app"] = self  # (so that the refusal is counted for /metrics)
                await _error_response(error, scope)(scope, receive, send)
                return
        if self.fast_path and scope["type"] == "http":
            path, root = scope["path"], scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root):]
            endpoint = _FAST.get((scope["method"], path))
            if endpoint is not None:
                scope["app"] = self
                try:
                    response = endpoint(scope, receive, send)
                except SSEHubError as exc:
                    response = _error_response(exc, scope)(scope, receive, send)
                await response
                return
        await super().__call__(scope, receive, send)


def refused_host(app: HubApp, scope: Scope) -> HostNotAllowed | None:
    """The 400 for a request whose ``Host`` this app does not serve, else None."""
    if app.allowed_hosts is None:
        return None
    refused = app.allowed_hosts.allows(scope)
    if refused is None:
        return None
    return HostNotAllowed(f"host {refused!r} is not served here (add it to allowed_hosts)")


def _error_response(exc: SSEHubError, scope: Scope) -> JSONResponse:
    """The one error → response mapping (and its count, for /metrics)."""
    state = getattr(getattr(scope.get("app"), "state", None), "ssehub", None)
    if state is not None:
        path: str = scope["path"]
        state.stats.count_error(exc, publish=scope["method"] == "POST" and path.endswith("/publish"))
    return JSONResponse({"error": exc.message}, status_code=exc.status, headers=dict(exc.headers) or None)


class _Guarded:
    """An async endpoint on the direct path: its SSEHubErrors become JSON error responses."""

    def __init__(self, endpoint: Any) -> None:
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.endpoint(scope, receive, send)
        except SSEHubError as exc:
            await _error_response(exc, scope)(scope, receive, send)


# The hot routes, on the direct path. Subscribe raises its errors synchronously (before it
# returns its stream coroutine); Publish is a coroutine, so it is guarded.
_FAST: dict[tuple[str, str], Any] = {
    ("GET", "/subscribe"): Subscribe(),
    ("POST", "/publish"): _Guarded(Publish()),
    # every token of a generation read this way is one send: through the middleware stack,
    # each send crossed four wrappers (measured: 15 % of the relay's CPU per token)
    ("GET", "/chat/stream"): _Guarded(ChatStream()),
}


def _coordination(hub: Hub, settings: Settings) -> Coordination | None:
    """Generations shared across processes when the broker is (``generations`` of a broker)."""
    shared = getattr(hub.broker, "generations", None)
    if shared is None:
        return None
    coordination: Coordination = shared(lease=settings.generation_lease, ttl=settings.generation_ttl)
    return coordination


def create_app(settings: Settings | None = None, *, hub: Hub | None = None) -> Starlette:
    """The ssehub ASGI app. Mount it anywhere: ``app.mount("/hub", create_app())``."""
    settings = settings or Settings()
    auth = Auth.from_settings(settings, readable_prefix=PRIVATE_PREFIX)  # ConfigError: unusable key
    hub = hub or Hub(from_url(settings.broker, namespace=settings.namespace, timeout=settings.broker_timeout),
                     settings=settings)
    # a generation topic must keep a whole answer, so a reload can replay it from the start
    hub.set_retention(PRIVATE_PREFIX, settings.chat_history_size, settings.chat_history_bytes)
    relay = Relay(hub, settings, coordination=_coordination(hub, settings))
    state = HubState(settings, hub, relay)
    state.auth = auth

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await state.ensure_started()
        try:
            yield
        finally:
            await state.close()

    middleware = []
    if settings.cors_origins:
        middleware.append(Middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_credentials=settings.cors_credentials,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Content-Type", "Authorization", "Last-Event-ID"],
            expose_headers=["SSEHub-Start-Id"],  # cross-origin fetch readers resume from it
            max_age=600,
        ))
    app = HubApp(
        routes=hub_routes() + metrics_routes() + chat_routes(settings) + page_routes(),
        middleware=middleware,
        exception_handlers={SSEHubError: _sse_hub_error, HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.fast_path = not middleware
    app.allowed_hosts = AllowedHosts(settings)
    app.state.allowed_hosts = app.allowed_hosts
    app.state.ssehub = state
    app.state.hub = hub
    app.state.settings = settings
    app.state.relay = relay
    app.state.metrics_registry = registry_for(state)
    return app
