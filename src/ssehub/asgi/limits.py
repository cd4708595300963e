"""The per-request limit checks every streaming route shares (SPEC §5 limits)."""

from __future__ import annotations

from starlette.types import Scope

from ..errors import CapacityExceeded, InvalidField, RateLimited
from .query import Query
from .state import HubState

__all__ = ["admit_stream", "client_addr", "resume_id"]


def client_addr(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else ""


def resume_id(scope: Scope, query: Query, max_bytes: int) -> str | None:
    """The resume position: ``Last-Event-ID``, else ``last_event_id`` (EventSource cannot set
    headers on its first request, so the header wins). Longer than ``max_bytes`` → 400: an id
    is echoed in every gap frame of a subscription, so its size is amplified by the topics."""
    value = None
    for name, raw in scope["headers"]:  # (as Headers.get: the first)
        if name == b"last-event-id":
            value = raw.decode("latin-1")
            break
    value = value or query.get("last_event_id") or None
    if value is not None and len(value.encode("utf-8", "surrogatepass")) > max_bytes:
        raise InvalidField(f"Last-Event-ID longer than max_last_event_id ({max_bytes} bytes)")
    return value


def admit_stream(state: HubState, scope: Scope) -> str:
    """Check the stream limits (connections, streams per client address) before subscribing;
    returns the client address to pass to ``state.opened``/``state.closed``."""
    settings = state.settings
    if state.connections >= settings.max_connections:
        raise CapacityExceeded("too many open connections; try again later")
    addr = client_addr(scope)
    if state.per_client.get(addr, 0) >= settings.max_subscriptions_per_client:
        raise RateLimited("too many open subscriptions from this address")
    return addr
