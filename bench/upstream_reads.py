#!/usr/bin/env python3
"""CPU per upstream read: httpx on httpcore's default (anyio) backend against ssehub's
``relay/netback.py``, on uvloop, as the relay reads an LLM stream.

    python bench/upstream_reads.py [--chunks 5000] [--rounds 3]

A child process serves a chunked ``text/event-stream`` of small OpenAI-style chunks, one per
write, paced 0.3 ms apart so that each arrives in a read of its own (tokens at a model's
pace); this process streams it with ``aiter_raw`` and prints its own CPU time per read,
alternating the two backends. Pin it (``taskset -c 0``): the child pins itself to CPU 1.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time

import httpx
import uvloop

from ssehub.relay.netback import use_asyncio_backend

SERVER = r"""
import asyncio, sys
count = int(sys.argv[2])
async def serve(reader, writer):
    while True:
        try:
            await reader.readuntil(b"\r\n\r\n")
        except Exception:
            return
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                     b"transfer-encoding: chunked\r\n\r\n")
        for i in range(count):
            data = b'data: {"choices":[{"delta":{"content":"tok%d"}}]}\n\n' % i
            writer.write(b"%x\r\n%s\r\n" % (len(data), data))
            await writer.drain()
            await asyncio.sleep(0.0003)
        writer.write(b"0\r\n\r\n")
async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", int(sys.argv[1]))
    await server.serve_forever()
asyncio.run(main())
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def read_all(url: str, netback: bool) -> tuple[float, int]:
    async with httpx.AsyncClient(timeout=30) as client:
        if netback and not use_asyncio_backend(client):
            raise SystemExit("netback could not be installed on this httpx version")
        start, reads = time.process_time(), 0
        async with client.stream("GET", url) as response:
            async for _ in response.aiter_raw():
                reads += 1
        return (time.process_time() - start) / reads, reads


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chunks", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    port = free_port()
    pin = ["taskset", "-c", "1"] if (os.cpu_count() or 1) > 1 else []
    child = subprocess.Popen([*pin, sys.executable, "-c", SERVER, str(port), str(args.chunks)])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        url = f"http://127.0.0.1:{port}/"
        for _ in range(args.rounds):
            for netback in (False, True):
                per_read, reads = uvloop.run(read_all(url, netback))
                name = "netback" if netback else "anyio  "
                print(f"{name} {per_read * 1e6:6.1f} µs of CPU per read ({reads:,} reads)")
    finally:
        child.kill()
        child.wait()


if __name__ == "__main__":
    main()
