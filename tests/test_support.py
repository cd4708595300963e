"""The shared SSE reader (tests/support/sse.py) against hand-written HTTP/1.1 responses: it
must tell a stream that ended properly from one that was cut, because e2e tests rely on it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from tests.support.sse import SSEStream
from tests.support.wait import wait_for, wait_until


@contextlib.asynccontextmanager
async def serve_once(answer: bytes, *, close: bool) -> AsyncIterator[int]:
    """A server that answers one request with ``answer``, then closes (``close``) or waits."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()
            if not close:
                await reader.read()  # until the client leaves
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


@contextlib.asynccontextmanager
async def open_stream(answer: bytes, *, close: bool) -> AsyncIterator[SSEStream]:
    async with serve_once(answer, close=close) as port:
        stream = await SSEStream.open(port, "/subscribe?topic=t")
        try:
            yield stream
        finally:
            await stream.close()


async def test_a_stream_that_ends_with_the_last_chunk_is_complete() -> None:
    body = chunk(b"id: 1\ndata: a\n\n") + chunk(b"retry: 5") + chunk(b"00\n\n") + b"0\r\n\r\n"
    async with open_stream(HEAD + body, close=False) as stream:
        assert stream.status == 200 and stream.header("content-type") == "text/event-stream"
        await stream.read_to_eof()
        assert stream.complete and [e.data for e in stream.events] == ["a"]
        assert stream.frames() == [b"id: 1\ndata: a", b"retry: 500"]


async def test_a_cut_stream_is_not_complete() -> None:
    async with open_stream(HEAD + chunk(b"data: a\n\n") + b"5\r\nda", close=True) as stream:
        await stream.read_to_eof()
        assert stream.eof and not stream.complete
        assert [e.data for e in stream.events] == ["a"] and bytes(stream.raw).endswith(b"da")
        assert await stream.read_some() is None


async def test_an_error_is_read_whole() -> None:
    body = b'{"error": "no"}'
    answer = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
        len(body), body)
    async with open_stream(answer, close=False) as stream:
        assert stream.status == 400 and stream.json() == {"error": "no"} and stream.eof
        assert not stream.complete and await stream.read_some() is None


async def test_waits_fail_at_their_deadline() -> None:
    with pytest.raises(AssertionError, match=r"timed out after 0\.1s waiting for never"):
        await wait_until(lambda: False, timeout=0.1, what="never")
    with pytest.raises(AssertionError, match=r"timed out after 0\.1s waiting for never"):
        wait_for(lambda: 0, timeout=0.1, what="never")
    assert await wait_until(lambda: asyncio.sleep(0, "yes")) == "yes"
    assert wait_for(lambda: 7) == 7
