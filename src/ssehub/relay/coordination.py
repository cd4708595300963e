"""Where generations are known: this process only, or every process sharing a broker.

A generation runs in the process that received ``POST /chat`` (it holds the upstream
connection). With one process, the relay's own tables answer everything and
``LocalCoordination`` does nothing. With several processes on one Redis
(``ssehub.brokers.redis_generations``) the relay also asks the others:

- ``claim`` / ``finish``: the owner records a running generation (with a lease it refreshes)
  and its end (state, terminal event id, time to live);
- ``status``: a process that does not run ``G`` learns whether it runs elsewhere or ended, so
  a ``/chat/stream`` reconnect resumes it without a second upstream call;
- ``request_stop``: ``DELETE /chat/G`` on any process reaches the owner;
- ``readers``: readers on any process keep a generation alive (the owner's grace timer
  starts when the last reader anywhere leaves);
- ``claim_lost``: when an owner stops refreshing its leases (it died), exactly one process
  with readers claims the generation lost and publishes its terminal ``error`` event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

__all__ = ["Coordination", "LocalCoordination", "Status"]

#: ("running", None) | ("finished", terminal event id or None) | ("lost", None)
Status = tuple[str, str | None]


class Coordination(Protocol):
    #: whether other processes may run generations this one must reach
    shared: bool

    async def start(self, on_stop: Callable[[str], None], on_readers: Callable[[str], None]) -> None:
        """Begin serving control messages: ``on_stop(G)`` when another process asks this one
        to stop ``G``; ``on_readers(G)`` when the readers of ``G`` elsewhere changed."""
        ...

    async def close(self) -> None: ...

    async def claim(self, gid: str) -> None:
        """Record ``gid`` as running here (owner), with a lease."""
        ...

    async def refresh(self, gids: list[str]) -> list[str]:
        """Renew the leases of the generations running here (and this process's liveness);
        return those another process declared lost meanwhile (stop them without an end)."""
        ...

    async def finish(self, gid: str, terminal_id: str | None, ttl: float, *, topic: str) -> None:
        """Record the end of a generation run here; forget it (and the history of its
        ``topic``) after ``ttl`` seconds."""
        ...

    async def status(self, gid: str) -> Status | None:
        """What the shared record says of ``gid``; None when nobody knows it."""
        ...

    async def request_stop(self, gid: str) -> bool:
        """Ask the owner of a running ``gid`` to stop it; False when it is not running."""
        ...

    async def set_readers(self, gid: str, count: int) -> None:
        """This process's reader count of a generation that runs elsewhere."""
        ...

    async def remote_readers(self, gid: str) -> int:
        """Readers of ``gid`` on other live processes."""
        ...

    async def claim_lost(self, gid: str) -> bool:
        """True for exactly one caller once the owner of a running ``gid`` stopped
        refreshing its lease (then the caller publishes the terminal ``error``)."""
        ...


class LocalCoordination:
    """One process: the relay's own tables are the whole truth."""

    shared = False

    async def start(self, on_stop: Callable[[str], None], on_readers: Callable[[str], None]) -> None:
        return None

    async def close(self) -> None:
        return None

    async def claim(self, gid: str) -> None:
        return None

    async def refresh(self, gids: list[str]) -> list[str]:
        return []

    async def finish(self, gid: str, terminal_id: str | None, ttl: float, *, topic: str) -> None:
        return None

    async def status(self, gid: str) -> Status | None:
        return None

    async def request_stop(self, gid: str) -> bool:
        return False

    async def set_readers(self, gid: str, count: int) -> None:
        return None

    async def remote_readers(self, gid: str) -> int:
        return 0

    async def claim_lost(self, gid: str) -> bool:
        return False
