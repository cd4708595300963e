"""Async client for an ssehub server (httpx + ssehub's own wire parser).

``subscribe`` reconnects by itself: after a dropped connection it waits the server's
``retry`` hint (jittered, growing exponentially while reconnects keep failing) and resumes
with ``Last-Event-ID``, so the hub's delivery guarantee holds end to end: every event once,
in order, or an ``event: gap`` telling what could not be delivered.

Errors are the ``ClientError`` branch of ``ssehub.errors``: ``ConnectError`` (unreachable,
or reconnecting gave up), ``HTTPStatusError`` (the server refused: ``.status``) and
``RemoteProtocolError`` (the answer is not a valid event stream).
"""

from __future__ import annotations

import asyncio
import inspect
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from .errors import (
    ClientError,
    ConnectError,
    EventTooLarge,
    HTTPStatusError,
    LineTooLong,
    RemoteProtocolError,
)
from .wire import MAX_RETRY_MS, Event, Parser, is_event_stream

__all__ = [
    "ClientError",
    "ConnectError",
    "HTTPStatusError",
    "RemoteProtocolError",
    "Retrying",
    "publish",
    "subscribe",
]

DEFAULT_RETRY_MS = 1000
MAX_BACKOFF_S = 30.0


#: a token, or a function (sync or async) that returns a fresh one for each connection
TokenSource = str | Callable[[], str | Awaitable[str]]


async def _auth_headers(token: TokenSource | None) -> dict[str, str]:
    """``Authorization: Bearer …`` for ``token`` (called again before every reconnect)."""
    if token is None:
        return {}
    value = token() if callable(token) else token
    if inspect.isawaitable(value):
        value = await value
    return {"Authorization": f"Bearer {value}"} if value else {}


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            return str(body["error"])
    except ValueError:
        pass
    return f"HTTP {response.status_code}"


