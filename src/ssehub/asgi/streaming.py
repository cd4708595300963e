"""The SSE response driver: one writer loop per connection plus one disconnect listener.

Under uvicorn a write to a vanished client is silently dropped, so a quiet stream would
never notice its peer is gone; only ``receive()`` returning ``http.disconnect`` tells. The
listener cancels the writer when that happens; the writer owns every ``send``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from starlette.types import Message, Receive, Send

from ..config import Settings
from ..core import Subscription, SubscriptionClosed
from ..wire import encode_comment, encode_retry

__all__ = ["SSE_HEADERS", "stream_subscription"]

SSE_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
HEARTBEAT = encode_comment()


async def _listen(receive: Receive, writer: asyncio.Task[object], gone: list[bool]) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.append(True)
            writer.cancel()
            return


async def stream_subscription(
    sub: Subscription,
    receive: Receive,
    send: Send,
    settings: Settings,
    *,
    first: bytes = b"",
    on_close: Callable[[], Awaitable[None] | None] | None = None,
) -> None:
    """Stream ``sub`` until the client leaves, the hub closes or the consumer is cut off."""
    writer = asyncio.current_task()
    assert writer is not None
    gone: list[bool] = []
    listener = asyncio.get_running_loop().create_task(_listen(receive, writer, gone))
    try:
        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        body: Message = {"type": "http.response.body", "body": encode_retry(settings.retry) + first,
                         "more_body": True}
        await send(body)
        while True:
            try:
                chunk = await sub.next_chunk()
            except SubscriptionClosed:
                break
            await send({"type": "http.response.body", "body": chunk or HEARTBEAT, "more_body": True})
        # Hub shutting down (or slow consumer cut off): tell the client when to come back,
        # with jitter so thousands of clients do not reconnect in the same millisecond.
        base = settings.shutdown_retry
        hint = encode_retry(base + random.randint(0, base))
        await send({"type": "http.response.body", "body": hint, "more_body": False})
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if not gone or task is None:
            raise
        task.uncancel()
    except OSError:
        pass  # the peer went away mid-write
    finally:
        listener.cancel()
        sub.close()
        if on_close is not None:
            result = on_close()
            if result is not None:
                await result
