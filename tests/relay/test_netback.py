"""The relay's asyncio network backend for httpcore (``relay/netback.py``) against real
sockets: TLS with certificate checks, timeouts, a peer that drops or closes, back-pressure,
pooled connections the server closed, and a cancelled read closing the connection."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterator

import httpcore
import httpx
import pytest
import trustme
import uvloop

from ssehub.relay import netback
from ssehub.relay.netback import HIGH_WATER, AsyncioBackend, AsyncioStream, open_first, use_asyncio_backend

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


class Upstream:
    """A one-handler HTTP server on loopback, plain or TLS; ``closed`` is set for every
    connection that ended (the client closed it)."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.port = 0
        self.connections = 0
        self.closed = asyncio.Event()

    async def start(self, handler: Handler, ssl_context: ssl.SSLContext | None = None) -> Upstream:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await handler(reader, writer)
                await reader.read()  # until the client closes
            except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
                pass
            finally:
                self.closed.set()
                writer.close()

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=ssl_context)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()


def on_both_loops(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """Run an async test on asyncio's loop and on uvloop (``ssehub serve`` runs the relay on
    uvloop), with a fresh ``Upstream`` passed as ``upstream``."""

    @functools.wraps(test)
    def run(loop: str, **kwargs: object) -> None:
        async def main() -> None:
            up = Upstream()
            try:
                await test(upstream=up, **kwargs)
            finally:
                await up.stop()

        if loop == "uvloop":
            uvloop.run(main())
        else:
            asyncio.run(main())

    # pytest reads the signature: the test's parameters, less ``upstream``, plus ``loop``
    params = [p for name, p in inspect.signature(test).parameters.items() if name != "upstream"]
    run.__signature__ = inspect.Signature(  # type: ignore[attr-defined,unused-ignore]
        [inspect.Parameter("loop", inspect.Parameter.POSITIONAL_OR_KEYWORD), *params])
    both: Callable[..., None] = pytest.mark.parametrize("loop", ["asyncio", "uvloop"])(run)
    return both


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@contextlib.contextmanager
def silent_address() -> Iterator[tuple[str, int]]:
    """An address that never answers a connect: a listening socket whose accept queue is full
    (Linux drops the SYNs it has no room for)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(0)
        with socket.create_connection(silent.getsockname(), timeout=2):
            yield silent.getsockname()


async def idle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    return None


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(ctx)
    return ctx


def client(verify: ssl.SSLContext | bool = True, **kwargs: object) -> httpx.AsyncClient:
    c = httpx.AsyncClient(verify=verify, **kwargs)  # type: ignore[arg-type]
    assert use_asyncio_backend(c), "httpx's default transport changed: netback is not in use"
    return c


def stream_of(resp: httpx.Response) -> AsyncioStream:
    stream = resp.extensions["network_stream"]
    assert isinstance(stream, AsyncioStream)
    return stream


@on_both_loops
async def test_a_tls_stream_arrives_piece_by_piece_through_the_backend(
        upstream: Upstream, ca: trustme.CA) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(HEAD)
        for i in range(5):
            writer.write(chunk(b"data: %d\n\n" % i))
            await writer.drain()
            await asyncio.sleep(0.02)
        writer.write(b"0\r\n\r\n")

    await upstream.start(handler, server_context(ca))
    verify = ssl.create_default_context()
    ca.configure_trust(verify)
    async with client(verify) as c, c.stream("GET", f"https://localhost:{upstream.port}/") as resp:
        assert resp.status_code == 200
        assert stream_of(resp).get_extra_info("ssl_object") is not None
        body = b"".join([piece async for piece in resp.aiter_raw()])
    assert body == b"".join(b"data: %d\n\n" % i for i in range(5))


@on_both_loops
async def test_an_untrusted_certificate_is_a_connect_error(upstream: Upstream, ca: trustme.CA) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)

    await upstream.start(handler, server_context(ca))
    async with client() as c:  # the system's CAs: the test CA is not among them
        with pytest.raises(httpx.ConnectError):
            await c.get(f"https://localhost:{upstream.port}/")


@on_both_loops
async def test_a_refused_connection_is_a_connect_error(upstream: Upstream) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        return None

    await upstream.start(handler)
    port = upstream.port
    await upstream.stop()
    assert upstream.server is not None
    await upstream.server.wait_closed()
    async with client() as c:
        with pytest.raises(httpx.ConnectError):
            await c.get(f"http://127.0.0.1:{port}/")
    with pytest.raises(httpcore.ConnectError):  # (a name: its addresses resolved, all refused)
        await AsyncioBackend().connect_tcp("localhost", port, timeout=5)
    with pytest.raises(OSError, match=r"111|refused"):  # (ECONNREFUSED: each address's error)
        await open_first([(socket.AF_INET, ("127.0.0.1", port)), (socket.AF_INET, ("127.0.0.1", port))], None)


@on_both_loops
async def test_a_stalled_upstream_is_a_read_timeout(upstream: Upstream) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(HEAD + chunk(b"data: first\n\n"))  # then nothing more

    await upstream.start(handler)
    async with client(timeout=httpx.Timeout(5.0, read=0.3)) as c, \
            c.stream("GET", f"http://127.0.0.1:{upstream.port}/") as resp:
        pieces = resp.aiter_raw()
        assert await anext(pieces) == b"data: first\n\n"
        started = asyncio.get_running_loop().time()
        with pytest.raises(httpx.ReadTimeout):
            await anext(pieces)
        assert asyncio.get_running_loop().time() - started < 3


@on_both_loops
async def test_a_peer_that_drops_mid_body_is_an_error_not_a_silent_end(upstream: Upstream) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(HEAD + chunk(b"data: half"))
        await writer.drain()
        writer.transport.abort()

    await upstream.start(handler)
    async with client() as c, c.stream("GET", f"http://127.0.0.1:{upstream.port}/") as resp:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            async for _ in resp.aiter_raw():
                pass


@on_both_loops
async def test_a_pooled_connection_the_server_closed_is_not_reused(upstream: Upstream) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()  # keep-alive promised, then closed while idle in the client's pool

    await upstream.start(handler)
    async with client() as c:
        for _ in range(3):
            r = await c.get(f"http://127.0.0.1:{upstream.port}/")
            assert r.text == "ok"
            await asyncio.sleep(0.2)
    assert upstream.connections == 3


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
@on_both_loops
async def test_a_reader_that_does_not_read_pauses_the_socket(upstream: Upstream, ca: trustme.CA,
                                                              tls: bool) -> None:
    big = b"x" * 65536

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(HEAD)
        for _ in range(64):  # 4 MiB
            writer.write(chunk(big))
            await writer.drain()
        writer.write(b"0\r\n\r\n")

    await upstream.start(handler, server_context(ca) if tls else None)
    verify = ssl.create_default_context()
    ca.configure_trust(verify)
    url = f"https://localhost:{upstream.port}/" if tls else f"http://127.0.0.1:{upstream.port}/"
    async with client(verify, timeout=10) as c, c.stream("GET", url) as resp:
        pieces = resp.aiter_raw()
        await anext(pieces)
        await asyncio.sleep(0.5)  # not reading: what the backend holds stays bounded
        conn = stream_of(resp)._conn
        assert len(conn.buffer) <= HIGH_WATER + 256 * 1024
        assert conn.paused_reading
        total = sum([len(piece) async for piece in pieces])
    assert total > 3 * 1024 * 1024


@on_both_loops
async def test_cancelling_a_read_closes_the_upstream_connection(upstream: Upstream) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(HEAD + chunk(b"data: one\n\n"))
        await writer.drain()  # then silence: the client is left waiting

    await upstream.start(handler)
    got_first = asyncio.Event()

    async def read_all(c: httpx.AsyncClient) -> None:
        async with c.stream("GET", f"http://127.0.0.1:{upstream.port}/") as resp:
            async for _ in resp.aiter_raw():
                got_first.set()

    async with client() as c:
        task = asyncio.create_task(read_all(c))
        await asyncio.wait_for(got_first.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(upstream.closed.wait(), 5)  # the server saw the connection end


@on_both_loops
async def test_the_backend_connects_and_times_out_on_connect(upstream: Upstream) -> None:
    backend = AsyncioBackend()
    # 192.0.2.0/24 is TEST-NET-1: nothing answers, so the connect must give up by itself
    with pytest.raises((httpcore.ConnectTimeout, httpcore.ConnectError)):
        await backend.connect_tcp("192.0.2.1", 9, timeout=0.2)


@on_both_loops
async def test_an_address_that_does_not_answer_gives_way_to_the_next(upstream: Upstream) -> None:
    # the next address must be tried while a silent one (like a host's IPv6 address behind
    # broken routing) has not answered
    await upstream.start(idle)
    with silent_address() as silent:
        loop = asyncio.get_running_loop()
        started = loop.time()
        addresses = [(socket.AF_INET, silent), (socket.AF_INET, ("127.0.0.1", upstream.port))]
        transport, _ = await asyncio.wait_for(open_first(addresses, None), 10)
        assert transport.get_extra_info("peername")[1] == upstream.port
        assert loop.time() - started < 3  # (the stagger is 0.25 s; a connect timeout would be 10)
        transport.close()


@on_both_loops
async def test_a_failed_attempt_starts_the_next_address_at_once(upstream: Upstream,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netback, "STAGGER", 1.0)
    await upstream.start(idle)
    with silent_address() as silent, socket.socket() as refused:
        refused.bind(("127.0.0.1", 0))  # bound, never listening: refused
        loop = asyncio.get_running_loop()
        started = loop.time()
        addresses = [(socket.AF_INET, silent), (socket.AF_INET, refused.getsockname()),
                     (socket.AF_INET, ("127.0.0.1", upstream.port))]
        transport, _ = await asyncio.wait_for(open_first(addresses, None), 10)
        transport.close()
        # silent: 1 s, then refused at once, then the good one at once (not another second)
        assert loop.time() - started < 1.7


@on_both_loops
async def test_closing_with_unsent_bytes_aborts_also_under_tls(upstream: Upstream, ca: trustme.CA) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)  # never reads: what the client sends piles up

    await upstream.start(handler, server_context(ca))
    verify = ssl.create_default_context()
    ca.configure_trust(verify)
    backend = AsyncioBackend()
    plain = await backend.connect_tcp("localhost", upstream.port, timeout=5)
    stream = await plain.start_tls(verify, "localhost", timeout=5)
    assert isinstance(stream, AsyncioStream)
    with pytest.raises(httpcore.WriteTimeout):
        for _ in range(64):
            await stream.write(b"x" * (1 << 20), timeout=0.3)
    await stream.aclose()
    # aborted at once: the TCP transport under TLS is closed now, not after a TLS shutdown
    assert stream._raw is not None and stream._raw.is_closing()


@on_both_loops
async def test_an_os_connect_timeout_without_a_timeout_set_is_a_connect_timeout(upstream: Upstream) -> None:
    async def times_out() -> tuple[asyncio.Transport, object]:
        raise TimeoutError(110, "Connection timed out")  # (ETIMEDOUT from the kernel)

    with pytest.raises(httpcore.ConnectTimeout, match="ever"):
        await AsyncioBackend()._connected(times_out(), None, None, "upstream:443")
