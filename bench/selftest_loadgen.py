#!/usr/bin/env python3
"""Self-test of bench/loadgen.c: does it count what a server really sent?

A scripted SSE server (raw asyncio, chunked encoding split at awkward places, CRLF / CR / LF
line ends, comments, a `gap` event, a duplicate, a missing and an out-of-range sequence
number) is checked against the loadgen's JSON.  Run: python bench/selftest_loadgen.py
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib.procs import build_tools

CONNS = 3
EXPECT = 10


def stream_for(conn: int) -> bytes:
    ts = time.time_ns()
    out = [b"retry: 2000\n\n", b": hello\n\n"]
    seqs = [s for s in range(EXPECT) if s != 7]        # 7 is missing
    seqs += [3, 12]                                     # 3 duplicated, 12 out of range
    for i, s in enumerate(seqs):
        end = (b"\r\n", b"\r", b"\n")[i % 3]
        out.append(b"id: 0-%d%sdata: seq=%d ts=%d pad%s%s" % (i, end, s, ts, end, end))
    out.append(b'event: gap\ndata: {"topic":"t"}\n\n')
    out.append(b"event: other\ndata: seq=1 ts=1\n\n")  # named event: not counted as data
    return b"".join(out)


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
    body = stream_for(0)
    # chunks of 7 bytes, each written separately: boundaries fall inside lines and CRLFs
    for i in range(0, len(body), 7):
        piece = body[i:i + 7]
        writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        await writer.drain()
        await asyncio.sleep(0)
    # keep the stream open until the loadgen hangs up (RST at its exit)
    with contextlib.suppress(TimeoutError, OSError, asyncio.CancelledError):
        await asyncio.wait_for(reader.read(), 30)
    writer.close()


async def main() -> int:
    loadgen, _ = build_tools()
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        str(loadgen), "--port", str(port), "--conns", str(CONNS), "--expect", str(EXPECT),
        "--timeout", "20", "--drain-idle", "1", stdout=subprocess.PIPE)
    assert proc.stdout is not None
    ready = await asyncio.wait_for(proc.stdout.readline(), 10)
    assert ready.startswith(b"READY established=3 failed=0"), ready
    await asyncio.sleep(1.0)
    proc.send_signal(signal.SIGUSR1)
    out = await asyncio.wait_for(proc.stdout.read(), 15)
    await proc.wait()
    server.close()
    res = json.loads(out.decode().strip().splitlines()[-1])
    want = {"established": 3, "unique": 3 * 9, "lost": 3, "dups": 3, "extra": 3, "gaps": 3,
            "other_events": 3, "bad_payload": 0, "events": 3 * 11}
    bad = {k: (res[k], v) for k, v in want.items() if res[k] != v}
    if bad:
        print("FAIL (got, want):", bad)
        return 1
    print("loadgen self-test: 1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
