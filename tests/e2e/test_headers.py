"""SPEC §1 / §2: response headers of an event stream, the opening retry hint, heartbeats."""

from __future__ import annotations

import re

import httpx

from tests.support.fixtures import HubServer, Serve
from tests.support.serve import ServeProcess
from tests.support.sse import SSEStream, subscribe_target


async def test_stream_headers_first_bytes_and_no_compression(
    serve: Serve, sse_streams: list[SSEStream]
) -> None:
    hub: ServeProcess = await serve("--retry", "1234")
    stream = await SSEStream.open(hub.port, subscribe_target("h"), {"Accept-Encoding": "gzip, deflate, br"})
    sse_streams.append(stream)
    assert stream.status == 200
    assert stream.header("content-type") == "text/event-stream; charset=utf-8"
    assert stream.header("cache-control") == "no-cache"
    assert stream.header("x-accel-buffering") == "no"
    names = [name for name, _ in stream.headers]
    assert "connection" not in names, stream.headers  # forbidden in HTTP/2, breaks Safari/curl
    assert "content-encoding" not in names, stream.headers  # gzip buffers the stream
    assert "content-length" not in names
    # headers are flushed at once and the first bytes of the body are the retry hint, then the
    # starting position (also a header), as lines of a block that no blank line ends
    await stream.read_until(lambda s: s.raw.count(b"\n") >= 2, what="the opening")
    start = stream.header("ssehub-start-id")
    assert start is not None
    assert bytes(stream.raw) == b"retry: 1234\nid: " + start.encode() + b"\n", bytes(stream.raw)
    assert stream.parser.retry == 1234


async def test_stream_headers_via_httpx(hub_server: HubServer) -> None:
    """Same guarantees seen through a regular HTTP client (which asks for gzip by default)."""
    server = await hub_server()
    async with httpx.AsyncClient(timeout=10) as client, client.stream(
        "GET", server.url + "/subscribe", params={"topic": "x"}, headers={"Accept-Encoding": "gzip"}
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert "connection" not in response.headers
        assert "content-encoding" not in response.headers
        async for chunk in response.aiter_raw():
            assert chunk.startswith(b"retry: ")
            break


async def test_heartbeat_comment_while_idle(serve: Serve, sse_streams: list[SSEStream]) -> None:
    hub: ServeProcess = await serve("--heartbeat", "0.2")
    stream = await SSEStream.open(hub.port, subscribe_target("idle"))
    sse_streams.append(stream)
    # two heartbeats: the ticker keeps going (a comment line, no blank line after it)
    await stream.read_until(lambda s: s.raw.count(b"\n:\n") >= 2, timeout=5, what="two heartbeat comments")
    lines = bytes(stream.raw).split(b"\n")
    assert re.fullmatch(rb"retry: \d+", lines[0])
    assert re.fullmatch(rb"id: \d+-\d+", lines[1])  # the starting position: dispatches nothing
    assert all(line == b":" for line in lines[2:-1]) and lines[-1] == b"", lines
    assert b"\n\n" not in bytes(stream.raw)  # no blank line: nothing any client could dispatch
    assert stream.events == []
