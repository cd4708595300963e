#!/usr/bin/env python3
"""Relay workload: what ssehub adds between an LLM upstream and the reader.

    python bench/relay.py [--generations 100] [--rounds 3] [--tokens-per-second 0]

Starts ``ssehub simulate-llm`` (full speed by default: 0 = no pacing) and ``ssehub serve``
configured with the simulator as its provider, each in its own process, then runs
N concurrent generations two ways:

- **direct**: N concurrent ``POST /v1/chat/completions`` (``stream: true``) to the simulator;
- **via relay**: N concurrent ``GET /chat/stream?prompt=…`` to ssehub, which calls the
  simulator over HTTP, maps the chunks and publishes them through its hub.

Both ways the simulator writes each answer token as the Unix time it sent it
(``X-Simulator-Timestamps: 1``; ssehub forwards the header as a provider header), so the
client measures every token's latency (sent by the simulator → read by the client), besides
time-to-first-token (request sent → first reasoning token read) and the aggregate token rate;
*added* is via relay minus direct. CPU per 1,000 tokens is the ssehub process's user+system
CPU over the relay phases divided by the tokens relayed.

At full speed everything is CPU-bound (simulator, relay and client share the machine), so the
latencies are queueing and the figure to read is the relay's CPU per 1,000 tokens. A paced
run (``--tokens-per-second 20``) shows the latency the relay adds when nothing is saturated —
which includes one more loopback hop and process wake-up than the direct path.
With ``--pin`` (default with 4+ CPUs) the relay runs on CPU 0, simulator and client elsewhere.
Targets: < 0.1 ms added per token, < 5 ms added TTFT at 100 concurrent generations.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ssehub.wire import Parser  # noqa: E402

PROMPT = "Explain server-sent events in one paragraph."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def process(argv: list[str], cpus: set[int] | None) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSEHUB_")}
    env["PYTHONPATH"] = str(ROOT / "src")
    proc = subprocess.Popen([sys.executable, "-m", "ssehub", *argv], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if cpus and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(proc.pid, cpus)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient(timeout=1, trust_env=False) as client:
        for _ in range(200):
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise SystemExit(f"server exited: {err[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code < 500:
                    return
            await asyncio.sleep(0.05)
    raise SystemExit(f"{url} did not come up")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Result:
    def __init__(self) -> None:
        self.ttft: list[float] = []  # seconds, request sent → first reasoning token read
        self.lag: list[float] = []  # seconds, token sent by the simulator → read by the client
        self.tokens = 0  # upstream completion tokens (from usage)
        self.failed = 0
        self.why: list[str] = []



async def one(client: httpx.AsyncClient, method: str, url: str, result: Result, **kw: Any) -> None:
    """One generation. Answer tokens carry their send time (X-Simulator-Timestamps)."""
    parser = Parser()
    t0 = time.perf_counter()
    first: float | None = None
    tokens = 0
    lags: list[float] = []
    async with client.stream(method, url, **kw) as resp:
        if resp.status_code != 200:
            result.failed += 1
            result.why.append(f"HTTP {resp.status_code}: {(await resp.aread())[:200]!r}")
            return
        async for piece in resp.aiter_bytes():
            now = time.time()
            for ev in parser.feed(piece):
                if ev.data == "[DONE]" or not ev.data:
                    continue
                obj = json.loads(ev.data)
                if ev.event is None:  # the simulator's own chunks: take the delta
                    if obj.get("usage"):
                        tokens = int(obj["usage"]["completion_tokens"])
                    choices = obj.get("choices") or [{}]
                    delta = choices[0].get("delta") or {}
                    kind = "reasoning" if delta.get("reasoning_content") else "content"
                    text = delta.get("reasoning_content") or delta.get("content") or ""
                else:  # ssehub events
                    if ev.event == "usage":
                        tokens = int(obj["completion_tokens"])
                    kind, text = ev.event, obj.get("text", "") if isinstance(obj, dict) else ""
                if not text:
                    continue
                if first is None:
                    first = time.perf_counter()
                if kind == "content":
                    lags += [now - float(t) for t in text.split()]
    if first is None or not tokens:
        result.failed += 1
        result.why.append(f"first={first} tokens={tokens}")
        return
    result.ttft.append(first - t0)
    result.lag += lags
    result.tokens += tokens


SSL = httpx.create_ssl_context()  # shared: building one per client costs ~30 ms


async def lane(i: int, n: int, result: Result, *, spread: float, per_lane: int, direct: bool,
               sim: str, relay: str, max_tokens: int) -> None:
    """One reader doing ``per_lane`` generations back to back, starting at ``i/n * spread``.

    A client per lane: httpx's pool gets slower with every connection it holds, and the load
    generator must not be what is measured.
    """
    await asyncio.sleep(spread * i / n)
    async with httpx.AsyncClient(timeout=httpx.Timeout(60.0), trust_env=False, verify=SSL) as client:
        for _ in range(per_lane):
            if direct:
                body: dict[str, Any] = {"model": "ssehub-demo", "stream": True,
                                        "messages": [{"role": "user", "content": PROMPT}]}
                if max_tokens:
                    body["max_tokens"] = max_tokens
                await one(client, "POST", f"{sim}/v1/chat/completions", result, json=body,
                          headers={"x-simulator-timestamps": "1"})
            else:
                await one(client, "GET", f"{relay}/chat/stream", result, params={"prompt": PROMPT})


async def phase(n: int, direct: bool, sim: str, relay: str, *, spread: float = 0.0, per_lane: int = 1,
                max_tokens: int = 0) -> tuple[Result, float]:
    result = Result()
    t0 = time.perf_counter()
    await asyncio.gather(*(lane(i, n, result, spread=spread, per_lane=per_lane, direct=direct, sim=sim,
                                relay=relay, max_tokens=max_tokens) for i in range(n)))
    return result, time.perf_counter() - t0


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generations", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3,
                    help="generations per reader and phase (back to back)")
    ap.add_argument("--spread", type=float, default=1.0,
                    help="seconds over which the N readers start (0 = all at the same instant)")
    ap.add_argument("--tokens-per-second", type=float, default=0.0, help="simulator pace; 0 = full speed")
    ap.add_argument("--max-tokens", type=int, default=0,
                    help="cut each answer after this many tokens (the reasoning is always whole)")
    ap.add_argument("--pin", action=argparse.BooleanOptionalAction, default=None,
                    help="relay on CPU 0, the rest elsewhere (default: when there are 4+ CPUs)")
    args = ap.parse_args()
    n = args.generations
    ncpu = os.cpu_count() or 1
    pin = args.pin if args.pin is not None else ncpu >= 4
    relay_cpus = {0} if pin and ncpu > 1 else None
    other_cpus = set(range(1, ncpu)) if pin and ncpu > 1 else None
    if other_cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, other_cpus)
    sp, rp = free_port(), free_port()
    sim, relay = f"http://127.0.0.1:{sp}", f"http://127.0.0.1:{rp}"
    sim_argv = ["simulate-llm", "--port", str(sp), "--tokens-per-second", str(args.tokens_per_second),
                "--log-level", "warning"]
    # The relay's requests to the simulator carry the timestamp header: a provider header.
    config = Path(tempfile.mkdtemp()) / "relay-bench.toml"
    config.write_text(f"""
