"""The hub: publish into bounded topic logs, subscribe with cursors. Knows nothing of HTTP.

Per publish: validate and encode once (``prepare``), let the broker order it (``append``),
and — delivered back by the broker in seq order (``apply``) — append the frame to each
cached topic's log and wake that topic's waiting subscribers (each has a future of its own,
resolved in one pass). No per-subscriber work happens in the publisher: each woken
subscriber slices its own cursor..head range (see ``subscription.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence

from ..config import Settings
from ..errors import BrokerUnavailable, HubClosed, InvalidField
from ..wire import Event, encode
from .bounds import Bounds
from .broker import Broker, MemoryBroker, Prepared
from .gaps import GapReason
from .limits import HubLimits, encode_data
from .log import TopicLog
from .positions import format_id
from .presence import Presence, PresenceListener
from .subscription import Subscription
from .topic import Topic
from .topics import check_topics

__all__ = ["Hub", "HubLimits", "Prepared", "Topic"]


class Hub(Bounds, Presence):
    """Topics, positions and subscriptions. Use as ``async with Hub() as hub:``.

    ``hub.stats`` is a plain dict of counters, for metrics:
    ``published`` (events), ``gaps_<reason>`` (gap events sent, one key per reason of
    ``GapReason.ALL``), ``slow_consumer_cuts`` (subscriptions ended by the 'disconnect'
    policy), ``broker_round_trips`` and ``broker_rtt_seconds_sum`` (calls to a shared broker
    and their total time), ``broker_outages`` (times the broker stopped answering),
    ``broker_up`` (1 or 0), ``epoch_resets`` (times the broker's history was found lost),
    ``topics_forgotten`` and ``frames_evicted_hub_wide`` (by ``max_topics`` and
    ``max_retained_bytes``).
    """

    def __init__(
        self,
        broker: Broker | None = None,
        *,
        limits: HubLimits | None = None,
        settings: Settings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits or (HubLimits.from_settings(settings) if settings else HubLimits())
        self.broker: Broker = broker if broker is not None else MemoryBroker()
        self.clock = clock
        self.epoch = 0
        #: seq of the last event applied (the feed position, with a shared broker)
        self.last_seq = 0
        #: highest seq of any topic forgotten while its history was only here (memory
        #: broker): resumes below it get a gap
        self.forgotten_seq = 0
        #: encoded bytes retained across all topics (bounded by max_retained_bytes)
        self.retained_bytes = 0
        self.tick_count = 0
        self.closed = False
        self.stats: dict[str, int | float] = {
            "published": 0, "slow_consumer_cuts": 0, "broker_round_trips": 0,
            "broker_rtt_seconds_sum": 0.0, "broker_outages": 0, "broker_up": 1, "epoch_resets": 0,
            "topics_forgotten": 0, "frames_evicted_hub_wide": 0,
            **{"gaps_" + r: 0 for r in GapReason.ALL},
        }
        self._topics: dict[str, Topic] = {}
        #: topics nobody subscribes to, least recently used first (O(1) forgetting)
        self._idle: OrderedDict[str, Topic] = OrderedDict()
        self._sweep: Iterator[Topic] | None = None
        self._listeners: list[PresenceListener] = []
        self._retention: list[tuple[str, int, int]] = []  # (prefix, max events, max bytes)
        self._ticker: asyncio.Task[None] | None = None
        self._opened = False
        self._durable = bool(getattr(self.broker, "durable", False))
        self._applied: list[tuple[int, int, int, asyncio.Future[None]]] = []  # (epoch, seq, n, fut)
        self._resets = 0
        self._warms: set[asyncio.Task[None]] = set()

    @property
    def settings(self) -> HubLimits:
        """Deprecated alias of ``limits``."""
        return self.limits

    # -- lifecycle ------------------------------------------------------------------
    async def start(self) -> Hub:
        if not self._opened:
            self._opened = True
            try:
                self.epoch, self.last_seq = await self.broker.open(self)
            except BaseException:
                self._opened = False
                raise
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
        for *_, fut in self._applied:
            if not fut.done():
                fut.set_result(None)
        for task in list(self._warms):
            task.cancel()
        if self._warms:
            await asyncio.wait(self._warms)
        await self.broker.close()

    async def healthy(self) -> bool:
        return not self.closed and await self.broker.healthy()

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.limits.heartbeat)
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

        ``data`` is any JSON value: a str is sent as that text, anything else as compact
        UTF-8 JSON. Raises the BadRequest a publish of these values would raise, so a batch
        can be checked whole before any of it is published.
        """
        names = check_topics(topics, self.limits.max_topics_per_subscription)  # type: ignore[arg-type]
        if event is not None and not isinstance(event, str):
            raise InvalidField("event must be a string")
        value = Event(encode_data(data), event, None, retry)  # type: ignore[arg-type]  # checks every field
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
        epoch, seqs = await self.broker.append((prepared,))
        seq = seqs[0]
        self.stats["published"] += 1
        if seq > self.last_seq or epoch != self.epoch:  # a shared broker's feed has not applied it yet
            await self._wait_applied(epoch, seq)
        return format_id(epoch, seq)

    async def commit_many(self, batch: Sequence[Prepared]) -> list[str]:
        """Publish prepared events in order, in one broker round trip; return their ids.

        Returns once the broker stored them and this hub applied them (read your writes).
        """
        if self.closed:
            raise HubClosed("the hub is shutting down")
        if not self._opened:
            await self.start()
        epoch, seqs = await self.broker.append(batch)
        self.stats["published"] += len(seqs)
        if seqs and (epoch != self.epoch or seqs[-1] > self.last_seq):
            await self._wait_applied(epoch, seqs[-1])
        return [format_id(epoch, seq) for seq in seqs]

    def commit_now(self, batch: Sequence[Prepared]) -> list[str] | None:
        """``commit_many`` if the broker appends synchronously (memory) and the hub is open."""
        if not hasattr(self.broker, "append_now") or self._ticker is None or self.closed:
            return None  # done nothing (_ticker: not opened): await commit_many
        epoch, seqs = self.broker.append_now(batch)
        self.stats["published"] += len(seqs)
        return [format_id(epoch, seq) for seq in seqs]

    async def publish(
        self,
        topics: str | Sequence[str],
        data: object,
        *,
        event: str | None = None,
        retry: int | None = None,
    ) -> str:
        """Append one event to every topic named; return its id."""
        prepared = self.prepare(topics, data, event=event, retry=retry)
        ids = self.commit_now((prepared,))  # (the memory broker: done without suspending)
        return ids[0] if ids is not None else await self.commit(prepared)

    # -- the broker's sink ----------------------------------------------------------
    def apply(self, seq: int, topics: Sequence[str], body: bytes) -> None:
        """An event in broker order: append its frame to each cached topic, wake waiters."""
        self.last_seq = seq
        frame = b""
        grown = 0
        idle = self._idle
        for name in topics:
            topic = self._topics.get(name)
            if topic is None:
                if self._durable:  # not cached here: its history lives in the broker
                    continue
                topic = self._create(name, topics)
            if not frame:
                frame = b"id: %d-%d\n%s" % (self.epoch, seq, body)  # (the id: == format_id)
            grown += topic.log.append(seq, frame)
            if topic.subscribers == 0:
                idle.move_to_end(name)
            if topic.waiters:
                topic.wake()
        self.retained_bytes += grown
        if self.retained_bytes > self.limits.max_retained_bytes:
            self._shrink(topics)
        if self._applied:
            self._resolve_applied()

    def reset_epoch(self, epoch: int, start_seq: int) -> None:
        """The broker lost history: every cached log is dropped (its readers get a gap) and
        ids continue in ``epoch`` after ``start_seq``."""
        self.epoch, self.last_seq = epoch, start_seq
        self._resets += 1
        self.stats["epoch_resets"] += 1
        self.retained_bytes = 0
        for topic in self._topics.values():
            topic.log.reset(start_seq)
            topic.live_from = start_seq
            if topic.warming is not None and not topic.warming.done():
                topic.warming.set_result(None)
            topic.warming = None
            topic.wake()
        self._resolve_applied()

    def broker_down(self) -> None:
        self.stats["broker_outages"] += 1
        self.stats["broker_up"] = 0

    def broker_up(self, outage_seconds: float) -> None:
        self.stats["broker_up"] = 1

    def retention(self, topic: str) -> int:
        return self._limits_for(topic)[0]

    def _resolve_applied(self) -> None:
        pos = (self.epoch, self.last_seq)
        waiting = self._applied
        while waiting and waiting[0][:2] <= pos:
            fut = heapq.heappop(waiting)[3]
            if not fut.done():
                fut.set_result(None)

    async def _wait_applied(self, epoch: int, seq: int) -> None:
        """Until the feed applied (epoch, seq), at most ``broker_timeout`` (it is stored
        either way: a late feed delivers it later)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._applied, (epoch, seq, id(fut), fut))
        self._resolve_applied()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(fut, self.limits.broker_timeout)

    # -- subscribe ------------------------------------------------------------------
    def subscribe(self, topics: str | Sequence[str], *, last_event_id: str | None = None) -> Subscription:
        """A subscription to ``topics``; resume after ``last_event_id`` (or ``"earliest"``).

        With a shared broker a resumed subscription loads its topics' history first:
        ``await sub.start()`` (the iterator and the SSE stream do it themselves).
        """
        if self.closed:
            raise HubClosed("the hub is shutting down")
        if not self._opened:
            # its epoch is not known yet: resume ids could not be checked
            raise RuntimeError("start the hub first: `async with Hub() as hub:` or `await hub.start()`")
        names = check_topics(topics, self.limits.max_topics_per_subscription)
        return Subscription(self, [self.topic(n, names) for n in names], last_event_id)

    def topic(self, name: str, protect: Sequence[str] = ()) -> Topic:
        """The topic of that name, created (and, with a shared broker, warmed) if needed,
        never forgetting one named in ``protect``."""
        return self._topics.get(name) or self._create(name, protect)

    def set_retention(self, prefix: str, max_events: int, max_bytes: int) -> None:
        """Retain more (or less) history for topics whose name starts with ``prefix``
        (topics created from now on; the longest matching prefix wins)."""
        self._retention.append((prefix, max_events, max_bytes))
        self._retention.sort(key=lambda r: -len(r[0]))

    def _limits_for(self, name: str) -> tuple[int, int]:
        for prefix, max_events, max_bytes in self._retention:
            if name.startswith(prefix):
                return max_events, max_bytes
        return self.limits.history_size, self.limits.history_bytes

    def _create(self, name: str, protect: Sequence[str]) -> Topic:
        if len(self._topics) >= self.limits.max_topics:
            self._forget_idle(protect)
        events, size = self._limits_for(name)
        topic = Topic(name, TopicLog(events, size, self.forgotten_seq), self.last_seq)
        self._topics[name] = topic
        self._idle[name] = topic
        if self._durable:
            topic.warming = asyncio.get_running_loop().create_future()
            self._start_warm(topic)
        return topic

    # -- history from a shared broker -------------------------------------------------
    def _start_warm(self, topic: Topic) -> None:
        task = asyncio.get_running_loop().create_task(self._warm(topic, self._resets))
        self._warms.add(task)
        task.add_done_callback(self._warm_done)

    def _warm_done(self, task: asyncio.Task[None]) -> None:
        self._warms.discard(task)
        if not task.cancelled():
            task.exception()

    async def _warm(self, topic: Topic, resets: int) -> None:
        log = topic.log
        try:
            epoch, entries, evicted = await asyncio.wait_for(
                self.broker.history(topic.name, topic.live_from, log.max_events, log.max_bytes),
                self.limits.broker_timeout)
        except (BrokerUnavailable, TimeoutError, OSError) as exc:
            if topic.warming is not None and not topic.warming.done():
                why = f"cannot load the history of {topic.name!r}: {str(exc) or type(exc).__name__}"
                topic.warming.set_exception(BrokerUnavailable(why))
                topic.warming.exception()  # retrieved: a waiting subscription re-raises its own
            return
        if resets != self._resets or topic.warming is None:
            return  # the history was reset meanwhile: nothing before it is valid
        if self._topics.get(topic.name) is not topic:
            # forgotten meanwhile (max_topics, max_retained_bytes): its log is orphaned and
            # its bytes must not count (they would never be subtracted again)
            warming, topic.warming = topic.warming, None
            if not warming.done():
                warming.set_result(None)
            return
        if epoch != self.epoch:
            entries, evicted = [], topic.live_from  # a reset is on its way: load nothing
        before = log.retained_bytes
        if log.evicted_seq <= topic.live_from:
            prefix = b"id: %d-" % self.epoch
            log.prepend([(s, prefix + b"%d\n" % s + body) for s, body in entries if s <= topic.live_from],
                        evicted)
        self.retained_bytes += log.retained_bytes - before
        if self.retained_bytes > self.limits.max_retained_bytes:
            self._shrink((topic.name,))
        warming, topic.warming = topic.warming, None
        if not warming.done():
            warming.set_result(None)

    async def ready(self, topic: Topic) -> None:
        """Until ``topic``'s history is loaded (at most ``broker_timeout``; BrokerUnavailable)."""
        warming = topic.warming
        if warming is None:
            return
        if warming.done() and warming.exception() is not None:
            warming = topic.warming = asyncio.get_running_loop().create_future()
            self._start_warm(topic)
        try:
            await asyncio.wait_for(asyncio.shield(warming), self.limits.broker_timeout * 2)
        except TimeoutError:
            raise BrokerUnavailable("the broker did not answer in time") from None

    async def caught_up(self, seq: int) -> None:
        """Until the feed applied ``seq`` of the current epoch (at most ``broker_timeout``).

        Raises BrokerUnavailable ("try again") when the feed has not reached it by then but
        the broker did hand it out (this process lags: a gap would replay what the client
        already has); returns when it was never handed out (the caller's ``future-id`` gap).
        """
        if seq > self.last_seq:
            epoch = self.epoch
            await self._wait_applied(epoch, seq)
            if seq > self.last_seq and self.epoch == epoch:
                head = await self.broker.head()
                if head.epoch == epoch and head.seq >= seq:
                    raise BrokerUnavailable("this process has not caught up with that id yet; try again")
