"""The SSE response driver: one writer loop per connection and a disconnect watch.

Under uvicorn a write to a vanished client is silently dropped, so a quiet stream would
never notice its peer is gone; only ``receive()`` returning ``http.disconnect`` tells. The
watch drives ``receive()`` from future callbacks instead of a task of its own — an idle
subscriber then costs one task, not two — and cancels the writer when the client leaves.
The writer owns every ``send``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any

from starlette.types import Message, Receive, Send

from ..config import Settings
from ..core import Subscription, SubscriptionClosed
from ..errors import BrokerUnavailable
from ..wire import encode_comment, encode_id, encode_retry
from .state import EdgeStats

__all__ = ["SSE_HEADERS", "START_HEADER", "DisconnectWatch", "Transform", "stream_subscription",
           "watch_disconnect"]

log = logging.getLogger("ssehub")

SSE_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
#: the position a stream opened without a resume id starts after (also its opening ``id:`` line)
START_HEADER = b"ssehub-start-id"
# A blank line on a hub stream always ends an event with data: the heartbeat, the opening
# and the closing retry hints are lines without one (see ``wire._encode``), so that no
# client — httpx-sse, the OpenAI SDK, fetch-event-source — reads them as empty events.
HEARTBEAT = encode_comment(block=False)

#: rewrites a chunk of encoded frames; returns (bytes to send, whether the response ends there)
Transform = Callable[[bytes], tuple[bytes, bool]]


class DisconnectWatch:
    """Calls ``receive()`` until it returns ``http.disconnect``, then cancels ``writer``.

    It steps the receive coroutine itself, as a Task would: each future it yields gets a
    done-callback that steps it again. No Task, no extra coroutine frame.
    """

    __slots__ = ("_closed", "_coro", "_receive", "_writer", "gone")

    def __init__(self, receive: Receive, writer: asyncio.Task[Any]) -> None:
        self._receive = receive
        self._writer = writer
        self._coro: Coroutine[Any, Any, Message] | None = None
        self.gone = False
        self._closed = False
        self._step(None)

    def _step(self, _: object) -> None:
        while not self._closed:
            coro = self._coro
            if coro is None:
                coro = self._coro = self._receive()  # type: ignore[assignment]
                assert coro is not None
            try:
                yielded = coro.send(None)
            except StopIteration as stop:
                self._coro = None
                if stop.value.get("type") == "http.disconnect":
                    self.gone = True
                    self._writer.cancel()
                    return
                continue  # a request-body message: read on
            except Exception:  # the server tore the connection down: stop watching
                log.debug("disconnect watch stopped", exc_info=True)
                self._coro = None
                return
            if yielded is None:  # a bare yield (sleep(0)): step again soon
                asyncio.get_running_loop().call_soon(self._step, None)
            elif hasattr(yielded, "add_done_callback"):
                yielded._asyncio_future_blocking = False
                yielded.add_done_callback(self._step)
            else:  # pragma: no cover - not an asyncio server
                log.warning("cannot watch for disconnects: receive() yielded %r", yielded)
                self.close()
            return

    def close(self) -> None:
        self._closed = True
        coro, self._coro = self._coro, None
        if coro is not None:
            coro.close()


class _ListenerTask:
    """The general form of the watch: a task of its own that awaits ``receive()``.

    Used when ``receive`` is not the server's own (a middleware such as Starlette's
    BaseHTTPMiddleware wraps it in a task group that must run inside a task)."""

    __slots__ = ("_task", "gone")

    def __init__(self, receive: Receive, writer: asyncio.Task[Any]) -> None:
        self.gone = False
        self._task = asyncio.get_running_loop().create_task(self._listen(receive, writer))

    async def _listen(self, receive: Receive, writer: asyncio.Task[Any]) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.gone = True
        writer.cancel()

    def close(self) -> None:
        self._task.cancel()


def watch_disconnect(receive: Receive, writer: asyncio.Task[Any]) -> DisconnectWatch | _ListenerTask:
    """A task-free watch for uvicorn's own ``receive``; a listener task for anything else."""
    owner = getattr(receive, "__self__", None)
    if type(owner).__module__.startswith("uvicorn.protocols."):
        return DisconnectWatch(receive, writer)
    return _ListenerTask(receive, writer)


SHUTDOWN_GRACE = 0.5  # seconds a stream may take to flush once the hub is closing


