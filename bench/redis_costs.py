"""What following a Redis namespace costs: CPU per event of an idle follower process, of the
publishing process and of redis-server, for batched and for one-by-one publishes.

    python bench/redis_costs.py [--events 60000] [--batch 100] [--singles 5000]

Starts its own redis-server (no persistence) and two `ssehub serve --broker redis://…` on
free loopback ports, publishes through the first, and compares CPU times (psutil) before and
after. Feeds docs/scaling.md. Loopback only; stops everything it started.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import redis

SRC = Path(__file__).resolve().parents[1] / "src"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def wait_ready(url: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--singles", type=int, default=5_000)
    args = parser.parse_args()

    rport = free_port()
    redis_proc = subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1",
                                   "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    env = dict(os.environ, PYTHONPATH=str(SRC))
    ports = [free_port(), free_port()]
    hubs = [subprocess.Popen([sys.executable, "-m", "ssehub", "serve", "--port", str(p),
                              "--broker", f"redis://127.0.0.1:{rport}", "--log-level", "warning"],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for p in ports]
    try:
        for p in ports:
            wait_ready(f"http://127.0.0.1:{p}")
        publisher, follower = (psutil.Process(h.pid) for h in hubs)
        server = psutil.Process(redis_proc.pid)
        procs = {"publisher": publisher, "follower": follower, "redis": server}
        url = f"http://127.0.0.1:{ports[0]}/publish"

        def measure(label: str, count: int, run: Callable[[], None]) -> None:
            before = {k: cpu(p) for k, p in procs.items()}
            t0 = time.perf_counter()
            run()
            elapsed = time.perf_counter() - t0
            time.sleep(1.0)  # let the follower drain the feed
            after = {k: cpu(p) for k, p in procs.items()}
            print(json.dumps({"case": label, "events": count, "seconds": round(elapsed, 2),
                              **{f"{k}_us_per_event": round((after[k] - before[k]) / count * 1e6, 1)
                                 for k in procs}}))

        with httpx.Client() as client:
            def batched() -> None:
                for i in range(args.events // args.batch):
                    body = [{"topic": f"t{(i * args.batch + j) % 1000}", "data": "x" * 60}
                            for j in range(args.batch)]
                    assert client.post(url, json=body).status_code == 200

            def singles() -> None:
                for i in range(args.singles):
                    response = client.post(f"{url}?topic=t{i % 1000}", content=b"x" * 60)
                    assert response.status_code == 200

            measure(f"batches of {args.batch}", args.events // args.batch * args.batch, batched)
            measure("one event per request", args.singles, singles)
        stats = redis.Redis(port=rport).info("commandstats")
        for name in ("cmdstat_evalsha", "cmdstat_xread"):
            if name in stats:
                print(json.dumps({name: {k: stats[name][k] for k in ("calls", "usec_per_call")}}))
    finally:
        for h in hubs:
            h.terminate()
        for h in hubs:
            h.wait(10)
        redis_proc.terminate()
        redis_proc.wait(10)


if __name__ == "__main__":
    main()
