"""GET /subscribe served by the fast front: a stream driven by callbacks, without a task.

An open stream is this object, its ``Subscription`` and at most one future (the
subscription's ``ready()``) whose done-callback pumps again: no task, no coroutine frame,
no ASGI ``send``. Each chunk of frames is one ``transport.write`` of one HTTP chunk.

The same behaviour as ``asgi/streaming.stream_subscription``, in callbacks:
- **back-pressure**: while the transport's buffer is over its high-water mark
  (``pause_writing``) nothing is polled; the subscription falls behind the retained history
  and gets its ``gap`` (policy ``gap``), or is cut off (policy ``disconnect``: the connection
  is aborted as soon as it fell behind, checked at each wake-up of its topics);
- **hub closing**: what was accepted is sent, then a jittered ``retry:`` hint ends the
  response; a stream whose client does not read is aborted after ``SHUTDOWN_GRACE``;
- **token expiry**: a ``retry:`` hint ends the response at the token's ``exp``;
- **peer gone**: uvicorn's ``connection_lost`` releases everything at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from typing import TYPE_CHECKING, Any

from starlette.types import Scope

from ..asgi.hub_routes import Opened
from ..asgi.streaming import HEARTBEAT, SHUTDOWN_GRACE, SSE_HEADERS, START_HEADER
from ..core import SubscriptionClosed
from ..core.topic import Waker
from ..errors import BrokerUnavailable
from ..wire import encode_retry
from .cycle import DirectCycle, head

if TYPE_CHECKING:
    from .protocol import FrontProtocol

__all__ = ["DirectStream"]

log = logging.getLogger("ssehub")

CHUNKED = (b"transfer-encoding", b"chunked")
RELEASED: Any = {}
LAST_CHUNK = b"0\r\n\r\n"


class _Last:
    """The last chunk made: the subscribers of a topic woken by one publish all send the
    same frame object (the topic log's), so it is chunk-encoded once for all of them."""

    body: bytes | None = None
    chunk = b""


class _Head:
    """The head of a stream's response around its ``SSEHub-Start-Id`` line, for the current
    ``default_headers`` list (uvicorn makes a new one, with a new ``date``, each second),
    and the opening retry hint for the current setting."""

    source: object = None
    before = b""
    after: tuple[bytes, bytes] = (b"", b"")  # [keep_alive]
    retry: tuple[int, bytes] = (-1, b"")

    @classmethod
    def parts(cls, default_headers: list[tuple[bytes, bytes]], keep_alive: bool) -> tuple[bytes, bytes]:
        if default_headers is not cls.source:
            cls.before = b"".join(head(200, SSE_HEADERS, default_headers, keep_alive=True)[:-1])
            cls.after = tuple(  # type: ignore[assignment]
                b"".join(head(200, [CHUNKED], [], keep_alive=keep)[1:]) for keep in (False, True))
            cls.source = default_headers
        return cls.before, cls.after[keep_alive]

    @classmethod
    def opening(cls, retry: int) -> bytes:
        if cls.retry[0] != retry:
            cls.retry = (retry, encode_retry(retry, block=False))
        return cls.retry[1]


def chunk(body: bytes) -> bytes:
    """``body`` as one HTTP/1.1 chunk."""
    if body is _Last.body:
        return _Last.chunk
    out = b"".join((b"%x\r\n" % len(body), body, b"\r\n"))
    _Last.body, _Last.chunk = body, out
    return out


class DirectStream(DirectCycle):
    __slots__ = ("_addr", "_ended", "_expires", "_expiry", "_grace", "_waker", "_watcher", "sub")

    def __init__(self, protocol: FrontProtocol, scope: Scope, keep_alive: bool,
                 opened: Opened) -> None:
        super().__init__(protocol, scope, keep_alive)
        self.sub = opened.sub
        self._addr = opened.addr
        self._expires = opened.expires
        self._ended = False
        self._grace: asyncio.TimerHandle | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self._waker = Waker(protocol.loop, self._pump)  # armed while waiting for news
        self._watcher = Waker(protocol.loop, self._check)  # armed while the client is not reading
        protocol.hub_state.stats.subscriptions += self.sub.topic_count

    def begin(self) -> None:
        if self.sub.started:
            self._open()
        else:  # a resume on a shared broker: its topics' history loads first
            task = self.protocol.loop.create_task(self._start())
            self.protocol.tasks.add(task)
            task.add_done_callback(self.protocol.tasks.discard)

    @property
    def _paused(self) -> bool:
        """The transport's buffer is over its high-water mark (uvicorn's flow control is the
        one record of it: a pause may have begun before this stream did)."""
        return bool(self.protocol.flow.write_paused)

    async def _start(self) -> None:
        try:
            await self.sub.start()
        except BrokerUnavailable as exc:
            self._release()
            body = json.dumps({"error": exc.message}).encode()
            self.respond(exc.status, [(b"content-type", b"application/json")], body)
            return
        except Exception as exc:  # the hub closing meanwhile, or a bug: never left hanging
            self.fail(exc)
            return
        if not self._ended:
            self._open()

    def _open(self) -> None:
        protocol = self.protocol
        # the opening: retry hint and, without a resume id, the start position (streaming.py)
        opening = _Head.opening(protocol.hub_state.settings.retry)
        before, after = _Head.parts(protocol.server_state.default_headers, self.keep_alive)
        start_id = self.sub.start_id
        if start_id is None:
            parts = [before, after, chunk(opening)]
        else:  # (an id the hub made: nothing to check or escape)
            start = start_id.encode("ascii")
            opening += b"id: %s\n" % start
            parts = [before, START_HEADER, b": ", start, b"\r\n", after, chunk(opening)]
        stats = protocol.hub_state.stats
        stats.writes += 1
        stats.bytes += len(opening)
        protocol.transport.write(b"".join(parts))
        self.started(200)
        # an open stream keeps only what it needs: not its request's scope and headers
        self.scope = protocol.scope = RELEASED
        protocol.headers = []
        if self._expires is not None:  # armed once the head is out, as on the ASGI path
            loop = protocol.loop  # (exp is Unix time; the loop's clock is not)
            self._expiry = loop.call_at(loop.time() + max(0.0, self._expires - time.time()), self._expired)
        self._pump(None)

    def _pump(self, _: object) -> None:
        """Write everything new, then wait for the next wake-up (or for the buffer to drain)."""
        if self._ended:
            return
        if self._paused:
            self._watch()
            return
        sub = self.sub
        write = self.protocol.transport.write
        stats = self.protocol.hub_state.stats
        while True:
            try:
                frames = sub.poll()
            except SubscriptionClosed:  # hub closing, or cut off (policy disconnect)
                base = self.protocol.hub_state.settings.shutdown_retry
                self._finish(encode_retry(base + random.randint(0, base), block=False))
                return
            if frames is None:
                if not self._waker.armed:  # (a resume_writing while waiting: already listed)
                    sub.when_ready(self._waker)
                return
            body = frames or HEARTBEAT
            stats.writes += 1
            stats.bytes += len(body)
            write(chunk(body))
            if self._paused:  # that write filled the buffer: wait for resume_writing
                self._watch()
                return

    # back-pressure
    def resume_writing(self) -> None:
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None
        self._pump(None)

    def _watch(self) -> None:
        if not self._watcher.armed and not self._ended:
            self.sub.when_ready(self._watcher)

    def _check(self, _: object) -> None:
        """A wake-up while the client is not reading: cut it off once it fell behind (policy
        ``disconnect``); give it ``SHUTDOWN_GRACE`` once the hub is closing."""
        if self._ended or not self._paused:
            return
        sub = self.sub
        if sub.hub.closed:
            if self._grace is None:
                self._grace = self.protocol.loop.call_later(SHUTDOWN_GRACE, self._abort)
            return
        if sub.hub.limits.slow_consumer == "disconnect" and sub.fell_behind():
            sub.hub.stats["slow_consumer_cuts"] = sub.hub.stats.get("slow_consumer_cuts", 0) + 1
            log.info("cut off a stream whose client stopped reading (%s)", ",".join(sub.topics))
            self._abort()
            return
        self._watch()

    # endings
    def _expired(self) -> None:
        self._expiry = None
        if not (self._ended or self.sub.closed or self.sub.hub.closed):
            if self._paused:
                self._abort()
            else:
                self._finish(encode_retry(self.protocol.hub_state.settings.retry, block=False))

    def _finish(self, hint: bytes) -> None:
        """End the response with ``hint``."""
        self._release()
        stats = self.protocol.hub_state.stats
        stats.writes += 1
        stats.bytes += len(hint)
        transport = self.protocol.transport
        transport.write(chunk(hint) + LAST_CHUNK)
        if self._paused:
            # the client is not reading: the connection closes once the end is flushed, and is
            # aborted if it still is not after SHUTDOWN_GRACE (it serves nothing else by then)
            self.keep_alive = False
            self.protocol.loop.call_later(SHUTDOWN_GRACE, _abort_unflushed, transport)
        self.complete()

    def _abort(self) -> None:
        self._grace = None
        self._release()
        self.protocol.transport.abort()

    def fail(self, exc: BaseException) -> None:
        self._release()
        super().fail(exc)

    def connection_lost(self) -> None:
        self.disconnected = True
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None
        self._release()

    def _release(self) -> None:
        if self._ended:
            return
        self._ended = True
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        state = self.protocol.hub_state
        state.stats.subscriptions -= self.sub.topic_count
        self.sub.close()
        state.closed(self._addr)


def _abort_unflushed(transport: asyncio.Transport) -> None:
    """The grace of a closing stream's connection is over: drop what its client never read."""
    if transport.get_write_buffer_size():
        transport.abort()
