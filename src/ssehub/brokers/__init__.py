"""Brokers, chosen by URL: ``memory://`` (default, one process); ``redis://`` comes next."""

from __future__ import annotations

from ..core.broker import Broker, MemoryBroker
from ..errors import BadRequest

__all__ = ["Broker", "MemoryBroker", "from_url"]


def from_url(url: str) -> Broker:
    """The broker a URL names. Optional client libraries are imported only when needed."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else url.lower()
    if scheme == "memory":
        return MemoryBroker()
    if scheme in ("redis", "rediss", "unix"):
        raise BadRequest("the redis broker is not available in this version; use memory://")
    raise BadRequest(f"unknown broker URL scheme {scheme!r} (expected memory://)")
