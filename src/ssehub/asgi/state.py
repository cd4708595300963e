"""Per-app state: the hub, the relay, the settings, connection counts, edge counters; lazy start."""

from __future__ import annotations

import asyncio

from starlette.types import Scope

from ..config import Settings
from ..core import Hub
from ..errors import (
    BrokerUnavailable,
    CrossOriginRefused,
    Forbidden,
    HeaderTooLarge,
    HostNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    SSEHubError,
    Unauthorized,
    Unavailable,
    UpstreamError,
)
from ..relay import Relay
from .auth import Auth
from .signals import SignalChain

__all__ = ["EdgeStats", "HubState", "state_of"]

# error class → the ``reason`` of ssehub_rejected_requests_total; the first match in the
# error's MRO wins, so a subclass may be listed before its base
_REASONS: dict[type[SSEHubError], str] = {
    Unauthorized: "auth",
    CrossOriginRefused: "origin",
    HostNotAllowed: "host",
    Forbidden: "forbidden",
    HeaderTooLarge: "limit",
    PayloadTooLarge: "limit",
    RateLimited: "limit",
    BrokerUnavailable: "broker",
    Unavailable: "unavailable",  # capacity (CapacityExceeded) and shutdown (HubClosed)
    UpstreamError: "upstream",
    NotFound: "not_found",
}


def reason_of(exc: SSEHubError) -> str:
    for cls in type(exc).__mro__:
        reason = _REASONS.get(cls)
        if reason is not None:
            return reason
    return "bad_request" if exc.status < 500 else "error"


class EdgeStats:
    """Counters of the web layer, read by the /metrics collector at scrape time.

    Plain integers: the stream writer adds to them once per write (a Prometheus client call
    there would cost more than the write itself)."""

    __slots__ = ("bytes", "publish_errors", "published", "rejected", "subscriptions", "writes")

    def __init__(self) -> None:
        # body writes to /subscribe streams: the opening (retry hint, gaps), then one or more
        # frames (events, gaps) or a heartbeat each.
        # Frames are not counted one by one: that means scanning every chunk (~1 GB/s), which
        # for a 256 KiB chunk costs more than the write.
        self.writes = 0
        self.bytes = 0  # body bytes written to /subscribe streams
        self.subscriptions = 0  # topics of the open /subscribe streams (a 3-topic stream: 3)
        self.published = 0  # events published through POST /publish (when the hub counts none)
        self.publish_errors: dict[int, int] = {}  # POST /publish answered with an error, by status
        self.rejected: dict[str, int] = {}  # requests answered with an ssehub error, by reason

    def count_error(self, exc: SSEHubError, *, publish: bool = False) -> None:
        reason = reason_of(exc)
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        if publish:
            self.publish_errors[exc.status] = self.publish_errors.get(exc.status, 0) + 1


class HubState:
    """What the routes share. Starts the hub (and relay) on first use when no lifespan ran,
    as happens when the app is mounted inside another Starlette/FastAPI app."""

    def __init__(self, settings: Settings, hub: Hub, relay: Relay | None = None) -> None:
        self.settings = settings
        self.hub = hub
        self.relay = relay
        self.auth: Auth | None = None  # set by create_app when auth is on
        self.connections = 0
        self.per_client: dict[str, int] = {}
        self.stats = EdgeStats()
        self.started = False
        self._lock = asyncio.Lock()
        self._signals = SignalChain()
        self._closing: asyncio.Task[None] | None = None

    def opened(self, addr: str) -> None:
        self.connections += 1
        self.per_client[addr] = self.per_client.get(addr, 0) + 1

    def closed(self, addr: str) -> None:
        self.connections -= 1
        left = self.per_client[addr] - 1
        if left:
            self.per_client[addr] = left
        else:
            del self.per_client[addr]

    async def ensure_started(self) -> None:
        if self.started:
            return
        async with self._lock:
            if not self.started:
                await self.hub.start()
                if self.relay is not None:
                    await self.relay.__aenter__()
                self.started = True
                # under a server we do not control (plain `uvicorn app:app` with the hub
                # mounted in FastAPI), SIGTERM/SIGINT close the hub first: see signals.py
                self._signals.install(self._close_soon)

    def _close_soon(self) -> None:
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close())

    async def close(self) -> None:
        """Stop generations first (their topics get a terminal event), then the hub. Every
        caller (a signal, the server's shutdown, the lifespan) waits for the same closing."""
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        self._signals.uninstall()
        if self.relay is not None and self.started:
            await self.relay.__aexit__(None, None, None)
        await self.hub.close()


def state_of(scope: Scope) -> HubState:
    state: HubState = scope["app"].state.ssehub
    return state
