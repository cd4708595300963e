#!/usr/bin/env python3
"""Python CPU per request of the fast front, in one process, without sockets.

    python bench/inproc.py [--publishes 30000] [--connects 3000]

Builds the server ``ssehub serve`` runs (``build_server``: memory broker, fast front), opens
1,000 subscribers on 1,000 topics through protocols on in-memory transports, then feeds
``POST /publish?topic=T`` requests (200-byte raw bodies, 8 kept-alive publishers) and
``GET /subscribe`` requests to fresh protocols. Prints the process CPU per publish (its
delivery to the subscriber included) and per connect, best of 6 rounds: the Python share of
the *topics* and *idle* workloads without the kernel's, and steadier than them on a shared
machine. Pin it to one CPU (``taskset -c 0``) for comparable figures.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import uvloop

from ssehub.config import Settings
from ssehub.server import build_server, tune_gc

HOST = b"Host: 127.0.0.1:18999\r\n"


class Transport:
    """What the protocols need of a transport; writes are counted and dropped."""

    def __init__(self) -> None:
        self.written = 0
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 18999)}.get(name, default)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        return None

    def resume_reading(self) -> None:
        return None

    def can_write_eof(self) -> bool:
        return True

    def get_write_buffer_size(self) -> int:
        return 0


async def main(publishes: int, connects: int) -> None:
    # (one client address opens every stream: the per-client and total limits raised)
    server = build_server(Settings(host="127.0.0.1", port=18999, log_level="warning",
                                   max_connections=1_000_000, max_subscriptions_per_client=1_000_000))
    config = server.config
    config.load()
    server.lifespan = config.lifespan_class(config)
    await server.startup(sockets=[])  # (no listening socket: protocols are fed by hand)
    tune_gc()
    loop = asyncio.get_running_loop()

    def connection() -> tuple[Any, Transport]:
        protocol = config.http_protocol_class(config=config, server_state=server.server_state,  # type: ignore[call-arg]
                                              app_state=server.lifespan.state, _loop=loop)
        transport = Transport()
        protocol.connection_made(transport)  # type: ignore[arg-type]
        return protocol, transport

    subscribers, streams = [], []
    for i in range(1000):
        protocol, transport = connection()
        protocol.data_received(b"GET /subscribe?topic=t%d HTTP/1.1\r\n%s\r\n" % (i, HOST))
        subscribers.append(transport)
        streams.append(protocol)
    publishers = [connection()[0] for _ in range(8)]
    body = b"x" * 200
    requests = [b"POST /publish?topic=t%d HTTP/1.1\r\n%sContent-Type: text/plain\r\n"
                b"Content-Length: 200\r\n\r\n%s" % (i, HOST, body) for i in range(1000)]
    best = float("inf")
    for _ in range(6):
        start = time.process_time()
        for k in range(publishes):
            publishers[k & 7].data_received(requests[k % 1000])
            if k % 64 == 63:
                await asyncio.sleep(0)  # (the subscribers' writes run from the loop)
        await asyncio.sleep(0)
        best = min(best, (time.process_time() - start) / publishes)
    delivered = sum(t.written for t in subscribers)
    print(f"publish: {best * 1e6:.1f} µs of CPU per request (its delivery included), "
          f"{delivered:,} bytes delivered in all")
    best = float("inf")
    for _ in range(6):
        opened = []
        start = time.process_time()
        for k in range(connects):
            protocol, _ = connection()
            protocol.data_received(b"GET /subscribe?topic=c%d HTTP/1.1\r\n%s\r\n" % (k % 100, HOST))
            opened.append(protocol)
        best = min(best, (time.process_time() - start) / connects)
        for protocol in opened:
            protocol.connection_lost(None)
        await asyncio.sleep(0.01)
    print(f"connect: {best * 1e6:.1f} µs of CPU per new stream")
    for protocol in [*streams, *publishers]:
        protocol.connection_lost(None)
    server.should_exit = True
    await server.shutdown()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--publishes", type=int, default=30_000)
    ap.add_argument("--connects", type=int, default=3_000)
    args = ap.parse_args()
    uvloop.run(main(args.publishes, args.connects))
