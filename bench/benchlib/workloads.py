"""The workloads: fanout, topics, latency and idle, driven by the C load generator and publisher."""

from __future__ import annotations

import contextlib
import json
import math
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from .procs import LineReader, pin, proc_cpu_s, spawn, stop, system_busy_s, tree_cpu_s, tree_rss_kib
from .servers import Server

ALL_WORKLOADS = ["fanout", "topics", "latency", "idle"]

# Full-size workloads (the figures quoted in the README) and a --quick variant for smoke runs.
FULL = {
    "fanout": {"conns": 1000, "topics": 1, "events": 1500, "size": 200, "timeout": 90},
    "topics": {"conns": 1000, "topics": 1000, "events": 200_000, "size": 200, "timeout": 120},
    "latency": {"conns": 100, "topics": 1, "rate": 1000, "seconds": 10, "size": 200, "timeout": 40},
    "idle": {"conns": 10_000, "topics": 100, "size": 200, "timeout": 120},
}
QUICK = {
    "fanout": {"conns": 200, "topics": 1, "events": 300, "size": 200, "timeout": 30},
    "topics": {"conns": 100, "topics": 100, "events": 10_000, "size": 200, "timeout": 30},
    "latency": {"conns": 50, "topics": 1, "rate": 500, "seconds": 3, "size": 200, "timeout": 20},
    "idle": {"conns": 1000, "topics": 10, "size": 200, "timeout": 30},
}

PUBLISHER_CONNS = 8
# throughput workloads only: the loadgen sleeps this long between polls so that its reads batch
# up (fewer syscalls per event). It delays receipt by at most this much; never used for latency.
COALESCE_MS = 5.0

# --------------------------------------------------------------------------- workloads

class Tools:
    def __init__(self, loadgen: Path, publisher: Path, gen_cpu: str | None):
        self.loadgen = loadgen
        self.publisher = publisher
        self.gen_cpu = gen_cpu

    def start_loadgen(self, port: int, conns: int, topics: int, *, expect: int, timeout: float,
                      drain_max: float, coalesce_ms: float = 0,
                      prefix: str = "t") -> tuple[subprocess.Popen[str], LineReader]:
        cmd = [
            *pin(self.gen_cpu), str(self.loadgen), "--port", str(port), "--conns", str(conns),
            "--path", f"/subscribe?topic={prefix}%d", "--topics", str(topics), "--expect", str(expect),
            "--timeout", str(timeout), "--drain-max", str(drain_max), "--drain-idle", "3",
            "--coalesce-ms", str(coalesce_ms),
        ]
        p = spawn(cmd, stdout=subprocess.PIPE)
        return p, LineReader(p)

    def publish(self, srv: Server, count: int, topics: int, *, size: int, rate: float,
                timeout: float, prefix: str = "t") -> dict[str, Any]:
        cmd = [
            *pin(self.gen_cpu), str(self.publisher), "--port", str(srv.port),
            "--conns", str(PUBLISHER_CONNS), "--count", str(count), "--topics", str(topics),
            "--topic", f"{prefix}%d", "--size", str(size), "--mode", srv.mode, "--rate", str(rate),
            "--timeout", str(timeout), "--batch", str(srv.batch),
        ]
        p = spawn(cmd, stdout=subprocess.PIPE)
        try:
            out, _ = p.communicate(timeout=timeout + 15)
        except subprocess.TimeoutExpired:
            stop(p)
            raise RuntimeError("publisher did not finish in time") from None
        stop(p)
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        if not lines:
            raise RuntimeError(f"publisher printed no result (exit {p.returncode})")
        result: dict[str, Any] = json.loads(lines[-1])
        return result


def finish_loadgen(p: subprocess.Popen[str], reader: LineReader, timeout: float) -> dict[str, Any]:
    with contextlib.suppress(ProcessLookupError):
        p.send_signal(signal.SIGUSR1)
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            p.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=5)
    stop(p)
    reader.t.join(timeout=5)
    res = reader.last_json()
    if res is None:
        raise RuntimeError(f"loadgen printed no result (exit {p.returncode})")
    return res