[[providers]]
name = "sim"
base_url = "{sim}/v1"
models = ["ssehub-demo"]
headers = {{ "x-simulator-timestamps" = "1" }}
{f"params = {{ max_tokens = {args.max_tokens} }}" if args.max_tokens else ""}
""", encoding="utf-8")
    relay_argv = ["serve", "--port", str(rp), "--log-level", "warning", "--config", str(config),
                  "--max-generations", str(10 * n), "--chat-rate-per-minute", str(1_000_000),
                  # every reader is this one client address
                  "--max-generations-per-client", str(10 * n)]
    with process(sim_argv, other_cpus) as sim_proc, process(relay_argv, relay_cpus) as relay_proc:
        await wait_ready(f"{sim}/v1/models", sim_proc)
        await wait_ready(f"{relay}/v1/models", relay_proc)
        await phase(min(n, 10), True, sim, relay)  # warm-up: imports, connection pools
        await phase(min(n, 10), False, sim, relay)
        kw = {"spread": args.spread, "per_lane": args.rounds, "max_tokens": args.max_tokens}
        direct, direct_wall = await phase(n, True, sim, relay, **kw)
        c0 = cpu_seconds(relay_proc.pid)
        via, via_wall = await phase(n, False, sim, relay, **kw)
        cpu = cpu_seconds(relay_proc.pid) - c0
    ms = 1000.0
    rows = [
        ("TTFT p50 (ms)", pct(direct.ttft, 0.5) * ms, pct(via.ttft, 0.5) * ms),
        ("TTFT p95 (ms)", pct(direct.ttft, 0.95) * ms, pct(via.ttft, 0.95) * ms),
        ("token latency p50 (ms)", pct(direct.lag, 0.5) * ms, pct(via.lag, 0.5) * ms),
        ("token latency p95 (ms)", pct(direct.lag, 0.95) * ms, pct(via.lag, 0.95) * ms),
        ("token latency mean (ms)", mean(direct.lag) * ms, mean(via.lag) * ms),
        ("aggregate tokens/s", direct.tokens / direct_wall, via.tokens / via_wall),
    ]
    pace = "full speed" if not args.tokens_per_second else f"{args.tokens_per_second:g} tokens/s each"
    print(f"\nssehub relay — {n} concurrent readers × {args.rounds} generations each (starts spread "
          f"over {args.spread:g} s), simulator at {pace}, {ncpu} CPUs\n")
    print(f"| {'metric':<26} | {'direct':>10} | {'via relay':>10} | {'added':>10} |")
    print(f"|{'-' * 28}|{'-' * 11}:|{'-' * 11}:|{'-' * 11}:|")
    for name, d, v in rows:
        added = f"{v - d:10.3f}" if "tokens/s" not in name else " " * 10
        print(f"| {name:<26} | {d:10.3f} | {v:10.3f} | {added} |")
    per_1000 = cpu / max(via.tokens, 1) * 1e6
    print(f"| {'relay CPU / 1,000 tokens':<26} | {'':>10} | {per_1000:7.1f} ms | {'':>10} |")
    print(f"\ntokens: direct {direct.tokens}, via relay {via.tokens}; failed generations: "
          f"direct {direct.failed}, via relay {via.failed}")
    for why in (direct.why + via.why)[:5]:
        print("  failed:", why)


if __name__ == "__main__":
    asyncio.run(main())
