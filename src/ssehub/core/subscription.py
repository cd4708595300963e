"""A subscription: one cursor per topic into the hub's topic logs.

``next_chunk()`` is the HTTP hot path: everything between the cursors and the heads, already
encoded, joined into one ``bytes`` (so a busy stream coalesces many events per write).
``async for event in subscription`` is the library form, yielding ``wire.Event`` values.

Continuity is checked where it can break: when the subscription opens with a resume id,
and whenever a cursor is found below its log's oldest retained entry (the subscriber fell
behind). Either way the subscriber first gets ``event: gap`` for that topic and then continues
from the oldest retained event — never a silent loss.

``label_topics()`` (``GET /subscribe?…&topic_field=1``) makes each event carry a ``topic:``
line per topic of this subscription it was published to. ``topic`` is not a WHATWG field:
EventSource and other SSE parsers ignore it; ssehub's console reads it. The log's frames stay
the same bytes for every subscriber: the line is a separate piece joined in front of the frame
(field order within a block does not matter), only for the subscriptions that asked.
"""

from __future__ import annotations

import asyncio
from collections import deque
from heapq import merge
from typing import TYPE_CHECKING

from ..errors import SlowConsumer, SubscriptionClosed
from ..wire import Event, Parser, encode
from .gaps import GapReason, gap_event
from .positions import EARLIEST, format_id, parse_id
from .topic import Topic, Waker

if TYPE_CHECKING:
    from .hub import Hub

__all__ = ["GapReason", "SlowConsumer", "Subscription", "SubscriptionClosed"]


