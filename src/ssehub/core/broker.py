"""The broker protocol (v2) — what the hub needs from an ordering/storage backend — and the
in-process implementation every hub uses by default.

The broker owns the order. It assigns each published event its ``seq`` (one counter per
namespace, across every topic) and names the ``epoch`` the seqs belong to; it delivers every
event, from any process, to the hub's :class:`Sink` **in seq order**. The hub keeps, per
topic, a bounded cache of encoded frames and serves subscribers from it.

``open(sink) -> Position(epoch, seq)``
    Connect and start delivering to ``sink`` every event after ``seq``.
``append(batch) -> (epoch, [seq, …])``
    Store a batch of prepared events in one round trip; one seq per event, in batch order.
    The epoch is returned with the seqs because an append can be the one that starts a new
    epoch (Redis found to have lost history). The memory broker calls ``sink.apply`` for
    each event before it returns; a shared broker delivers through its feed, later.
``history(topic, upto_seq, limit_events, limit_bytes) -> (epoch, [(seq, body), …], evicted_seq)``
    The newest events of ``topic`` with seq ≤ ``upto_seq``, oldest first — at most
    ``limit_events``, and at most ``limit_bytes`` of bodies but for the newest one (None: no
    byte bound) — and the highest seq of that topic not returned (0 if none): warms a
    topic's cache.
``head() -> Position(epoch, seq)``
    The broker's current epoch and the last seq it handed out (to any process): tells a
    resume id this process has not applied yet (its feed lags: try again) from one that was
    never handed out (a ``future-id`` gap).
``healthy()``, ``close()``; attribute ``durable`` — True when the broker stores history
(the hub then loads a topic's history from it, and forgetting a topic costs nothing).

Errors: an unreachable broker raises ``errors.BrokerUnavailable`` within its timeout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol, TypeAlias

from ..wire import Event
from .positions import Position, new_epoch

__all__ = ["Broker", "History", "MemoryBroker", "Prepared", "Sink"]


#: ``history()``: (epoch, [(seq, body), …] oldest first, evicted_seq)
History: TypeAlias = tuple[int, list[tuple[int, bytes]], int]


class Prepared(NamedTuple):
    """A validated publication, encoded but for its id line (``body``)."""

    topics: tuple[str, ...]
    event: Event
    body: bytes


class Sink(Protocol):
    """What a broker delivers to (the Hub)."""

    def apply(self, seq: int, topics: Sequence[str], body: bytes) -> None:
        """One event, in strictly increasing seq order within the current epoch."""

    def reset_epoch(self, epoch: int, start_seq: int) -> None:
        """The broker's history was lost: ids continue in ``epoch`` after ``start_seq``."""

    def broker_down(self) -> None:
        """The broker stopped answering (called once per outage)."""

    def broker_up(self, outage_seconds: float) -> None:
        """The broker answers again after an outage."""

    def retention(self, topic: str) -> int:
        """Events of ``topic`` the broker should keep at least."""

    @property
    def stats(self) -> dict[str, int | float]:
        """Counters a broker adds to: ``broker_round_trips``, ``broker_rtt_seconds_sum``."""


class Broker(Protocol):
    durable: bool

    async def open(self, sink: Sink) -> Position: ...

    async def append(self, batch: Sequence[Prepared]) -> tuple[int, list[int]]: ...

    async def history(self, topic: str, upto_seq: int, limit_events: int,
                      limit_bytes: int | None = None) -> History: ...

    async def head(self) -> Position: ...

    async def healthy(self) -> bool: ...

    async def close(self) -> None: ...


class MemoryBroker:
    """Single process: a counter. A new epoch at every start (memory does not survive a
    restart); the hub's bounded topic logs are the only history."""

    durable = False

    def __init__(self) -> None:
        self._seq = 0
        self.epoch = 0
        self._sink: Sink | None = None

    async def open(self, sink: Sink) -> Position:
        self._sink = sink
        self.epoch = new_epoch()
        return Position(self.epoch, self._seq)

    async def append(self, batch: Sequence[Prepared]) -> tuple[int, list[int]]:
        return self.append_now(batch)

    def append_now(self, batch: Sequence[Prepared]) -> tuple[int, list[int]]:
        """``append`` without a suspension point: a memory broker applies as it appends."""
        sink = self._sink
        assert sink is not None, "open the broker first"
        seqs = []
        for topics, _, body in batch:
            self._seq += 1
            sink.apply(self._seq, topics, body)
            seqs.append(self._seq)
        return self.epoch, seqs

    async def history(self, topic: str, upto_seq: int, limit_events: int,
                      limit_bytes: int | None = None) -> History:
        return self.epoch, [], 0

    async def head(self) -> Position:
        return Position(self.epoch, self._seq)

    async def healthy(self) -> bool:
        return True

    async def close(self) -> None:
        return None
