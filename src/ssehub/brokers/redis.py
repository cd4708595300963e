"""The Redis broker: Redis Streams hold the order and the history; any number of ssehub
processes on one Redis (or Redis Cluster) namespace behave as one hub.

- ``append``: one Lua script call per batch (``redis_scripts.PUBLISH``) — checks the epoch,
  INCRs the seq, XADDs the body to each topic's stream (``MAXLEN ~`` its retention) and to the
  namespace feed, and returns the epoch and the seqs.
- The feed reader (one task per process) loops ``XREAD BLOCK`` on the feed from the last id
  it applied and hands each event to the hub in seq order: an event crosses from Redis to a
  process once, however many subscribers it has there.
- ``history``: the tail of one topic's stream, to warm the hub's cache of that topic, loaded
  in small pages up to the cache's byte bound (never one call scanning a big topic).
- Outages: every call is bounded by ``timeout`` (socket timeouts and ``asyncio.wait_for``);
  one log line when Redis stops answering and one when it is back (with the outage's
  duration); the reader reconnects with capped exponential backoff, re-checks the epoch
  (``SYNC``) and resumes from its last id. It applies feed entries only in seq order: an
  entry that is not ``position + 1`` (the feed was trimmed past a process reading slower
  than the publishers write) makes it re-sync, and the hub resets its caches (subscribers
  get a ``reset`` gap) — never a silent hole.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..core.broker import History, Prepared, Sink
from ..core.positions import Position
from ..errors import BrokerUnavailable
from .redis_generations import RedisGenerations
from .redis_scripts import HEAD, PUBLISH, SYNC, WARM

__all__ = ["FEED_MAXLEN", "RedisBroker"]

log = logging.getLogger("ssehub.redis")

#: entries the feed keeps (MAXLEN ~): how far behind a process may fall (e.g. while Redis is
#: unreachable from it but not from the publishers) and still catch up without a gap
FEED_MAXLEN = 100_000
BLOCK_MS = 1000  # one XREAD waits at most this long; an idle reader re-checks the epoch then
BACKOFF = (0.05, 2.0)  # reconnect delays: first, cap (doubling in between)
FAILURES = (RedisError, OSError, TimeoutError, BrokerUnavailable)
TIMEOUTS = (TimeoutError, RedisTimeoutError)  # asyncio.wait_for's and the socket's
#: a history load: entries in its first page, at most per page, and the bytes a page aims at
FIRST_PAGE = 4
MAX_PAGE = 4096
PAGE_BYTES = 256 * 1024


def reason(exc: BaseException) -> str:
    """``exc`` for a log line or an error body: its message, or its type when it has none
    (a TimeoutError's message is empty)."""
    return str(exc) or type(exc).__name__


class RedisBroker:
    durable = True

    def __init__(self, url: str, *, namespace: str = "ssehub", timeout: float = 1.0,
                 feed_maxlen: int = FEED_MAXLEN) -> None:
        self.url = url
        parts = urlsplit(url)  # for messages: never the password
        port = f":{parts.port}" if parts.port else ""
        self._where = f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"
        self.timeout = timeout
        self.feed_maxlen = feed_maxlen
        self.prefix = "{" + namespace + "}:"
        self._keys = [self.prefix + "epoch", self.prefix + "seq", self.prefix + "log"]
        self._client, self._reader = self._connect(url)
        self._publish = self._client.register_script(PUBLISH)
        self._sync = self._client.register_script(SYNC)
        self._warm = self._client.register_script(WARM)
        self._head = self._client.register_script(HEAD)
        self._sink: Sink | None = None
        self._task: asyncio.Task[None] | None = None
        self.epoch = 0
        self.position = 0  # seq of the last feed entry applied
        self._hole = 0  # seq of a feed entry found after a hole (not position + 1), until re-synced
        self._down_since: float | None = None
        self._closed = False
        self._housekeeping: set[asyncio.Task[None]] = set()
        self._inflight = False  # a publish script call is running
        self._group: asyncio.Task[None] | None = None  # the group call in flight, if any
        self._queue: list[tuple[Sequence[Prepared], asyncio.Future[tuple[int, list[int]]]]] = []

    def _connect(self, url: str) -> tuple[Any, Any]:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        options: dict[str, Any] = {"socket_timeout": self.timeout, "socket_connect_timeout": self.timeout,
                                   "retry": Retry(NoBackoff(), 0), "health_check_interval": 0}
        reader = dict(options, socket_timeout=BLOCK_MS / 1000 + self.timeout)
        if scheme.endswith("+cluster") or parse_qs(parts.query).get("cluster") == ["1"]:
            plain = urlunsplit((scheme.removesuffix("+cluster"), parts.netloc, parts.path, "", ""))
            return RedisCluster.from_url(plain, **options), RedisCluster.from_url(plain, **reader)
        return Redis.from_url(url, **options), Redis.from_url(url, **reader)

    def topic_key(self, topic: str) -> str:
        return self.prefix + "t:" + topic

    def generations(self, *, lease: float, ttl: float) -> RedisGenerations:
        """The shared record of LLM generations in this namespace (``relay.coordination``)."""
        return RedisGenerations(self._client, self._reader, self.prefix, topic_key=self.topic_key,
                                lease=lease, timeout=self.timeout, ttl=ttl)

    # -- calls with a deadline --------------------------------------------------------
    async def _call(self, what: str, coro: Any, *, outage_on_timeout: bool = True) -> Any:
        sink = self._sink
        if self._closed:
            coro.close()
            raise BrokerUnavailable("the broker is closed")
        t0 = time.perf_counter()
        try:
            result = await asyncio.wait_for(coro, self.timeout)
        except FAILURES as exc:
            if outage_on_timeout or not isinstance(exc, TIMEOUTS):
                self._mark_down(exc)
            raise BrokerUnavailable(f"the broker is unavailable ({what}: {type(exc).__name__})") from None
        if sink is not None:
            stats = getattr(sink, "stats", None)
            if stats is not None:
                stats["broker_round_trips"] += 1
                stats["broker_rtt_seconds_sum"] += time.perf_counter() - t0
        if self._down_since is not None and what != "feed":
            self._mark_up()
        return result

    def _mark_down(self, exc: BaseException) -> None:
        if self._down_since is None and not self._closed:
            self._down_since = time.monotonic()
            log.warning("redis broker unreachable at %s (%s: %s); publishes answer 503 until it is back",
                        self._where, type(exc).__name__, reason(exc))
            self._drop_idle_connections()
            if self._sink is not None:
                self._sink.broker_down()

    def _mark_up(self) -> None:
        if self._down_since is not None:
            down = time.monotonic() - self._down_since
            self._down_since = None
            log.warning("redis broker back after %.1f s", down)
            self._drop_idle_connections()
            if self._sink is not None:
                self._sink.broker_up(down)

    def _drop_idle_connections(self) -> None:
        """Forget the pooled connections opened before an outage: a Redis that restarted does
        not know them, and each would fail the first command sent on it (a publish answered
        503 although Redis is back). New ones are opened on demand."""
        pool = getattr(self._client, "connection_pool", None)  # (RedisCluster: per node, not here)
        if pool is None:
            return
        task = asyncio.get_running_loop().create_task(pool.disconnect(inuse_connections=False))
        self._housekeeping.add(task)
        task.add_done_callback(self._housekeeping.discard)

    # -- the protocol -----------------------------------------------------------------
    async def open(self, sink: Sink) -> Position:
        self._sink = sink
        try:
            epoch, _, seq, _ = await self._check(0, 0)
        except BrokerUnavailable:
            raise BrokerUnavailable(f"cannot reach redis at {self._where}") from None
        self.epoch, self.position = epoch, seq
        self._task = asyncio.get_running_loop().create_task(self._read_feed())
        return Position(epoch, seq)

    async def _check(self, known_epoch: int, known_seq: int) -> tuple[int, int, int, int]:
        raw = await self._call("sync", self._sync(keys=self._keys, args=[known_epoch, known_seq]))
        epoch, start, seq, first = (int(v) for v in raw)
        return epoch, start, seq, first

    async def append(self, batch: Sequence[Prepared]) -> tuple[int, list[int]]:
        """Store ``batch`` in one script call. Group commit: while a call is in flight, the
        batches of concurrent publishers wait and then go together in the next call."""
        if not self._inflight:
            self._inflight = True
            try:
                return await self._store(batch)
            finally:
                self._next_group()
        waiter: asyncio.Future[tuple[int, list[int]]] = asyncio.get_running_loop().create_future()
        self._queue.append((batch, waiter))
        return await waiter

    def _next_group(self) -> None:
        """The call in flight ended: send everything queued meanwhile as one call."""
        queue, self._queue = self._queue, []
        if not queue:
            self._inflight = False
            return
        self._group = asyncio.get_running_loop().create_task(self._store_group(queue))
        self._group.add_done_callback(lambda _: self._next_group())

    async def _store_group(self, queue: list[tuple[Sequence[Prepared], asyncio.Future[Any]]]) -> None:
        try:
            epoch, seqs = await self._store([p for batch, _ in queue for p in batch])
        except BaseException as exc:
            error = exc if isinstance(exc, Exception) else BrokerUnavailable("the broker is closing")
            for _, waiter in queue:
                if not waiter.done():
                    waiter.set_exception(error)
            if error is not exc:
                raise
            return
        at = 0
        for batch, waiter in queue:
            if not waiter.done():
                waiter.set_result((epoch, seqs[at:at + len(batch)]))
            at += len(batch)

    async def _store(self, batch: Sequence[Prepared]) -> tuple[int, list[int]]:
        keys = self._keys[:]
        index: dict[str, int] = {}
        maxlens: list[object] = []
        events: list[object] = []
        sink = self._sink
        assert sink is not None, "open the broker first"
        for topics, _, body in batch:
            refs = []
            for topic in topics:
                k = index.get(topic)
                if k is None:
                    k = index[topic] = len(index) + 1
                    keys.append(self.topic_key(topic))
                    maxlens.append(sink.retention(topic))
                refs.append(k)
            events += ["\n".join(topics), body, len(refs), *refs]
        args = [self.epoch, self.position, self.feed_maxlen, len(index), *maxlens, *events]
        raw = await self._call("publish", self._publish(keys=keys, args=args))
        return int(raw[0]), [int(s) for s in raw[1:]]

    async def history(self, topic: str, upto_seq: int, limit_events: int,
                      limit_bytes: int | None = None) -> History:
        """The newest events of ``topic`` up to ``upto_seq``: at most ``limit_events`` and, but
        for the newest one, at most ``limit_bytes`` of bodies. Loaded in pages (``WARM``, a few
        entries per call, sized from the entries seen so far to about ``PAGE_BYTES``), so no
        call makes Redis's one thread scan a big topic. The evicted boundary stays exact: a
        load stops on the first entry that does not fit, and that entry's seq is the boundary.

        A timeout here is not an outage (a big page on a busy Redis is slow, not down): the
        call raises BrokerUnavailable (the subscriber gets 503, try again) without marking
        the broker down; the feed reader and the publishes detect real outages."""
        budget = limit_bytes if limit_bytes is not None else 1 << 62
        key, epoch_key = self.topic_key(topic), self._keys[0]
        top = b"%d-0" % upto_seq
        count = min(limit_events + 1, FIRST_PAGE)
        entries: list[tuple[int, bytes]] = []  # newest first
        size = 0
        while True:
            raw = await self._call("history", self._warm(keys=[key, epoch_key], args=[top, count]),
                                   outage_on_timeout=False)
            epoch, start = int(raw[0]), int(raw[1])
            page = raw[4]
            for entry_id, fields in page:
                seq = int(entry_id.split(b"-", 1)[0])
                body = fields[1]
                if seq <= start:  # from an older epoch: not part of this history
                    return self._oldest_first(epoch, entries, start)
                if len(entries) >= limit_events or (entries and size + len(body) > budget):
                    return self._oldest_first(epoch, entries, max(start, seq))  # does not fit
                entries.append((seq, body))
                size += len(body)
            if len(page) < count:  # the stream's oldest end: what was removed below it?
                trimmed, deleted = int(raw[2]), int(raw[3])
                if entries:  # trimmed meanwhile above what was loaded: nothing is missing below
                    trimmed = min(trimmed, entries[-1][0] - 1)
                return self._oldest_first(epoch, entries, max(start, trimmed, deleted))
            top = b"(" + page[-1][0]
            average = max(1, size // len(entries))
            count = max(1, min(MAX_PAGE, PAGE_BYTES // average, (budget - size) // average + 1,
                               limit_events - len(entries) + 1))

    @staticmethod
    def _oldest_first(epoch: int, entries: list[tuple[int, bytes]], evicted: int) -> History:
        entries.reverse()
        return epoch, entries, evicted

    async def head(self) -> Position:
        raw = await self._call("head", self._head(keys=self._keys[:2]))
        return Position(int(raw[0]), int(raw[1]))

    async def healthy(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self._client.ping(), self.timeout))
        except FAILURES:
            return False

    async def close(self) -> None:
        """Stop the feed reader and the group call in flight (its publishers get
        BrokerUnavailable), then close the connections."""
        self._closed = True
        for task in (self._task, self._group):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._task = None
        for client in (self._client, self._reader):
            try:
                await client.aclose()
            except Exception:  # already broken: nothing to release
                log.debug("closing a redis client failed", exc_info=True)

    # -- the feed ---------------------------------------------------------------------
    async def _read_feed(self, synced: bool = True) -> None:
        """The feed reader's loop (``synced``: the epoch was just checked, as by open())."""
        delay = BACKOFF[0]
        while not self._closed:
            try:
                if not synced:
                    await self._resync()
                    synced = True
                    delay = BACKOFF[0]
                stream = {self._keys[2]: b"%d-0" % self.position}
                reply = await asyncio.wait_for(self._reader.xread(stream, count=1000, block=BLOCK_MS),
                                               BLOCK_MS / 1000 + self.timeout)
                if not reply:
                    synced = False  # idle: re-check the epoch (a flushed or restarted Redis)
                    continue
                synced = self._deliver(reply[0][1])
            except asyncio.CancelledError:
                raise
            except FAILURES as exc:
                self._mark_down(exc)
                synced = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF[1])
            except Exception:  # a bug, or a reply we do not understand: never a dead reader
                log.exception("redis feed reader failed; retrying")
                synced = False
                await asyncio.sleep(BACKOFF[1])

    async def _resync(self) -> None:
        sink = self._sink
        assert sink is not None
        epoch, start, seq, first = await self._check(self.epoch, self.position)
        if self._down_since is not None:
            self._mark_up()
        if epoch != self.epoch:
            log.warning("redis lost the history of epoch %d: continuing in epoch %d (subscribers get a gap)",
                        self.epoch, epoch)
            self.epoch, self.position = epoch, start
            sink.reset_epoch(epoch, start)
        elif first > self.position + 1 or (first == 0 and seq > self.position):
            log.warning("the redis feed was trimmed past this process's position %d: caches reset",
                        self.position)
            self.position = first - 1 if first else seq  # continue from the oldest entry kept
            sink.reset_epoch(epoch, self.position)
        elif first and self._hole > self.position + 1:
            # The feed still holds position + 1 (or older): nothing after the position was
            # trimmed, and no entry can be added below one it holds, so the missing seqs were
            # never written to the feed (a publish script that failed midway; its publisher got
            # an error). Nothing acknowledged is lost: skip them.
            log.warning("the redis feed has no entries %d..%d (a publish script failed midway); "
                        "continuing", self.position + 1, self._hole - 1)
            self.position = self._hole - 1
        self._hole = 0

    def _deliver(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> bool:
        """Apply feed entries in order. False when the reader must re-sync first:

        - an entry belongs to a newer epoch: the re-sync restarts the reader from that
          epoch's first entry (entries of it may sit below the position it was reading from);
        - an entry is not ``position + 1`` (a hole): either the feed was trimmed past this
          process's position while it was reading (it reads slower than publishers write;
          XREAD then silently starts at the oldest entry kept), and the re-sync resets the
          caches (subscribers get a ``reset`` gap), or the missing seqs were never written
          to the feed (a script failed midway), and the re-sync skips them.
        """
        sink = self._sink
        assert sink is not None
        apply = sink.apply
        for entry_id, fields in entries:
            seq = int(entry_id.split(b"-", 1)[0])
            epoch = int(fields[b"e"])
            if epoch != self.epoch:
                if epoch > self.epoch:
                    return False
                self.position = seq  # written under an epoch already left behind: not ours
                continue
            if seq != self.position + 1:
                self._hole = seq
                return False
            self.position = seq
            apply(seq, fields[b"t"].decode().split("\n"), fields[b"b"])
        return True