def run_pubsub(tools: Tools, srv: Server, *, conns: int, topics: int, events: int, size: int,
               rate: float, timeout: float, drain_max: float | None = None,
               coalesce_ms: float = 0, prefix: str = "t") -> dict[str, Any]:
    """Subscribe `conns` streams over `topics` topics, publish `events` round-robin, collect."""
    expect = events // topics
    drain_max = timeout if drain_max is None else drain_max
    lg: subprocess.Popen[str] | None
    lg, reader = tools.start_loadgen(srv.port, conns, topics, expect=expect, timeout=timeout + drain_max + 90,
                                     drain_max=drain_max, coalesce_ms=coalesce_ms, prefix=prefix)
    try:
        ready = reader.wait_for("READY", timeout=60)
        if ready is None:
            raise RuntimeError("subscribers did not connect within 60 s")
        time.sleep(0.5 + conns / 4000)      # let the server settle after the connection storm
        cpu0, busy0, lg_cpu0, w0 = tree_cpu_s(srv.pid), system_busy_s(), proc_cpu_s(lg.pid), time.monotonic()
        pub = tools.publish(srv, events, topics, size=size, rate=rate, timeout=timeout, prefix=prefix)
        res = finish_loadgen(lg, reader, timeout=drain_max + 15)
        lg = None
        cpu1, busy1, w1 = tree_cpu_s(srv.pid), system_busy_s(), time.monotonic()
    finally:
        if lg is not None:
            stop(lg)
    ours = (cpu1 - cpu0) + (res["cpu_user_s"] + res["cpu_sys_s"] - lg_cpu0) + \
        (pub["cpu_user_s"] + pub["cpu_sys_s"])
    foreign = max(0.0, (busy1 - busy0) - ours) / max(w1 - w0, 1e-6)
    span = res["span_s"] or float("nan")
    return {
        "foreign_cpu_cores": round(foreign, 3),
        "ready": ready,
        "loadgen": res,
        "publisher": pub,
        # what the subscribers should have got from the events the server accepted
        "expected": int(pub["ok"] * res["established"] / topics) if pub["ok"] < events
        else expect * res["established"],
        "published_ok": pub["ok"],
        "events": events,
        "delivered": res["unique"],
        "delivered_per_s": res["unique"] / span if math.isfinite(span) and span > 0 else 0.0,
        "server_cpu_s": round(cpu1 - cpu0, 3),
        "server_cpu_pct": round(100 * (cpu1 - cpu0) / span, 1) if math.isfinite(span) and span > 0 else None,
        "loadgen_cpu_s": round(res["cpu_user_s"] + res["cpu_sys_s"], 3),
        "loadgen_cpu_pct": round(100 * (res["cpu_user_s"] + res["cpu_sys_s"]) / span, 1)
        if math.isfinite(span) and span > 0 else None,
        "publisher_cpu_s": round(pub["cpu_user_s"] + pub["cpu_sys_s"], 3),
    }


def w_fanout(tools: Tools, srv: Server, cfg: dict[str, Any]) -> dict[str, Any]:
    return run_pubsub(tools, srv, conns=cfg["conns"], topics=1, events=cfg["events"],
                      size=cfg["size"], rate=0, timeout=cfg["timeout"], coalesce_ms=COALESCE_MS)


def w_topics(tools: Tools, srv: Server, cfg: dict[str, Any]) -> dict[str, Any]:
    return run_pubsub(tools, srv, conns=cfg["conns"], topics=cfg["topics"], events=cfg["events"],
                      size=cfg["size"], rate=0, timeout=cfg["timeout"], coalesce_ms=COALESCE_MS)


def w_latency(tools: Tools, srv: Server, cfg: dict[str, Any]) -> dict[str, Any]:
    # a server that cannot keep up is cut off: the publisher gets 2x the nominal time, then the
    # subscribers get 10 s to drain; the rows then show what was delivered by that deadline.
    events = int(cfg["rate"] * cfg["seconds"])
    return run_pubsub(tools, srv, conns=cfg["conns"], topics=1, events=events, size=cfg["size"],
                      rate=cfg["rate"], timeout=cfg["seconds"] * 2 + 5, drain_max=10)


def w_idle(tools: Tools, srv: Server, cfg: dict[str, Any]) -> dict[str, Any]:
    conns, topics = cfg["conns"], cfg["topics"]
    time.sleep(1.0)
    rss0 = tree_rss_kib(srv.pid)
    lg: subprocess.Popen[str] | None
    lg, reader = tools.start_loadgen(srv.port, conns, topics, expect=1, timeout=cfg["timeout"] + 60,
                                     drain_max=20)
    try:
        ready = reader.wait_for("READY", timeout=cfg["timeout"])
        if ready is None:
            raise RuntimeError(f"{conns} subscribers did not connect within {cfg['timeout']} s")
        time.sleep(3.0)
        samples = []
        for _ in range(3):
            samples.append(tree_rss_kib(srv.pid))
            time.sleep(0.5)
        rss1 = max(samples)
        cpu0 = tree_cpu_s(srv.pid)
        time.sleep(2.0)
        idle_cpu = tree_cpu_s(srv.pid) - cpu0
        # liveness: one event per topic must reach every open stream
        pub = tools.publish(srv, topics, topics, size=cfg["size"], rate=0, timeout=30)
        res = finish_loadgen(lg, reader, timeout=30)
        lg = None
    finally:
        if lg is not None:
            stop(lg)
    est = res["established"]
    return {
        "ready": ready,
        "loadgen": res,
        "publisher": pub,
        "rss_before_kib": rss0,
        "rss_after_kib": rss1,
        "kib_per_conn": (rss1 - rss0) / est if est else None,
        "idle_cpu_2s": round(idle_cpu, 3),
        "expected": est,
        "delivered": res["unique"],
        "liveness_s": res["span_s"],
        "connect_s": res["ready_s"],
        "loadgen_cpu_s": round(res["cpu_user_s"] + res["cpu_sys_s"], 3),
    }


WORKLOAD_FUNCS = {"fanout": w_fanout, "topics": w_topics, "latency": w_latency, "idle": w_idle}


def warmup(tools: Tools, srv: Server) -> None:
    """A few subscriptions and events so that lazy imports and caches are done before measuring."""
    with contextlib.suppress(Exception):
        run_pubsub(tools, srv, conns=10, topics=2, events=100, size=200, rate=0, timeout=10, prefix="warm")
