#!/usr/bin/env python3
"""The floor for a Python SSE server: uvloop, httptools and ``transport.write``, nothing else.

    python bench/peers/raw_server.py --port P

``GET /subscribe?topic=T`` opens a chunked ``text/event-stream``; ``POST /publish?topic=T`` with
the event's data as raw body writes one ``data:`` frame to each subscriber of T and answers
``200 {}``. No history, no resume, no ids, no limits, no back-pressure: what is left is the
cost of HTTP parsing and socket writes, the part no Python server can go below.
"""

from __future__ import annotations

import argparse
import asyncio
from urllib.parse import parse_qs

import httptools
import uvloop

HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
        b"transfer-encoding: chunked\r\n\r\n")
OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"

topics: dict[str, set[asyncio.Transport]] = {}


class Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.body: list[bytes] = []
        self.topic: str | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's TCPTransport

    def connection_lost(self, exc: Exception | None) -> None:
        if self.topic is not None and self.transport is not None:
            topics.get(self.topic, set()).discard(self.transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        assert self.transport is not None
        parsed = httptools.parse_url(self.url)
        topic = parse_qs((parsed.query or b"").decode()).get("topic", [""])[0]
        if parsed.path == b"/subscribe":
            self.topic = topic
            topics.setdefault(topic, set()).add(self.transport)
            self.transport.write(HEAD + b"3\r\n:\n\n\r\n")
            return
        data = b"".join(self.body)
        frame = b"data: " + data + b"\n\n"
        chunk = b"%x\r\n%s\r\n" % (len(frame), frame)
        for t in topics.get(topic, ()):
            t.write(chunk)
        self.transport.write(OK)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    uvloop.install()
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(Conn, "127.0.0.1", args.port, backlog=4096))
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    main()
