"""The hub: publish into bounded topic logs, subscribe with cursors. Knows nothing of HTTP.

Per publish: validate, encode once, append to each topic's log, resolve the topic's one
shared wake-up future. No per-subscriber work happens in the publisher: each woken
subscriber slices its own cursor..head range (see ``subscription.py``).
"""

from __future__ import annotations

import asyncio
import heapq
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import NamedTuple

from ..config import Settings
from ..errors import HubClosed, InvalidField
from ..wire import Event, encode
from .broker import Broker, MemoryBroker
from .log import TopicLog
from .positions import format_id
from .subscription import Subscription
from .topics import check_topics

__all__ = ["Hub", "Prepared", "Topic"]

PresenceListener = Callable[[str, int], None]


class Prepared(NamedTuple):
    """A validated publication, encoded but for its id line."""

    topics: tuple[str, ...]
    event: Event
    body: bytes


class Topic:
    """A topic's log, the futures of the subscribers waiting on it, its subscriber count.

    Each waiting subscriber has a future of its own (never one shared future: cancelling a
    task that awaits a shared future cancels it for every awaiter, so a crowd leaving one
    topic would cost a quadratic number of wake-ups). A publish wakes them all in one pass.
    """

    __slots__ = ("last_used", "log", "name", "subscribers", "waiters")

    def __init__(self, name: str, log: TopicLog, now: float) -> None:
        self.name = name
        self.log = log
        self.subscribers = 0
        self.waiters: list[asyncio.Future[None]] = []
        self.last_used = now

    def wake(self) -> None:
        waiters = self.waiters
        if waiters:
            self.waiters = []
            for waiter in waiters:
                if not waiter.done():  # cancelled by its own subscriber, or woken by another topic
                    waiter.set_result(None)


