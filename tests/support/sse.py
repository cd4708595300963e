"""The one SSE client of the tests.

``SSEStream``: one GET over a raw asyncio connection (h11 parses the response head and the
chunked body; ``ssehub.wire.Parser`` the events), so tests see the exact wire format.
``EventReader``: the events of any SSE byte iterator (an httpx ``aiter_bytes()``), read in
steps. ``sync_events``: the same for a blocking byte iterator (the Playwright tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import urlencode

import h11

from ssehub.wire import Event, Parser

from .wait import TIMEOUT

__all__ = ["EventReader", "SSEStream", "gap_info", "read_events", "request_bytes", "stalled_subscriber",
           "subscribe_target", "sync_events", "terminal"]


def subscribe_target(topics: str | Sequence[str], path: str = "/subscribe", **params: str) -> str:
    names = [topics] if isinstance(topics, str) else list(topics)
    query: list[tuple[str, str]] = [("topic", t) for t in names] + list(params.items())
    return path + "?" + urlencode(query)


def _request(target: str, headers: dict[str, str] | None, host: str) -> h11.Request:
    fields = [("Host", host), ("Accept", "text/event-stream"), *(headers or {}).items()]
    return h11.Request(method="GET", target=target.encode("latin-1"),
                       headers=[(k.encode("latin-1"), v.encode("latin-1")) for k, v in fields])


def request_bytes(target: str, headers: dict[str, str] | None = None, host: str = "127.0.0.1") -> bytes:
    """The bytes of ``GET target`` as SSEStream sends it."""
    data = h11.Connection(h11.CLIENT).send(_request(target, headers, host))
    assert data is not None
    return data


async def stalled_subscriber(port: int, target: str) -> socket.socket:
    """A connection with a tiny receive buffer whose owner never calls recv()."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    await loop.sock_sendall(sock, request_bytes(target))
    return sock


def gap_info(event: Event) -> dict[str, Any]:
    assert event.event == "gap", event
    info: dict[str, Any] = json.loads(event.data)
    return info


def terminal(event: Event) -> bool:
    """A generation's last event."""
    return event.event in ("done", "error")


