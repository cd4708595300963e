"""Async client for an ssehub server (httpx + ssehub's own wire parser).

``subscribe`` reconnects by itself: after a dropped connection it waits the server's
``retry`` hint (jittered, growing exponentially while reconnects keep failing) and resumes
with ``Last-Event-ID``, so the hub's delivery guarantee holds end to end: every event once,
in order, or an ``event: gap`` telling what could not be delivered.
"""

from __future__ import annotations

import asyncio
import inspect
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import httpx

from .errors import SSEHubError, Unavailable
from .wire import Event, Parser, is_event_stream

__all__ = ["ClientError", "publish", "subscribe"]

DEFAULT_RETRY_MS = 1000
MAX_BACKOFF_S = 30.0


class ClientError(SSEHubError):
    """The server refused the request (4xx): retrying the same request will not help."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


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
    ``token`` is sent as ``Authorization: Bearer`` (a hub with auth on needs one)."""
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
        raise Unavailable(f"cannot reach {url}: {exc or type(exc).__name__}") from None
    finally:
        if own:
            await http.aclose()
    if response.status_code >= 500:
        raise Unavailable(_error_message(response))
    if response.status_code != 200:
        raise ClientError(_error_message(response), response.status_code)
    return str(response.json()["id"])


def _backoff(retry_ms: int, failures: int) -> float:
    """Seconds to wait: the server's hint, doubled per consecutive failure, jittered over
    its upper half (so a crowd of clients spreads out but nobody retries at once)."""
    base = min(retry_ms / 1000.0 * float(2 ** min(failures, 10)), MAX_BACKOFF_S)
    return base / 2 + random.uniform(0, base / 2)


async def subscribe(
    url: str,
    topics: str | Sequence[str],
    *,
    last_event_id: str | None = None,
    client: httpx.AsyncClient | None = None,
    headers: dict[str, str] | None = None,
    max_reconnects: int | None = None,
    token: TokenSource | None = None,
) -> AsyncIterator[Event]:
    """Yield events of ``topics`` forever, reconnecting and resuming as needed.

    Gap events (``event == "gap"``) are yielded like any other. A 4xx answer raises
    ClientError; anything else (connection refused, 5xx, stream ended) is retried, at most
    ``max_reconnects`` times in a row when that is set.

    ``token`` is sent as ``Authorization: Bearer``. The hub ends a stream when its token
    expires; pass a function that returns a fresh token to keep a subscription going
    past that (it is called before every connection).
    """
    names = [topics] if isinstance(topics, str) else list(topics)
    params: list[tuple[str, str | int | float | bool | None]] = [("topic", t) for t in names]
    own = client is None
    http = client or httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=None))
    retry_ms = DEFAULT_RETRY_MS
    failures = 0
    try:
        while True:
            hdrs = {"Accept": "text/event-stream", **(headers or {}), **await _auth_headers(token)}
            if last_event_id:
                hdrs["Last-Event-ID"] = last_event_id
            try:
                async with http.stream("GET", url.rstrip("/") + "/subscribe", params=params,
                                       headers=hdrs) as response:
                    if 400 <= response.status_code < 500 and response.status_code != 429:
                        await response.aread()
                        raise ClientError(_error_message(response), response.status_code)
                    if response.status_code == 200 and not is_event_stream(
                            response.headers.get("content-type")):
                        # EventSource fails the connection for any other type: so do we
                        raise ClientError("the server did not answer with text/event-stream "
                                          f"({response.headers.get('content-type')!r})", 200)
                    if response.status_code == 200:
                        parser = Parser()
                        async for chunk in response.aiter_raw():
                            for event in parser.feed(chunk):
                                failures = 0
                                yield event
                            # the parser's last event id also follows id-only blocks, such
                            # as the position the server sends when a stream opens
                            if parser.last_event_id:
                                last_event_id = parser.last_event_id
                            if parser.retry is not None:
                                retry_ms = parser.retry
            except (httpx.TransportError, httpx.StreamError):
                pass
            failures += 1
            if max_reconnects is not None and failures > max_reconnects:
                raise Unavailable(f"gave up after {max_reconnects} reconnects")
            await asyncio.sleep(_backoff(retry_ms, failures - 1))
    finally:
        if own:
            await http.aclose()


