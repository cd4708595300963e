"""End-to-end helpers: real servers (in-process uvicorn or `ssehub serve` subprocesses) and a
raw SSE client over asyncio streams (HTTP/1.1 chunked decoding + ssehub.wire.Parser).

Nothing here sleeps for a fixed time to "let things happen": every wait polls a condition
with a deadline (`wait_until`) or reads a socket with a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from ssehub.server import Server
from ssehub.wire import Event, Parser

SSEHUB = shutil.which("ssehub", path=str(Path(sys.executable).parent)) or shutil.which("ssehub") or "ssehub"
TIMEOUT = 20.0  # generous default deadline for anything that should be "prompt"


# -- polling ----------------------------------------------------------------------------


async def wait_until(
    predicate: Callable[[], Any | Awaitable[Any]],
    *,
    timeout: float = TIMEOUT,
    interval: float = 0.02,
    what: str = "condition",
) -> Any:
    """Poll ``predicate`` (sync or async) until it returns something truthy; fail at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


async def subscriber_count(http: httpx.AsyncClient, base_url: str, topic: str) -> int:
    """The hub's subscriber count for ``topic`` according to GET /topics (0 when not listed)."""
    response = await http.get(base_url + "/topics")
    assert response.status_code == 200, response.text
    for entry in response.json()["topics"]:
        if entry["topic"] == topic:
            return int(entry["subscribers"])
    return 0


async def wait_subscribers(
    http: httpx.AsyncClient, base_url: str, topic: str, count: int, timeout: float = TIMEOUT
) -> None:
    async def check() -> bool:
        return await subscriber_count(http, base_url, topic) == count

    await wait_until(check, timeout=timeout, what=f"{count} subscriber(s) on {topic!r}")


def gap_info(event: Event) -> dict[str, Any]:
    assert event.event == "gap", event
    info: dict[str, Any] = json.loads(event.data)
    return info


# -- a raw SSE client -------------------------------------------------------------------


class ChunkedDecoder:
    """Incremental HTTP/1.1 ``Transfer-Encoding: chunked`` decoder (no trailers expected)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._left = 0  # data bytes left in the current chunk
        self._skip = 0  # CRLF bytes left to skip after a chunk's data
        self.done = False  # the terminating zero-size chunk arrived

    def feed(self, data: bytes) -> bytes:
        buf = self._buf
        buf += data
        out: list[bytes] = []
        pos, end = 0, len(buf)
        while pos < end:
            if self._left:
                n = min(self._left, end - pos)
                out.append(bytes(buf[pos:pos + n]))
                pos += n
                self._left -= n
                if not self._left:
                    self._skip = 2
            elif self._skip:
                n = min(self._skip, end - pos)
                pos += n
                self._skip -= n
            elif self.done:
                pos = end  # the final CRLF (and trailers, none expected)
            else:
                i = buf.find(b"\r\n", pos)
                if i < 0:
                    break
                size = int(bytes(buf[pos:i]).split(b";", 1)[0], 16)
                pos = i + 2
                if size == 0:
                    self.done = True
                else:
                    self._left = size
        del buf[:pos]
        return b"".join(out)


def subscribe_target(topics: str | Sequence[str], path: str = "/subscribe", **params: str) -> str:
    names = [topics] if isinstance(topics, str) else list(topics)
    query: list[tuple[str, str]] = [("topic", t) for t in names] + list(params.items())
    return path + "?" + urlencode(query)


def request_bytes(target: str, headers: dict[str, str] | None = None, host: str = "127.0.0.1") -> bytes:
    lines = [f"GET {target} HTTP/1.1", f"Host: {host}", "Accept: text/event-stream"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def stalled_subscriber(port: int, target: str) -> socket.socket:
    """A connection with a tiny receive buffer whose owner never calls recv()."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    await loop.sock_sendall(sock, request_bytes(target))
    return sock