class Subscription:
    __slots__ = ("_buffer", "_closed", "_cursors", "_epoch", "_hub", "_labels", "_last_ids", "_pending",
                 "_resume", "_single", "_tick", "_topics", "start_id")

    def __init__(self, hub: Hub, topics: list[Topic], last_event_id: str | None) -> None:
        self._hub = hub
        self._topics = topics
        self._single = False  # until started
        self._pending: list[tuple[int, Event]] = []  # (topic index, gap) to send before anything
        self._labels: list[bytes] | None = None  # per topic, its ``topic:`` line (label_topics)
        #: per topic, what was delivered last: the resume id given, or the seq of an event
        self._last_ids: list[str | int | None] = [last_event_id] * len(topics)
        self._resume = last_event_id
        self._epoch = hub.epoch  # the epoch of the seqs in _last_ids
        self._cursors: list[int] = []
        #: the position this subscription starts after, when it had none to resume from: the
        #: stream sends it first (``SSEHub-Start-Id`` header and an opening ``id:`` line), so a
        #: client that drops before its first event resumes from here instead of from
        #: whatever is newest when it comes back
        self.start_id: str | None = None
        self._closed = False
        self._tick = hub.tick_count
        self._buffer: deque[Event] | None = None  # library iteration only; made on first use
        for topic in topics:
            hub.presence(topic, +1)
        if last_event_id is None or not hub.broker.durable:
            self._begin()  # nothing to load: a live subscription, or a memory hub

    async def start(self) -> None:
        """Load what the resume position needs (a shared broker's topic history), then
        place the cursors. A no-op for a live subscription and with the memory broker.
        Raises BrokerUnavailable when the broker does not answer in time."""
        if self._cursors or self._closed:
            return
        hub = self._hub
        for topic in self._topics:
            await hub.ready(topic)
        pos = parse_id(self._resume) if self._resume not in (None, EARLIEST) else None
        if pos is not None and pos.epoch == hub.epoch and pos.seq > hub.last_seq:
            await hub.caught_up(pos.seq)  # published elsewhere, not applied here yet
        if not self._cursors:
            self._begin()

    def _begin(self) -> None:
        self._epoch = self._hub.epoch
        self._cursors = self._start(self._resume)
        self._single = len(self._topics) == 1 and self._labels is None

    def label_topics(self) -> None:
        """Send a ``topic: <name>`` line with each event, for each of this subscription's
        topics it was published to (and with each gap, its topic)."""
        self._labels = [f"topic: {t.name}\n".encode() for t in self._topics]
        self._single = False  # the one-topic fast path sends the log's frames alone

    def _start(self, last_event_id: str | None) -> list[int]:
        logs = [t.log for t in self._topics]
        if last_event_id is None:
            self.start_id = format_id(self._hub.epoch, self._hub.last_seq)
            self._last_ids = [self._hub.last_seq] * len(logs)
            return [log.head for log in logs]
        if last_event_id == EARLIEST:
            return [log.first for log in logs]
        hub = self._hub
        pos = parse_id(last_event_id)
        if pos is None:
            reason: str | None = GapReason.UNKNOWN_ID
        elif pos.epoch != hub.epoch:
            reason = GapReason.OTHER_EPOCH
        elif pos.seq > hub.last_seq:
            reason = GapReason.FUTURE_ID
        else:
            reason = None
        cursors = []
        for topic in self._topics:
            log = topic.log
            if reason is None and pos is not None and log.evicted_seq <= pos.seq:
                cursors.append(log.index_after(pos.seq))
            else:
                self._gap(len(cursors), last_event_id, reason or GapReason.EVICTED)
                cursors.append(log.first)
        return cursors

    def _gap(self, i: int, last_event_id: str | None, reason: str) -> None:
        self._pending.append((i, gap_event(self._topics[i].name, last_event_id, reason)))
        self._hub.stats["gaps_" + reason] += 1

    def _take_pending(self) -> list[bytes]:
        labels = self._labels
        out = [encode(e) if labels is None else labels[i] + encode(e) for i, e in self._pending]
        self._pending.clear()
        return out

    # -- taking what is new ---------------------------------------------------------
    def fell_behind(self) -> bool:
        """True when a cursor is below its log's oldest entry (events it needs were evicted)."""
        return any(c < t.log.first for c, t in zip(self._cursors, self._topics, strict=False))

    def _behind(self, i: int) -> int:
        """Cursor i fell below its log's oldest entry: gap (or disconnect), return the new cursor."""
        topic = self._topics[i]
        log = topic.log
        last = self._last_ids[i]
        if isinstance(last, int):
            last = format_id(self._epoch, last)
        if self._cursors[i] < log.reset_index:  # the broker lost history: a new epoch
            self._gap(i, last, GapReason.RESET)
            self._last_ids[i] = None
            if all(c >= t.log.reset_index or j == i
                   for j, (c, t) in enumerate(zip(self._cursors, self._topics, strict=True))):
                self._epoch = self._hub.epoch
            return log.first
        if self._hub.limits.slow_consumer == "disconnect":
            self.close()
            self._hub.stats["slow_consumer_cuts"] += 1
            raise SlowConsumer(f"subscriber fell behind the retained history of {topic.name!r}")
        self._gap(i, last, GapReason.SLOW_CONSUMER)
        return log.first

    def _take(self) -> list[bytes]:
        """Frames of everything new (pending gaps first), at most max_chunk_bytes of events;
        the cursors advance past what is returned."""
        limit = self._hub.limits.max_chunk_bytes
        if not self._cursors:  # not started yet
            return []
        if not self._single:
            return self._take_merged(limit)
        log = self._topics[0].log
        cur = self._cursors[0]
        if cur < log.first:
            cur = self._cursors[0] = self._behind(0)
        head = log.head
        out = self._take_pending()
        if cur < head:
            base = log.base
            room = max(1, limit - sum(len(f) for f in out))  # gap notices count in the chunk too
            lo, hi = cur - base, log.slot_end(cur - base, head - base, room)
            out += log.frames[lo:hi]
            self._cursors[0] = base + hi
            self._last_ids[0] = log.seqs[hi - 1]
        return out

    def _take_merged(self, limit: int) -> list[bytes]:
        runs = []
        for i, topic in enumerate(self._topics):
            log = topic.log
            if self._cursors[i] < log.first:
                self._cursors[i] = self._behind(i)
            cur, head = self._cursors[i], log.head
            if cur < head:
                base = log.base
                # whole runs: the byte limit is applied across the merge, in seq order
                # (an event in several of our topics: its entries come in our topics' order)
                runs.append([(log.seqs[k], i, k) for k in range(cur - base, head - base)])
        out = self._take_pending()
        if not runs:
            return out
        labels = self._labels
        size, last_seq, taken = sum(len(f) for f in out), -1, 0  # gap notices count too
        for seq, i, k in merge(*runs):
            if seq == last_seq:  # one event published to several of our topics: send it once
                if labels is not None:  # naming each of them (before the frame just added)
                    out.insert(len(out) - 1, labels[i])
                    size += len(labels[i])
                continue
            if taken and size >= limit:
                break
            frame = self._topics[i].log.frames[k]
            if labels is not None:
                out.append(labels[i])
                size += len(labels[i])
            out.append(frame)
            size += len(frame)
            last_seq, taken = seq, taken + 1
        # advance each cursor past every entry up to and including last_seq
        for i, topic in enumerate(self._topics):
            log = topic.log
            if self._cursors[i] < log.head:
                new = min(log.index_after(last_seq), log.head)
                if new > self._cursors[i]:
                    self._cursors[i] = new
                    self._last_ids[i] = log.seqs[new - 1 - log.base]
        return out

    # -- waiting --------------------------------------------------------------------
    def ready(self) -> asyncio.Future[None]:
        """A future of this subscription's own that completes when something may be new
        (a publish to one of its topics, a heartbeat tick, the hub closing)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for topic in self._topics:
            topic.waiters.append(waiter)
        return waiter

    def when_ready(self, waker: Waker) -> None:
        """``ready().add_done_callback(...)`` without a future: arm ``waker`` (the caller's own,
        reused from one wake-up to the next) on this subscription's topics."""
        waker.armed = True
        for topic in self._topics:
            topic.waiters.append(waker)

    async def wait(self) -> None:
        """Wait until ``ready()``."""
        await self.ready()

    def _check_open(self) -> None:
        if self._closed:
            raise SubscriptionClosed("subscription closed")
        if self._hub.closed:
            self.close()
            raise SubscriptionClosed("the hub is shutting down")

    def poll(self) -> bytes | None:
        """Without waiting: encoded frames of everything new; ``b""`` when a heartbeat is due
        and nothing is new; None when there is nothing to send (then wait for ``ready()``).

        Raises SubscriptionClosed when the hub or this subscription closes, and SlowConsumer
        (a SubscriptionClosed) when the policy is 'disconnect' and the subscriber fell behind.
        """
        if self._closed:
            raise SubscriptionClosed("subscription closed")
        if self._single and not self._pending:
            # The hot path, inlined: one topic, nothing pending, not behind.
            log = self._topics[0].log
            base = log.base
            slot = self._cursors[0] - base
            end = len(log.seqs)
            if log.start <= slot < end:
                end = log.slot_end(slot, end, self._hub.limits.max_chunk_bytes)
                self._cursors[0] = base + end
                self._last_ids[0] = log.seqs[end - 1]
                return log.frames[slot] if end - slot == 1 else b"".join(log.frames[slot:end])
            hub = self._hub
            if slot == end and self._tick == hub.tick_count and not hub.closed:
                return None  # at the head, no heartbeat due: the common "nothing new"
        out = self._take()
        if out:  # even when the hub is closing: what it accepted is delivered first
            return out[0] if len(out) == 1 else b"".join(out)
        self._check_open()
        if self._tick != self._hub.tick_count:
            self._tick = self._hub.tick_count
            return b""
        return None

    async def next_chunk(self) -> bytes:
        """``poll()``, waiting while there is nothing: frames, or ``b""`` for a heartbeat."""
        if not self._cursors:
            await self.start()
        while True:
            chunk = self.poll()
            if chunk is not None:
                return chunk
            await self.wait()

    # -- library API ----------------------------------------------------------------
    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        if self._buffer is None:
            self._buffer = deque()
            await self.start()
        while not self._buffer:
            if self._closed:
                raise StopAsyncIteration
            # The log keeps encoded frames only (one copy of each event): the library form
            # decodes them again, one frame at a time so that each event keeps its own id
            # (a gap has none) and retry hint.
            for frame in self._take():
                parser = Parser()
                for event in parser.feed(frame):
                    self._buffer.append(Event(event.data, event.event,
                                              None if event.event == "gap" else event.id, parser.retry))
            if not self._buffer:
                try:
                    self._check_open()
                except SubscriptionClosed:
                    raise StopAsyncIteration from None
                await self.wait()
        return self._buffer.popleft()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    @property
    def hub(self) -> Hub:
        return self._hub

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(t.name for t in self._topics)

    @property
    def topic_count(self) -> int:
        """``len(topics)`` without building it."""
        return len(self._topics)

    @property
    def started(self) -> bool:
        """True once the cursors are placed: ``poll()`` works without awaiting ``start()``."""
        return bool(self._cursors)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop counting as a subscriber. Idempotent."""
        if not self._closed:
            self._closed = True
            for topic in self._topics:
                self._hub.presence(topic, -1)
