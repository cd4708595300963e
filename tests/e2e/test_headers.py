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
    # headers are flushed at once and the first bytes of the body are the retry hint
    await stream.read_until(lambda s: b"\n\n" in s.raw, what="the first frame")
    assert bytes(stream.raw).startswith(b"retry: 1234\n\n"), bytes(stream.raw)
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
    # two heartbeats: the ticker keeps going (a comment frame is ":" alone or ": text")
    await stream.read_until(lambda s: sum(1 for f in s.frames() if f.startswith(b":")) >= 2,
                            timeout=5, what="two heartbeat comments")
    frames = stream.frames()
    assert re.fullmatch(rb"retry: \d+", frames[0])
    assert re.fullmatch(rb"id: \d+-\d+", frames[1])  # the starting position: dispatches nothing
    assert all(f.startswith(b":") for f in frames[2:]), frames
    assert stream.events == []  # neither do comments