class SSEStream:
    """One GET over a raw asyncio connection: status, headers, then the parsed event stream.

    ``raw`` keeps the de-chunked body bytes (when ``keep_raw``) so tests can look at the exact
    wire format (comments, ``retry:`` lines, absent ``id:`` lines); ``events`` keeps what the
    WHATWG parser dispatched (when ``store``).
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
        self._chunked: ChunkedDecoder | None = None

    # opening
    @classmethod
    async def open(cls, port: int, target: str, headers: dict[str, str] | None = None, *,
                   keep_raw: bool = True, store: bool = True, timeout: float = TIMEOUT) -> SSEStream:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
        writer.write(request_bytes(target, headers))
        stream = cls(reader, writer, keep_raw=keep_raw, store=store)
        try:
            await asyncio.wait_for(stream.read_head(), timeout)
        except BaseException:
            await stream.close()
            raise
        return stream

    async def read_head(self) -> None:
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ", 2)[1])
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                self.headers.append((name.strip().lower(), value.strip()))
        if self.header("transfer-encoding") == "chunked":
            self._chunked = ChunkedDecoder()
        elif self.header("content-length") is not None:
            self.body = await self.reader.readexactly(int(self.header("content-length") or 0))
            self.eof = True

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def json(self) -> Any:
        return json.loads(self.body)

    # reading
    async def read_some(self, size: int = 1 << 16) -> list[Event] | None:
        """One socket read: the events it completed, or None at the end of the stream."""
        if self.eof:
            return None
        data = await self.reader.read(size)
        if not data:
            self.eof = True
            return None
        if self._chunked is not None:
            data = self._chunked.feed(data)
            if self._chunked.done:
                self.eof = True
        if self.keep_raw:
            self.raw += data
        events = self.parser.feed(data) if data else []
        if self.store:
            self.events += events
        return events

    @property
    def complete(self) -> bool:
        """The response ended properly (the zero-size chunk arrived)."""
        return self._chunked is not None and self._chunked.done

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


# -- in-process server (uvicorn on 127.0.0.1:0 as a task) -------------------------------


class InProcServer:
    def __init__(self, server: Server, task: asyncio.Task[None]) -> None:
        self.server = server
        self.task = task
        self.port: int = server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(self.task, TIMEOUT)


async def start_uvicorn(server: Any) -> asyncio.Task[None]:
    """Run a uvicorn.Server as a task and wait until it listens."""
    task = asyncio.get_running_loop().create_task(server.serve())
    await wait_until(lambda: server.started or task.done(), what="uvicorn startup")
    if task.done():
        task.result()  # raise the startup error
        raise AssertionError("uvicorn exited during startup")
    return task


# -- `ssehub serve` subprocesses --------------------------------------------------------

_RUNNING = re.compile(rb"Uvicorn running on http://127\.0\.0\.1:(\d+)")


class ServeProcess:
    """A real ``ssehub serve`` subprocess; its log goes to a file (no pipe to fill up)."""

    def __init__(self, args: Iterable[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.args = [SSEHUB, "serve", *args]
        self.log_path = log_path
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def start(self, timeout: float = 20.0) -> ServeProcess:
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=self.env)
        self._log.close()
        proc = self.proc

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"ssehub serve exited with {proc.returncode}:\n{self.log()}")
            m = _RUNNING.search(self.log_path.read_bytes())
            if m:
                self.port = int(m.group(1))
            return m is not None

        await wait_until(ready, timeout=timeout, interval=0.05, what="ssehub serve to listen")
        return self

    def send_signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def wait_exit(self, timeout: float = TIMEOUT) -> int:
        proc = self.proc
        assert proc is not None
        await wait_until(lambda: proc.poll() is not None, timeout=timeout, interval=0.01,
                         what="ssehub serve to exit")
        return proc.returncode

    async def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await self.wait_exit(TIMEOUT)
        except AssertionError:
            proc.kill()
            proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSEHUB_")}
    env.update(extra)
    return env


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start
