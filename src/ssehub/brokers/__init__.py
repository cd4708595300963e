"""Brokers, chosen by URL: ``memory://`` (default, one process); ``redis://``, ``rediss://``,
``unix://`` (one Redis), ``redis+cluster://host:port`` (Redis Cluster, any node as the seed).
The Redis client library is imported only when a Redis URL is used."""

from __future__ import annotations

from ..core.broker import Broker, MemoryBroker
from ..errors import BadRequest

__all__ = ["REDIS_SCHEMES", "Broker", "MemoryBroker", "from_url"]

REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster")


def from_url(url: str, *, namespace: str = "ssehub", timeout: float = 1.0) -> Broker:
    """The broker a URL names. ``namespace`` and ``timeout`` (seconds per call before
    BrokerUnavailable) apply to Redis."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else url.lower()
    if scheme == "memory":
        return MemoryBroker()
    if scheme in REDIS_SCHEMES:
        from .redis import RedisBroker

        return RedisBroker(url, namespace=namespace, timeout=timeout)
    raise BadRequest(f"unknown broker URL scheme {scheme!r} (expected memory://, redis://, "
                     "rediss://, unix:// or redis+cluster://)")
