"""Corners of a connection that the fast front must handle like the ASGI path, each against a
real ``ssehub serve`` on both fronts: X-Forwarded-For from a trusted proxy, a stream pipelined
behind a publish outliving the keep-alive timeout, a resume whose very first write fills
the socket (back-pressure from the first byte), and a publish body read in many pieces."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from tests.support.fixtures import Serve
from tests.support.hub import wait_subscribers
from tests.support.serve import ServeProcess
from tests.support.sse import SSEStream, request_bytes, stalled_subscriber, subscribe_target
from tests.support.wait import wait_until

pytestmark = pytest.mark.both_fronts  # the serve fixture: front=fast and front=asgi


async def test_a_trusted_proxy_names_the_client_for_per_client_limits(
        serve: Serve, http: httpx.AsyncClient, sse_streams: list[SSEStream]) -> None:
    hub: ServeProcess = await serve("--trusted-proxies", "127.0.0.1", "--max-subscriptions-per-client", "1")
    first = await SSEStream.open(hub.port, subscribe_target("p"), headers={"X-Forwarded-For": "10.0.0.1"})
    sse_streams.append(first)
    assert first.status == 200
    same = await SSEStream.open(hub.port, subscribe_target("p"), headers={"X-Forwarded-For": "10.0.0.1"})
    sse_streams.append(same)
    assert same.status == 429
    other = await SSEStream.open(hub.port, subscribe_target("p"), headers={"X-Forwarded-For": "10.0.0.2"})
    sse_streams.append(other)
    assert other.status == 200
    r = await http.post(hub.url + "/publish", params={"topic": "p"}, content=b"hi",
                        headers={"X-Forwarded-For": "10.0.0.3"})
    assert r.status_code == 200
    await first.read_until(lambda s: any(e.data == "hi" for e in s.events))
    await same.close()
    await other.close()
    await first.close()
    # every slot was given back (nothing counted twice or leaked)
    await wait_subscribers(http, hub.url, "p", 0, timeout=5)
    again = await SSEStream.open(hub.port, subscribe_target("p"), headers={"X-Forwarded-For": "10.0.0.1"})
    sse_streams.append(again)
    assert again.status == 200


async def test_a_stream_pipelined_behind_a_publish_outlives_the_keep_alive_timeout(
        serve: Serve, http: httpx.AsyncClient) -> None:
    hub: ServeProcess = await serve()
    reader, writer = await asyncio.open_connection("127.0.0.1", hub.port)
    try:
        publish = (b"POST /publish?topic=k HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nfirst")
        writer.write(publish + request_bytes(subscribe_target("k")))  # one write: pipelined
        await writer.drain()
        seen = b""
        while b"retry:" not in seen:
            seen += await asyncio.wait_for(reader.read(65536), 10)
        await asyncio.sleep(6.5)  # past uvicorn's keep-alive timeout (5 s)
        r = await http.post(hub.url + "/publish", params={"topic": "k"}, content=b"later")
        assert r.status_code == 200
        while b"data: later" not in seen:
            piece = await asyncio.wait_for(reader.read(65536), 10)
            assert piece, "the stream was closed while it was in use"
            seen += piece
    finally:
        writer.close()


async def test_a_resume_that_fills_the_socket_at_once_is_still_cut_when_it_falls_behind(
        serve: Serve, http: httpx.AsyncClient) -> None:
    # 60 KB events: the history sent on resume is far more than a socket buffer holds, so the
    # stream is paused by its very first writes; then it falls behind and must be cut
    hub: ServeProcess = await serve("--slow-consumer", "disconnect", "--history-size", "100",
                                    "--max-event-bytes", "70000")
    big = b"x" * 60_000
    for _ in range(100):
        assert (await http.post(hub.url + "/publish", params={"topic": "b"}, content=big)).status_code == 200
    slow: socket.socket = await stalled_subscriber(hub.port, subscribe_target("b", last_event_id="earliest"))
    try:
        await wait_subscribers(http, hub.url, "b", 1)
        for _ in range(150):  # the history moves on past where the stalled stream is
            await http.post(hub.url + "/publish", params={"topic": "b"}, content=b"y")
        await wait_subscribers(http, hub.url, "b", 0, timeout=10)

        def cut() -> bool:
            metrics = httpx.get(hub.url + "/metrics").text
            lines = [x for x in metrics.splitlines() if x.startswith("ssehub_slow_consumer_cuts_total ")]
            return bool(lines) and float(lines[0].split()[1]) >= 1

        await wait_until(cut, what="the cut to be counted")
    finally:
        slow.close()


async def test_a_body_in_many_pieces_is_published_byte_for_byte(
        serve: Serve, http: httpx.AsyncClient, sse_streams: list[SSEStream]) -> None:
    # the direct publish keeps a one-piece body as it came and gathers more pieces: a chunked
    # body in 200 chunks, each its own write (so, mostly, its own read), must arrive whole
    hub: ServeProcess = await serve()
    stream = await SSEStream.open(hub.port, subscribe_target("pieces"))
    sse_streams.append(stream)
    text = "".join(f"piece {i:03d} é; " for i in range(200))
    chunks = [f"piece {i:03d} é; ".encode() for i in range(200)]
    reader, writer = await asyncio.open_connection("127.0.0.1", hub.port)
    try:
        writer.write(b"POST /publish?topic=pieces HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        for piece in chunks:
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            await asyncio.sleep(0)
        writer.write(b"0\r\n\r\n")
        answer = await asyncio.wait_for(reader.readuntil(b"}"), 10)
        assert answer.startswith(b"HTTP/1.1 200 "), answer
    finally:
        writer.close()
    await stream.read_until(lambda s: any(e.data == text for e in s.events))
    single = await http.post(hub.url + "/publish", params={"topic": "pieces"}, content=b"one piece")
    assert single.status_code == 200
    await stream.read_until(lambda s: any(e.data == "one piece" for e in s.events))