class Hub:
    """Topics, positions and subscriptions. Use as ``async with Hub() as hub:``."""

    def __init__(
        self,
        broker: Broker | None = None,
        *,
        settings: Settings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings or Settings()
        self.broker: Broker = broker if broker is not None else MemoryBroker()
        self.clock = clock
        self.epoch = 0
        self.last_seq = 0
        #: highest seq of any topic forgotten to respect max_topics; resumes below it get a gap
        self.forgotten_seq = 0
        #: encoded bytes retained across all topics (bounded by max_retained_bytes)
        self.retained_bytes = 0
        self.tick_count = 0
        self.closed = False
        self._topics: OrderedDict[str, Topic] = OrderedDict()
        self._listeners: list[PresenceListener] = []
        self._retention: list[tuple[str, int, int]] = []  # (prefix, max events, max bytes)
        self._ticker: asyncio.Task[None] | None = None
        self._opened = False

    # -- lifecycle ------------------------------------------------------------------
    async def start(self) -> Hub:
        if not self._opened:
            self.epoch = await self.broker.open()
            self._opened = True
            self._ticker = asyncio.get_running_loop().create_task(self._tick_forever())
        return self

    async def __aenter__(self) -> Hub:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """End every subscription (they see the hub closed) and stop the ticker. Idempotent."""
        if self.closed:
            return
        self.closed = True
        for topic in self._topics.values():
            topic.wake()
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        await self.broker.close()

    async def healthy(self) -> bool:
        return not self.closed and await self.broker.healthy()

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat)
            self.tick()

    def tick(self) -> None:
        """Heartbeat: wake every waiting subscriber once; idle ones send a comment line."""
        self.tick_count += 1
        for topic in self._topics.values():
            topic.wake()

    # -- publish --------------------------------------------------------------------
    def prepare(
        self, topics: object, data: object, *, event: object = None, retry: object = None
    ) -> Prepared:
        """Validate and encode a publication without publishing it (no id is spent).

        Raises the BadRequest a publish of these values would raise, so a batch can be
        checked whole before any of it is published.
        """
        names = check_topics(topics, self.settings.max_topics_per_subscription)  # type: ignore[arg-type]
        if event is not None and not isinstance(event, str):
            raise InvalidField("event must be a string")
        value = Event(data, event, None, retry)  # type: ignore[arg-type]  # checks every field
        try:
            body = encode(value)
        except UnicodeEncodeError:
            raise InvalidField("data and event must be valid Unicode (no lone surrogates)") from None
        return Prepared(names, value, body)

    async def commit(self, prepared: Prepared) -> str:
        """Publish a prepared event to its topics; return its id. One event, one id."""
        if self.closed:
            raise HubClosed("the hub is shutting down")
        if not self._opened:
            await self.start()
        names, value, body = prepared
        seq = await self.broker.append(names, value.data, value.event, value.retry)
        self.last_seq = seq
        ident = format_id(self.epoch, seq)
        frame = b"id: " + ident.encode() + b"\n" + body  # == encode() with the id: its line is first
        now = self.clock()
        grown = 0
        for name in names:
            topic = self._topics.get(name) or self._create(name, names)
            log = topic.log
            before = log.retained_bytes
            log.append(seq, frame)
            grown += log.retained_bytes - before
            topic.last_used = now
            if topic.waiters:
                topic.wake()
        self.retained_bytes += grown
        if self.retained_bytes > self.settings.max_retained_bytes:
            while self.retained_bytes > self.settings.max_retained_bytes and self._forget_idle(names):
                pass
        return ident

    async def publish(
        self,
        topics: str | Sequence[str],
        data: str,
        *,
        event: str | None = None,
        retry: int | None = None,
    ) -> str:
        """Append one event to every topic named; return its id."""
        return await self.commit(self.prepare(topics, data, event=event, retry=retry))

    # -- subscribe ------------------------------------------------------------------
    def subscribe(self, topics: str | Sequence[str], *, last_event_id: str | None = None) -> Subscription:
        """A subscription to ``topics``; resume after ``last_event_id`` (or ``"earliest"``)."""
        if self.closed:
            raise HubClosed("the hub is shutting down")
        if not self._opened:
            # its epoch is not known yet: resume ids could not be checked
            raise RuntimeError("start the hub first: `async with Hub() as hub:` or `await hub.start()`")
        names = check_topics(topics, self.settings.max_topics_per_subscription)
        return Subscription(self, [self.topic(n, names) for n in names], last_event_id)

    def topic(self, name: str, protect: Sequence[str] = ()) -> Topic:
        """The topic of that name, created empty if needed (never forgetting ``protect``)."""
        return self._topics.get(name) or self._create(name, protect)

    def set_retention(self, prefix: str, max_events: int, max_bytes: int) -> None:
        """Retain more (or less) history for topics whose name starts with ``prefix``
        (topics created from now on; the longest matching prefix wins)."""
        self._retention.append((prefix, max_events, max_bytes))
        self._retention.sort(key=lambda r: -len(r[0]))

    def _create(self, name: str, protect: Sequence[str]) -> Topic:
        s = self.settings
        if len(self._topics) >= s.max_topics:
            self._forget_idle(protect)
        events, size = s.history_size, s.history_bytes
        for prefix, max_events, max_bytes in self._retention:
            if name.startswith(prefix):
                events, size = max_events, max_bytes
                break
        topic = Topic(name, TopicLog(events, size, self.forgotten_seq), self.clock())
        self._topics[name] = topic
        return topic

    def _forget_idle(self, protect: Sequence[str]) -> int:
        """Drop the least recently used topics nobody subscribes to (10% at a time), never
        one named in ``protect`` (the topics of the publish or subscription in progress).
        Returns how many were dropped."""
        keep = set(protect)
        victims = heapq.nsmallest(
            max(1, len(self._topics) // 10),
            (t for t in self._topics.values() if t.subscribers == 0 and not t.waiters and t.name not in keep),
            key=lambda t: t.last_used,
        )
        for topic in victims:
            self.forgotten_seq = max(self.forgotten_seq, topic.log.last_seq)
            self.retained_bytes -= topic.log.retained_bytes
            del self._topics[topic.name]
        return len(victims)

    # -- presence -------------------------------------------------------------------
    def add_presence_listener(self, listener: PresenceListener) -> None:
        self._listeners.append(listener)

    def remove_presence_listener(self, listener: PresenceListener) -> None:
        self._listeners.remove(listener)

    def _presence(self, topic: Topic, delta: int) -> None:
        topic.subscribers += delta
        topic.last_used = self.clock()
        for listener in tuple(self._listeners):
            listener(topic.name, topic.subscribers)

    def subscriber_count(self, name: str) -> int:
        topic = self._topics.get(name)
        return topic.subscribers if topic is not None else 0

    def topics(self) -> list[dict[str, object]]:
        """Topics with subscribers or retained events: name, subscribers, last id, retained."""
        out: list[dict[str, object]] = []
        for t in self._topics.values():
            if t.subscribers or len(t.log):
                last = format_id(self.epoch, t.log.last_seq) if len(t.log) else None
                out.append({"topic": t.name, "subscribers": t.subscribers, "last_event_id": last,
                            "retained": len(t.log)})
        return out

    def gap_event(self, topic: str, last_event_id: str | None, reason: str) -> Event:
        data = json.dumps({"topic": topic, "last_event_id": last_event_id, "reason": reason},
                          ensure_ascii=False, separators=(",", ":"))
        return Event(data, "gap")
