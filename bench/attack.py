"""The hub under attack: a normal subscriber's publish→receive latency, alone and while the
server is attacked (issue 8 §2). Loopback only, bounded in count and time (~30 s), stops by itself.

    python bench/attack.py [--events 300] [--slow-sockets 1000] [--seconds 12]

Phases: (1) the subscriber alone; (2) the same while 1,000 sockets trickle their request heads
one byte at a time (reopened when the server cuts them at ``header_timeout``), a stalled reader
subscribes to the flooded topic and never reads, and a publisher floods batches of events.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

SSEHUB = shutil.which("ssehub", path=str(Path(sys.executable).parent)) or "ssehub"


async def start_server(log: Path, *args: str) -> tuple[subprocess.Popen[bytes], int]:
    with log.open("wb") as out:
        proc = subprocess.Popen([SSEHUB, "serve", "--host", "127.0.0.1", "--port", "0", "--log-level", "info",
                                 *args], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        m = re.search(rb"running on http://127\.0\.0\.1:(\d+)", log.read_bytes())
        if m:
            return proc, int(m.group(1))
        if proc.poll() is not None:
            break
        await asyncio.sleep(0.05)
    proc.kill()
    raise SystemExit(f"ssehub serve did not start:\n{log.read_text()}")


async def open_stream(port: int, topic: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /subscribe?topic={topic} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    await reader.readuntil(b"\r\n\r\n")
    return reader, writer  # keep the writer: a collected StreamWriter closes the connection


async def measure(port: int, http: httpx.AsyncClient, events: int) -> list[float]:
    """Latencies (ms) of ``events`` publishes, one every 5 ms, to a fresh subscriber."""
    reader, writer = await open_stream(port, "lat")
    latencies: list[float] = []
    received = asyncio.Event()

    async def read() -> None:
        buf = b""
        while len(latencies) < events:
            chunk = await reader.read(65536)
            if not chunk:
                return
            buf += chunk
            for stamp in re.findall(rb"data: (\d+)\n", buf):
                latencies.append((time.perf_counter_ns() - int(stamp)) / 1e6)
            buf = buf[buf.rfind(b"\n") + 1:]
            if len(latencies) >= events:
                received.set()

    task = asyncio.get_running_loop().create_task(read())
    for _ in range(events):
        stamp = str(time.perf_counter_ns())
        await http.post(f"http://127.0.0.1:{port}/publish", json={"topic": "lat", "data": stamp})
        await asyncio.sleep(0.005)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(received.wait(), 10)
    task.cancel()
    writer.close()
    return latencies


class Attack:
    def __init__(self, port: int, slow_sockets: int) -> None:
        self.port = port
        self.slow_sockets = slow_sockets
        self.stop = asyncio.Event()
        self.flooded = 0
        self.reopened = 0
        self.open_now = 0
        self.stalled: socket.socket | None = None

    async def slow_heads(self) -> None:
        """Keep ``slow_sockets`` connections trickling a request head, one byte a second."""
        loop = asyncio.get_running_loop()
        head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"s" * 10_000
        socks: list[tuple[socket.socket, int]] = []

        async def connect() -> tuple[socket.socket, int]:
            s = socket.socket()
            s.setblocking(False)
            await loop.sock_connect(s, ("127.0.0.1", self.port))
            return s, 0

        for _ in range(self.slow_sockets):
            with contextlib.suppress(OSError):
                socks.append(await connect())
        while not self.stop.is_set():
            alive = []
            for s, pos in socks:
                try:
                    s.send(head[pos:pos + 1])
                    alive.append((s, pos + 1))
                except OSError:  # cut by the server (408 at header_timeout): reopen
                    s.close()
                    self.reopened += 1
                    with contextlib.suppress(OSError):
                        alive.append(await connect())
            socks = alive
            self.open_now = len(socks)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), 1.0)
        for s, _ in socks:
            s.close()

    async def stalled_reader(self) -> None:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setblocking(False)
        await asyncio.get_running_loop().sock_connect(s, ("127.0.0.1", self.port))
        s.send(b"GET /subscribe?topic=flood HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        self.stalled = s  # never read
        await self.stop.wait()
        s.close()

    async def flood(self) -> None:
        batch = [{"topic": "flood", "data": "x" * 200} for _ in range(500)]
        async with httpx.AsyncClient(timeout=30) as http:
            while not self.stop.is_set():
                r = await http.post(f"http://127.0.0.1:{self.port}/publish", json=batch)
                if r.status_code == 200:
                    self.flooded += len(batch)


def row(label: str, lat: list[float], sent: int) -> str:
    if not lat:
        return f"| {label} | – | – | – | 0/{sent} |"
    q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [lat[0]] * 99
    return f"| {label} | {q[49]:.2f} | {q[98]:.2f} | {max(lat):.2f} | {len(lat)}/{sent} |"


async def run_attacker(port: int, slow_sockets: int, seconds: float) -> None:
    """The attack, in a process of its own (so it does not slow the measuring client)."""
    attack = Attack(port, slow_sockets)
    tasks = [asyncio.get_running_loop().create_task(c) for c in
             (attack.slow_heads(), attack.stalled_reader(), attack.flood())]
    await asyncio.sleep(seconds)
    attack.stop.set()
    await asyncio.wait(tasks, timeout=10)
    print(f"{attack.flooded} {attack.open_now} {attack.reopened}", flush=True)


async def measure_bounded(port: int, http: httpx.AsyncClient, events: int, seconds: float) -> list[float]:
    task = asyncio.get_running_loop().create_task(measure(port, http, events))
    done, _ = await asyncio.wait([task], timeout=seconds)
    if not done:
        task.cancel()
        return []
    return task.result()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=300)
    ap.add_argument("--slow-sockets", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=15.0, help="attack duration (bounded)")
    ap.add_argument("--attacker", type=int, default=0, help=argparse.SUPPRESS)  # internal: the port
    args = ap.parse_args()
    if args.attacker:
        await run_attacker(args.attacker, args.slow_sockets, args.seconds)
        return
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = await start_server(Path(tmp) / "serve.log", "--header-timeout", "5",
                                        "--slow-consumer", "disconnect")
        try:
            async with httpx.AsyncClient(timeout=30) as http:
                alone = await measure(port, http, args.events)
                attacker = await asyncio.create_subprocess_exec(
                    sys.executable, __file__, "--attacker", str(port), "--slow-sockets",
                    str(args.slow_sockets), "--seconds", str(args.seconds), stdout=asyncio.subprocess.PIPE)
                await asyncio.sleep(3.0)  # sockets opened, flood running
                started = time.monotonic()
                attacked = await measure_bounded(port, http, args.events, args.seconds - 4)
                elapsed = time.monotonic() - started
                health = (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code
                out, _ = await asyncio.wait_for(attacker.communicate(), args.seconds + 20)
                flooded, open_now, reopened = (int(x) for x in out.split())
            print(f"ssehub serve, loopback, {os.cpu_count()} cores; {args.events} events per phase, "
                  "one every 5 ms")
            print("| phase | p50 ms | p99 ms | max ms | received |")
            print("|---|---|---|---|---|")
            print(row("alone", alone, args.events))
            print(row(f"under attack ({args.slow_sockets} slow heads + stalled reader + flood)",
                      attacked, args.events))
            print(f"measured under attack for {elapsed:.1f} s; over the {args.seconds:g} s attack: {flooded} "
                  f"flood events published, {open_now} slow sockets open at the end, {reopened} cut by "
                  f"header_timeout and reopened; /healthz → {health}; server alive: {proc.poll() is None}")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    asyncio.run(main())