def _reason(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def publish(
    url: str,
    topic: str | Sequence[str],
    data: Any,
    *,
    event: str | None = None,
    retry: int | None = None,
    client: httpx.AsyncClient | None = None,
    headers: dict[str, str] | None = None,
    token: TokenSource | None = None,
) -> str:
    """Publish one event; return its id. ``data`` that is not a str is sent as JSON.
    ``token`` is sent as ``Authorization: Bearer`` (a hub with auth on needs one).

    Raises ``ConnectError`` when the hub cannot be reached, ``HTTPStatusError`` when it
    refuses (``.status``: 400 bad topic, 503 broker down, …).
    """
    body: dict[str, Any] = {"topic": topic if isinstance(topic, str) else list(topic), "data": data}
    if event is not None:
        body["event"] = event
    if retry is not None:
        body["retry"] = retry
    if token is not None:
        headers = {**(headers or {}), **await _auth_headers(token)}
    own = client is None
    http = client or httpx.AsyncClient(timeout=30.0)
    try:
        response = await http.post(url.rstrip("/") + "/publish", json=body, headers=headers)
    except httpx.TransportError as exc:
        raise ConnectError(f"cannot reach {url}: {_reason(exc)}") from None
    finally:
        if own:
            await http.aclose()
    if response.status_code != 200:
        raise HTTPStatusError(_error_message(response), response.status_code)
    return str(response.json()["id"])


def clamp_retry(retry_ms: int) -> int:
    """A server's ``retry`` hint within 0 … MAX_RETRY_MS (a huge one must not crash us)."""
    return max(0, min(retry_ms, MAX_RETRY_MS))


def _backoff(retry_ms: int, failures: int) -> float:
    """Seconds to wait: the server's hint, doubled per consecutive failure, capped at
    MAX_BACKOFF_S, jittered over its upper half (so a crowd of clients spreads out but
    nobody retries at once)."""
    base = min(clamp_retry(retry_ms) / 1000.0 * float(2 ** min(failures, 10)), MAX_BACKOFF_S)
    return base / 2 + random.uniform(0, base / 2)


@dataclass(frozen=True, slots=True)
class Retrying:
    """What ``subscribe`` tells ``on_retry`` before each wait."""

    reason: str  # why the last attempt ended ("stream ended", "HTTP 503", "ConnectError: …")
    delay: float  # seconds it waits before the next attempt
    failures: int  # failed connection attempts in a row (0: an open stream ended)
    connected: bool  # whether any attempt has reached the stream so far


async def subscribe(
    url: str,
    topics: str | Sequence[str],
    *,
    last_event_id: str | None = None,
    client: httpx.AsyncClient | None = None,
    headers: dict[str, str] | None = None,
    max_failures: int | None = None,
    keep_trying_once_connected: bool = False,
    on_retry: Callable[[Retrying], None] | None = None,
    token: TokenSource | None = None,
) -> AsyncIterator[Event]:
    """Yield events of ``topics`` forever, reconnecting and resuming as needed.

    Gap events (``event == "gap"``) are yielded like any other. A 4xx answer (other than
    429) raises ``HTTPStatusError``; an answer that is not an event stream raises
    ``RemoteProtocolError``. Anything else (connection refused, 5xx, 429, a stream that
    ended) is retried. ``max_failures``: raise ``ConnectError`` after that many failed
    connection attempts in a row (None: never give up); with ``keep_trying_once_connected``
    that limit only holds until a stream has been opened once. ``on_retry`` is called before
    each wait (the CLI prints it).

    ``token`` is sent as ``Authorization: Bearer``. The hub ends a stream when its token
    expires; pass a function that returns a fresh token to keep a subscription going
    past that (it is called before every connection).
    """
    names = [topics] if isinstance(topics, str) else list(topics)
    params: list[tuple[str, str | int | float | bool | None]] = [("topic", t) for t in names]
    own = client is None
    http = client or httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=None))
    retry_ms = DEFAULT_RETRY_MS
    failures = 0  # failed connection attempts in a row
    connected = False
    try:
        while True:
            hdrs = {"Accept": "text/event-stream", **(headers or {}), **await _auth_headers(token)}
            if last_event_id:
                hdrs["Last-Event-ID"] = last_event_id
            reason = "stream ended"
            opened = False
            try:
                async with http.stream("GET", url.rstrip("/") + "/subscribe", params=params,
                                       headers=hdrs) as response:
                    status = response.status_code
                    if 400 <= status < 500 and status != 429:
                        await response.aread()
                        raise HTTPStatusError(_error_message(response), status)
                    if status == 200 and not is_event_stream(response.headers.get("content-type")):
                        # EventSource fails the connection for any other type: so do we
                        raise RemoteProtocolError("the server did not answer with text/event-stream "
                                                  f"({response.headers.get('content-type')!r})")
                    if status == 200:
                        failures = 0
                        connected = opened = True
                        # where a stream opened without a resume id starts: resuming from
                        # there, a drop before the first event loses nothing
                        start = response.headers.get("ssehub-start-id")
                        if start and not last_event_id:
                            last_event_id = start
                        parser = Parser()
                        async for chunk in response.aiter_raw():
                            try:
                                events = parser.feed(chunk)
                            except (LineTooLong, EventTooLarge) as exc:
                                raise RemoteProtocolError(f"the server sent a {exc.message}") from None
                            for event in events:
                                yield event
                            if parser.last_event_id:
                                last_event_id = parser.last_event_id
                            if parser.retry is not None:
                                retry_ms = clamp_retry(parser.retry)
                    else:
                        failures += 1
                        reason = f"HTTP {status}"
            except (httpx.TransportError, httpx.StreamError) as exc:
                # a drop of an open stream is not a failed connection attempt
                reason = ("connection lost: " if opened else "") + _reason(exc)
                if not opened:
                    failures += 1
            if max_failures is not None and failures >= max_failures and not (
                    keep_trying_once_connected and connected):
                raise ConnectError(f"gave up after {failures} failed attempts in a row ({reason})")
            delay = _backoff(retry_ms, max(failures - 1, 0))  # the hint, then doubling
            if on_retry is not None:
                on_retry(Retrying(reason, delay, failures, connected))
            await asyncio.sleep(delay)
    finally:
        if own:
            await http.aclose()

