"""httpcore's network layer on plain asyncio: the relay's upstream reads without anyio.

httpx reads a streamed response through httpcore, which reads its socket through a
*network backend*; the default one (anyio) opens a cancel scope, a resource guard and an
exception map for every read. An LLM answer streamed at a few tokens per read pays that for
every token: profiled under 100 concurrent generations it was about a quarter of the relay's
CPU. ``AsyncioBackend`` is httpcore's documented extension point (``AsyncNetworkBackend``)
done on an asyncio protocol: received bytes wait in a buffer, a read that finds some returns
them without suspending, a read that finds none awaits one future with one timer for its
timeout. Connect (a host's addresses raced as RFC 8305 says: the next one after 0.25 s),
TLS (``loop.start_tls``), timeouts and errors map to httpcore's exceptions as its own
backends do; httpx, httpcore and h11 still do everything else (pooling, HTTP/1.1,
proxies — a proxied client keeps httpcore's default backend).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Iterable, Sequence
from typing import Any

import httpcore
import httpx

__all__ = ["AsyncioBackend", "open_first", "use_asyncio_backend"]

#: received bytes buffered per connection before reading from the socket pauses
HIGH_WATER = 256 * 1024
#: seconds before the next address of a host is tried while none answered (RFC 8305)
STAGGER = 0.25
#: seconds a closing TLS connection waits for the peer's close_notify
TLS_SHUTDOWN = 2.0

SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]


class _Connection(asyncio.Protocol):
    """One socket's received bytes and its state, for the stream(s) reading it (a TLS upgrade
    keeps the protocol: only the transport changes)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None  # a read waiting for bytes
        self.drained: asyncio.Future[None] | None = None  # a write waiting for the buffer to drain
        self.paused_reading = False
        self.paused_writing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > HIGH_WATER and not self.paused_reading and self.transport is not None:
            self.paused_reading = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # (the transport closes itself)

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self._wake()
        drained, self.drained = self.drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def pause_writing(self) -> None:
        self.paused_writing = True

    def resume_writing(self) -> None:
        self.paused_writing = False
        drained, self.drained = self.drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def _wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def _expire(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


async def _wait(future: asyncio.Future[None], timeout: float | None) -> None:
    """Await ``future``; TimeoutError after ``timeout`` seconds (None: no limit)."""
    if timeout is None:
        await future
        return
    timer = asyncio.get_running_loop().call_later(timeout, _expire, future)
    try:
        await future
    finally:
        timer.cancel()


class AsyncioStream(httpcore.AsyncNetworkStream):
    def __init__(self, transport: asyncio.Transport, conn: _Connection,
                 raw: asyncio.Transport | None = None) -> None:
        self._transport = transport
        self._conn = conn
        self._raw = raw  # under TLS, the TCP transport below it

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        conn = self._conn
        if not conn.buffer and not conn.eof:
            conn.waiter = waiter = asyncio.get_running_loop().create_future()
            try:
                await _wait(waiter, timeout)
            except TimeoutError:
                raise httpcore.ReadTimeout(f"nothing received for {_secs(timeout)}") from None
            finally:
                if conn.waiter is waiter:
                    conn.waiter = None
        buffer = conn.buffer
        if buffer:
            data = bytes(buffer[:max_bytes])
            del buffer[:max_bytes]
            if conn.paused_reading and len(buffer) <= HIGH_WATER // 4 and conn.transport is not None:
                conn.paused_reading = False
                conn.transport.resume_reading()  # (the transport it paused: TLS's once upgraded)
            return data
        if conn.error is not None:
            raise httpcore.ReadError(str(conn.error) or type(conn.error).__name__)
        return b""  # the peer closed the connection

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        conn = self._conn
        if self._transport.is_closing():
            raise httpcore.WriteError("the connection is closed")
        self._transport.write(buffer)
        if conn.paused_writing:
            conn.drained = drained = asyncio.get_running_loop().create_future()
            try:
                await _wait(drained, timeout)
            except TimeoutError:
                raise httpcore.WriteTimeout(f"could not send for {_secs(timeout)}") from None
            if conn.error is not None:
                raise httpcore.WriteError(str(conn.error) or type(conn.error).__name__)

    async def aclose(self) -> None:
        transport, raw = self._transport, self._raw
        if transport.get_write_buffer_size() or (raw is not None and raw.get_write_buffer_size()):
            transport.abort()  # (unsent bytes: a close would wait for a peer that may never read)
        else:
            transport.close()  # (TLS: close_notify, waited for at most TLS_SHUTDOWN seconds)

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            upgrade = loop.start_tls(self._transport, self._conn, ssl_context,
                                     server_hostname=server_hostname, ssl_shutdown_timeout=TLS_SHUTDOWN)
            transport = await asyncio.wait_for(upgrade, timeout)
        except TimeoutError:
            self._transport.abort()
            raise httpcore.ConnectTimeout(f"TLS handshake not done in {_secs(timeout)}") from None
        except (OSError, ssl.SSLError, ConnectionError) as exc:
            self._transport.abort()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        if transport is None:  # (the connection was closed meanwhile)
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        self._conn.transport = transport  # (its reads now arrive through TLS: pause that one)
        return AsyncioStream(transport, self._conn, self._transport)

    def get_extra_info(self, info: str) -> Any:
        transport = self._transport
        if info == "ssl_object":
            return transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return transport.get_extra_info("sockname")
        if info == "server_addr":
            return transport.get_extra_info("peername")
        if info == "socket":
            return transport.get_extra_info("socket")
        if info == "is_readable":  # (an idle pooled connection: did the server close or send?)
            conn = self._conn
            return bool(conn.buffer) or conn.eof or transport.is_closing()
        return None


def _secs(timeout: float | None) -> str:
    return "ever" if timeout is None else f"{timeout:g} s"


def _interleave(addresses: Sequence[tuple[int, Any]]) -> list[tuple[int, Any]]:
    """Addresses in resolver order, alternating families from the first one's (RFC 8305)."""
    first = [a for a in addresses if a[0] == addresses[0][0]]
    other = [a for a in addresses if a[0] != addresses[0][0]]
    out: list[tuple[int, Any]] = []
    for i in range(max(len(first), len(other))):
        out += first[i:i + 1] + other[i:i + 1]
    return out


def _connected(task: asyncio.Task[tuple[asyncio.Transport, _Connection]]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is None


async def open_first(addresses: Sequence[tuple[int, Any]],
                     local: tuple[str, int] | None) -> tuple[asyncio.Transport, _Connection]:
    """Connect to the first of ``addresses`` (``(family, sockaddr)``) that answers, starting
    the next one every ``STAGGER`` seconds while none has (Happy Eyeballs, RFC 8305: an
    address that drops packets — broken IPv6 routing — must not use up the whole timeout)."""
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[tuple[asyncio.Transport, _Connection]]] = []
    winner: asyncio.Task[tuple[asyncio.Transport, _Connection]] | None = None
    try:
        for i, (family, sockaddr) in enumerate(addresses):
            tasks.append(loop.create_task(loop.create_connection(
                _Connection, sockaddr[0], sockaddr[1], family=family, local_addr=local)))
            last = i == len(addresses) - 1
            deadline = loop.time() + STAGGER
            while winner is None:
                running = [t for t in tasks if not t.done()]
                winner = next((t for t in tasks if _connected(t)), None)
                left = deadline - loop.time()
                # the newest attempt failed (refused, unreachable): the next address at once
                if winner is not None or not running or tasks[-1].done() or (left <= 0 and not last):
                    break
                await asyncio.wait(running, timeout=None if last else left,
                                   return_when=asyncio.FIRST_COMPLETED)
            if winner is not None:
                return winner.result()
        errors = [t.exception() for t in tasks if not t.cancelled()]
        raise OSError("; ".join(str(e) for e in errors if e is not None) or "no address to connect to")
    finally:
        for t in tasks:
            if not t.done():
                t.cancel()
            elif t is not winner and _connected(t):
                t.result()[0].close()  # (answered too, after the winner)


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[SocketOption] | None = None) -> AsyncioStream:
        async def connect() -> tuple[asyncio.Transport, _Connection]:
            local = (local_address, 0) if local_address else None
            version: int | None
            try:  # an IP literal (a local vLLM, Ollama): nothing to resolve
                version = ipaddress.ip_address(host).version
            except ValueError:
                version = None
            if version is not None:
                family = socket.AF_INET6 if version == 6 else socket.AF_INET
                return await open_first([(family, (host, port))], local)
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
            return await open_first(_interleave([(info[0], info[4]) for info in infos]), local)

        return await self._connected(connect(), timeout, socket_options, f"{host}:{port}")

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[SocketOption] | None = None) -> AsyncioStream:
        connect = asyncio.get_running_loop().create_unix_connection(_Connection, path)
        return await self._connected(connect, timeout, socket_options, path)

    async def _connected(self, connect: Any, timeout: float | None,
                         socket_options: Iterable[SocketOption] | None, where: str) -> AsyncioStream:
        try:
            transport, conn = await asyncio.wait_for(connect, timeout)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"could not connect to {where} in {_secs(timeout)}") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        sock: socket.socket | None = transport.get_extra_info("socket")
        if sock is not None:
            for option in socket_options or ():
                sock.setsockopt(*option)
        return AsyncioStream(transport, conn)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def use_asyncio_backend(client: httpx.AsyncClient) -> bool:
    """Make ``client``'s direct (unproxied) connections use ``AsyncioBackend``; True if done.

    httpx has no parameter for it: its default transport's httpcore pool is given the backend
    before it opened any connection. A client whose default transport is not httpx's own
    (a test's, a proxy's) is left as it is.
    """
    transport = getattr(client, "_transport", None)
    pool = getattr(transport, "_pool", None)
    if (not isinstance(transport, httpx.AsyncHTTPTransport) or type(pool) is not httpcore.AsyncConnectionPool
            or not hasattr(pool, "_network_backend") or pool.connections):
        return False
    pool._network_backend = AsyncioBackend()
    return True
