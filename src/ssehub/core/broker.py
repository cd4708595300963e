"""The broker protocol — what the hub needs from an ordering/storage backend — and the
in-process implementation every hub uses by default.

A broker assigns each published event its place in the namespace-wide order (``seq``) and
names the history epoch the ids belong to. The memory broker keeps nothing itself (the hub's
bounded topic logs are the history); the Redis broker (``ssehub.brokers``) stores events
durably and lets many processes share one order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .positions import new_epoch

__all__ = ["Broker", "MemoryBroker"]


class Broker(Protocol):
    async def open(self) -> int:
        """Connect; return the epoch of the ids this broker hands out."""
        ...

    async def append(self, topics: Sequence[str], data: str, event: str | None, retry: int | None) -> int:
        """Store one event for ``topics``; return its seq (strictly increasing)."""
        ...

    async def healthy(self) -> bool:
        """True when the broker answers."""
        ...

    async def close(self) -> None:
        """Release connections; idempotent."""
        ...


class MemoryBroker:
    """Single process; a new epoch at every start, since memory does not survive a restart."""

    def __init__(self) -> None:
        self._seq = 0

    async def open(self) -> int:
        return new_epoch()

    async def append(self, topics: Sequence[str], data: str, event: str | None, retry: int | None) -> int:
        self._seq += 1
        return self._seq

    async def healthy(self) -> bool:
        return True

    async def close(self) -> None:
        return None