class SSEStream:
    """One GET over a raw asyncio connection: status, headers, then the parsed event stream.

    ``raw`` keeps the de-chunked body bytes (when ``keep_raw``) so tests can look at the exact
    wire format (comments, ``retry:`` lines, absent ``id:`` lines); ``events`` keeps what the
    WHATWG parser dispatched (when ``store``). A response that is not chunked (an error) is
    read whole into ``body``.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                 keep_raw: bool = True, store: bool = True) -> None:
        self.reader = reader
        self.writer = writer
        self.keep_raw = keep_raw
        self.store = store
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.body = b""  # the whole body of a non-streaming (error) response
        self.parser = Parser()
        self.raw = bytearray()
        self.events: list[Event] = []
        self._next = 0
        self.eof = False
        self.http = h11.Connection(h11.CLIENT)
        self._chunked = False
        self._ended = False  # h11 saw the end of the message (for chunked: the zero-size chunk)

    # opening
    @classmethod
    async def open(cls, port: int, target: str, headers: dict[str, str] | None = None, *,
                   keep_raw: bool = True, store: bool = True, timeout: float = TIMEOUT) -> SSEStream:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
        stream = cls(reader, writer, keep_raw=keep_raw, store=store)
        writer.write(stream.request(target, headers))
        try:
            await asyncio.wait_for(stream.read_head(), timeout)
        except BaseException:
            await stream.close()
            raise
        return stream

    def request(self, target: str, headers: dict[str, str] | None = None, host: str = "127.0.0.1") -> bytes:
        """The request bytes (h11 tracks that a request went out: it then expects the response)."""
        data = self.http.send(_request(target, headers, host))
        assert data is not None
        data += self.http.send(h11.EndOfMessage()) or b""
        return data

    async def read_head(self) -> None:
        """Read the status line and headers; a non-chunked body is read whole into ``body``.

        For a stream opened by hand (``SSEStream(reader, writer)`` on a socket whose request was
        sent elsewhere) h11 is told about a GET first, so it accepts the response."""
        if self.http.our_state is h11.IDLE:
            self.request("/")
        while True:
            event = self.http.next_event()
            if event is h11.NEED_DATA:
                self.http.receive_data(await self.reader.read(1 << 16))
            elif isinstance(event, h11.Response):
                break
            elif isinstance(event, h11.InformationalResponse):
                continue
            else:
                raise AssertionError(f"expected a response head, got {event!r}")
        self.status = event.status_code
        self.headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in event.headers]
        self._chunked = (self.header("transfer-encoding") or "").lower() == "chunked"
        if not self._chunked:
            body = bytearray()
            while (data := await self._data()) is not None:
                body += data
            self.body = bytes(body)

    async def _data(self, size: int = 1 << 16) -> bytes | None:
        """Body bytes h11 has ready (reading the socket when it needs more), None at the end."""
        while not self.eof:
            try:
                event = self.http.next_event()
            except h11.RemoteProtocolError:  # the peer closed in the middle of the body
                self.eof = True
                break
            if event is h11.NEED_DATA:
                self.http.receive_data(await self.reader.read(size))  # b"": the peer closed
            elif isinstance(event, h11.Data):
                return bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self._ended = self.eof = True
            else:  # ConnectionClosed, PAUSED
                self.eof = True
        return None

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def json(self) -> Any:
        return json.loads(self.body)

    # reading
    async def read_some(self, size: int = 1 << 16) -> list[Event] | None:
        """The events the next piece of body completed, or None at the end of the stream."""
        data = await self._data(size)
        if data is None:
            return None
        if self.keep_raw:
            self.raw += data
        events = self.parser.feed(data)
        if self.store:
            self.events += events
        return events

    @property
    def complete(self) -> bool:
        """The streamed response ended properly (the zero-size chunk arrived)."""
        return self._chunked and self._ended

    async def next_event(self, timeout: float = TIMEOUT) -> Event:
        return (await self.read_events(1, timeout))[0]

    async def read_events(self, n: int, timeout: float = TIMEOUT) -> list[Event]:
        """The next ``n`` events not yet returned by next_event/read_events."""
        async def fill() -> None:
            while len(self.events) - self._next < n:
                if await self.read_some() is None:
                    raise AssertionError(
                        f"stream ended after {len(self.events) - self._next} of {n} events; raw tail "
                        f"{bytes(self.raw[-300:])!r}")
        await asyncio.wait_for(fill(), timeout)
        out = self.events[self._next:self._next + n]
        self._next += n
        return out

    async def read_until(self, predicate: Callable[[SSEStream], bool], timeout: float = TIMEOUT,
                         what: str = "condition") -> None:
        async def fill() -> None:
            while not predicate(self):
                if await self.read_some() is None:
                    raise AssertionError(f"stream ended before {what}; raw tail {bytes(self.raw[-300:])!r}")
        try:
            await asyncio.wait_for(fill(), timeout)
        except TimeoutError:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None

    async def read_to_eof(self, timeout: float = TIMEOUT) -> None:
        async def drain() -> None:
            while await self.read_some() is not None:
                pass
        await asyncio.wait_for(drain(), timeout)

    def pending(self) -> list[Event]:
        return self.events[self._next:]

    def frames(self) -> list[bytes]:
        """The raw body split into frames (each ends with a blank line), LF-only as ssehub sends."""
        return [f for f in bytes(self.raw).split(b"\n\n") if f]

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError, ConnectionError):
            await self.writer.wait_closed()


class EventReader:
    """Events of one SSE byte stream, read in steps: ``await reader.until(pred)``."""

    def __init__(self, stream: AsyncIterator[bytes]) -> None:
        self._stream = stream
        self._parser = Parser()
        self._ready: list[Event] = []

    async def until(self, pred: Callable[[Event], bool] | None = None) -> list[Event]:
        """Events up to and including the first for which ``pred`` is true (or to the end)."""
        out: list[Event] = []
        while True:
            while self._ready:
                event = self._ready.pop(0)
                out.append(event)
                if pred is not None and pred(event):
                    return out
            try:
                piece = await self._stream.__anext__()
            except StopAsyncIteration:
                return out
            self._ready += self._parser.feed(piece)


async def read_events(
    stream: AsyncIterator[bytes], until: Callable[[Event], bool] | None = None
) -> list[Event]:
    """Parse an SSE byte stream until ``until(event)`` is true or the stream ends."""
    return await EventReader(stream).until(until)


def sync_events(stream: Iterable[bytes]) -> Iterator[Event]:
    """The events of a blocking SSE byte iterator (``httpx.stream(...).iter_bytes()``)."""
    parser = Parser()
    for piece in stream:
        yield from parser.feed(piece)