class _StallGuard:
    """Cuts a stream whose client stopped reading, while its writer is blocked in ``send``.

    uvicorn's ``send`` waits for the client to drain the socket; a client that never reads
    keeps the writer there forever, so the checks in ``poll()`` would never run. While a
    send is pending the guard follows the topic wake-ups and cancels the writer once the
    subscriber has fallen behind the retained history (policy ``disconnect``) or once the
    hub is closing and the grace period has passed.
    """

    __slots__ = ("cut", "deadline", "disconnect_policy", "pending", "sub", "task")

    def __init__(self, sub: Subscription, task: asyncio.Task[Any], disconnect_policy: bool) -> None:
        self.sub = sub
        self.task = task
        self.disconnect_policy = disconnect_policy
        self.pending = False
        self.cut = False
        self.deadline: asyncio.TimerHandle | None = None

    async def send(self, send: Send, message: Message, closing: bool) -> None:
        self.pending = True
        if closing and self.deadline is None:
            self.deadline = asyncio.get_running_loop().call_later(SHUTDOWN_GRACE, self._cut)
        if self.disconnect_policy and not closing:
            self.sub.ready().add_done_callback(self._check)
        try:
            await send(message)
        finally:
            self.pending = False

    def _check(self, _: object) -> None:
        if not self.pending:
            return
        if self.sub.fell_behind():
            self._cut()
        elif not self.sub.closed:
            self.sub.ready().add_done_callback(self._check)

    def _cut(self) -> None:
        if self.pending and not self.cut:
            self.cut = True
            self.task.cancel()

    def close(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()


class _Expiry:
    """Ends a stream when its token expires: one timer per authenticated stream. It cancels
    the writer (wherever it waits); the stream then sends a ``retry:`` hint and ends, and the
    client reconnects with a fresh token."""

    __slots__ = ("fired", "handle", "sub", "task")

    def __init__(self, sub: Subscription, task: asyncio.Task[Any], expires: float) -> None:
        self.sub = sub
        self.task = task
        self.fired = False
        loop = asyncio.get_running_loop()
        self.handle = loop.call_at(loop.time() + max(0.0, expires - time.time()), self._fire)

    def _fire(self) -> None:
        if not (self.sub.closed or self.sub.hub.closed):  # else the stream is ending already
            self.fired = True
            self.task.cancel()

    def close(self) -> None:
        self.handle.cancel()


async def stream_subscription(
    sub: Subscription,
    receive: Receive,
    send: Send,
    settings: Settings,
    *,
    release: Callable[[], None] | None = None,
    stats: EdgeStats | None = None,
    expires: float | None = None,
    transform: Transform | None = None,
) -> None:
    """Stream ``sub`` until the client leaves, the hub closes, the consumer is cut off or
    the token expires (``expires``: Unix time, from the token's ``exp`` plus leeway).

    ``transform`` (``GET /chat/stream``) rewrites each chunk of frames before it is sent (never
    a heartbeat) and says whether the response ends with it: ``(body, last)``.

    A stream cut off because its client stopped reading returns without completing the
    response: the server then closes the connection.
    """
    task = asyncio.current_task()
    assert task is not None
    watch = watch_disconnect(receive, task)
    guard = _StallGuard(sub, task, settings.slow_consumer == "disconnect")
    hub = sub.hub
    stats = stats or EdgeStats()
    stats.subscriptions += sub.topic_count
    expiry: _Expiry | None = None
    try:
        try:
            await sub.start()  # a resume on a shared broker loads its topics' history first
        except BrokerUnavailable as exc:
            body = json.dumps({"error": exc.message}).encode()
            await send({"type": "http.response.start", "status": exc.status,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        headers = SSE_HEADERS
        # The opening: the retry hint and, without a resume id, the position the stream starts
        # after, as field lines of a block that the first event completes (its own id then
        # replaces this one). Clients that keep an id as soon as its line arrives
        # (fetch-event-source) resume from there; ssehub's own clients read the header.
        opening = encode_retry(settings.retry, block=False)
        if sub.start_id is not None:
            opening += encode_id(sub.start_id, block=False)
            headers = [*SSE_HEADERS, (START_HEADER, sub.start_id.encode("ascii"))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        stats.writes += 1
        stats.bytes += len(opening)
        await send({"type": "http.response.body", "body": opening, "more_body": True})
        if expires is not None:
            expiry = _Expiry(sub, task, expires)
        while True:
            try:
                chunk = sub.poll()
            except SubscriptionClosed:
                break
            if chunk is None:
                await sub.ready()
                continue
            last = False
            if transform is not None and chunk:
                chunk, last = transform(chunk)
            body = chunk or HEARTBEAT
            stats.writes += 1
            stats.bytes += len(body)
            message = {"type": "http.response.body", "body": body, "more_body": not last}
            if guard.disconnect_policy or hub.closed:
                await guard.send(send, message, hub.closed)
            else:
                await send(message)
            if last:
                return
        # Hub shutting down (or slow consumer cut off): tell the client when to come back,
        # with jitter so thousands of clients do not reconnect in the same millisecond.
        base = settings.shutdown_retry
        hint = encode_retry(base + random.randint(0, base), block=False)
        await guard.send(send, {"type": "http.response.body", "body": hint, "more_body": False}, True)
    except asyncio.CancelledError:
        expired = expiry is not None and expiry.fired
        if not (watch.gone or guard.cut or expired):
            raise
        task.uncancel()
        if expired and not (watch.gone or guard.cut):
            # the token expired: come back (with a fresh token) after the usual hint
            end = {"type": "http.response.body", "body": encode_retry(settings.retry, block=False),
                   "more_body": False}
            with contextlib.suppress(TimeoutError, OSError):
                await asyncio.wait_for(send(end), SHUTDOWN_GRACE)
        if guard.cut:
            hub.stats["slow_consumer_cuts"] = hub.stats.get("slow_consumer_cuts", 0) + 1
            log.info("cut off a stream whose client stopped reading (%s)", ",".join(sub.topics))
    except OSError:
        pass  # the peer went away mid-write
    finally:
        stats.subscriptions -= sub.topic_count
        if expiry is not None:
            expiry.close()
        guard.close()
        watch.close()
        sub.close()
        if release is not None:
            release()
