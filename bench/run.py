#!/usr/bin/env python3
"""ssehub benchmark runner: ssehub against three peers on the same workloads.

    python bench/run.py [--workloads fanout,topics,latency,idle]
                        [--servers ssehub,sse-starlette,aiohttp-sse,nchan] [--quick]

Compiles bench/loadgen.c and bench/publisher.c with gcc (into bench/build/), then for each
workload starts each server fresh (pinned to CPU 0), drives it with the C subscriber load
generator and the C publisher (pinned to CPU 1), stops it, and finally prints one Markdown
table per workload and writes every raw figure as JSON to bench/results/.

Every step has a time-out; every server is killed at the end, also on error or Ctrl-C.
See bench/README.md for what each workload measures.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import fcntl
import importlib.util
import json
import math
import os
import platform
import queue
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BUILD = BENCH / "build"
RESULTS = BENCH / "results"
PEERS = BENCH / "peers"

ALL_SERVERS = ["ssehub", "ssehub-batch", "ssehub-redis", "sse-starlette", "aiohttp-sse", "nchan"]
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
STARTUP_TIMEOUT = 30.0

_children: list[subprocess.Popen] = []   # every process we started, killed at exit


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- processes

def _pin(cpu: str | None) -> list[str]:
    if cpu is None or not shutil.which("taskset"):
        return []
    return ["taskset", "-c", cpu]


def spawn(cmd: list[str], *, env: dict | None = None, stdout=subprocess.DEVNULL,
          stderr=None, cwd: str | None = None) -> subprocess.Popen:
    p = subprocess.Popen(cmd, env=env, stdout=stdout, stderr=stderr, cwd=cwd,
                         start_new_session=True, text=True)
    _children.append(p)
    return p


def stop(p: subprocess.Popen | None, grace: float = 5.0) -> None:
    """SIGTERM the process group we created for p, then SIGKILL after `grace` seconds."""
    if p is None:
        return
    try:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=grace)
        # the group may still hold children (nginx worker) even when the leader exited
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=5)
    finally:
        with contextlib.suppress(ValueError):
            _children.remove(p)


def stop_all() -> None:
    for p in list(_children):
        stop(p, grace=2.0)


def _descendants(pid: int) -> list[int]:
    parent: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    s = f.read()
                parent[int(d)] = int(s[s.rindex(")") + 2:].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [pid], [pid]
    while todo:
        cur = todo.pop()
        for child, par in parent.items():
            if par == cur:
                out.append(child)
                todo.append(child)
    return out


def tree_rss_kib(pid: int) -> int:
    total = 0
    for p in _descendants(pid):
        with contextlib.suppress(OSError), open(f"/proc/{p}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def tree_cpu_s(pid: int) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in _descendants(pid):
        with contextlib.suppress(OSError, ValueError, IndexError):
            with open(f"/proc/{p}/stat") as f:
                s = f.read()
            fields = s[s.rindex(")") + 2:].split()
            total += int(fields[11]) + int(fields[12])   # utime, stime
    return total / tick


def system_busy_s() -> float:
    """CPU seconds spent in user/nice/system by everything on the machine (from /proc/stat)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    return (int(fields[0]) + int(fields[1]) + int(fields[2])) / os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid: int) -> float:
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
        fields = s[s.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def wait_for_quiet(max_wait: float, threshold: float = 0.15) -> float:
    """Wait (at most max_wait s) until other processes use < threshold of a core; return that load."""
    end = time.monotonic() + max_wait
    while True:
        b0, t0 = system_busy_s(), time.monotonic()
        time.sleep(0.5)
        load = (system_busy_s() - b0) / (time.monotonic() - t0)
        if load < threshold or time.monotonic() >= end:
            return load


class LineReader:
    """Reads a child's stdout lines on a thread, so we can wait for one with a time-out."""

    def __init__(self, p: subprocess.Popen):
        self.q: queue.Queue[str | None] = queue.Queue()
        self.lines: list[str] = []
        self.t = threading.Thread(target=self._run, args=(p,), daemon=True)
        self.t.start()

    def _run(self, p: subprocess.Popen) -> None:
        assert p.stdout is not None
        for line in p.stdout:
            self.lines.append(line.rstrip("\n"))
            self.q.put(line.rstrip("\n"))
        self.q.put(None)

    def wait_for(self, prefix: str, timeout: float) -> str | None:
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            try:
                line = self.q.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                return None
            if line.startswith(prefix):
                return line

    def last_json(self) -> dict | None:
        for line in reversed(self.lines):
            if line.startswith("{"):
                return json.loads(line)
        return None


# --------------------------------------------------------------------------- tools

def build_tools() -> tuple[Path, Path]:
    BUILD.mkdir(exist_ok=True)
    gcc = shutil.which("gcc") or shutil.which("cc")
    if not gcc:
        raise SystemExit("bench needs gcc (apt-get install gcc)")
    out = []
    for name in ("loadgen", "publisher"):
        src, exe = BENCH / f"{name}.c", BUILD / name
        if not exe.exists() or exe.stat().st_mtime < src.stat().st_mtime:
            log(f"compiling {src.name}")
            subprocess.run([gcc, "-O2", "-Wall", "-o", str(exe), str(src)], check=True, timeout=120)
        out.append(exe)
    return out[0], out[1]


def raise_nofile() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536
    for lim in ((want, max(hard, want)), (min(want, hard), hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, lim)
            break
        except (ValueError, OSError):
            continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --------------------------------------------------------------------------- servers

class Server:
    name = ""
    mode = "json"          # how the publisher talks to it: json body or raw body + ?topic=
    batch = 1              # events per publish request (JSON array) — ssehub's batch publish

    def __init__(self, port: int, workdir: Path):
        self.port = port
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None
        self.logfile = workdir / f"{self.name}-{port}.log"

    def available(self) -> str | None:
        """None when it can run here, else why not."""
        return None

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict:
        return dict(os.environ)

    def start(self, cpu: str | None) -> None:
        self._log = open(self.logfile, "w")  # noqa: SIM115 - closed in stop()
        self.proc = spawn(_pin(cpu) + self.command(), env=self.env(), stdout=self._log,
                          stderr=subprocess.STDOUT, cwd=str(self.workdir))
        end = time.monotonic() + STARTUP_TIMEOUT
        last = ""
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                if self.publish_once("warmup", "seq=0 ts=0 warmup") < 300:
                    return
            except (OSError, urllib.error.URLError) as exc:
                last = str(exc)
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer within {STARTUP_TIMEOUT}s ({last}): "
                           f"{self.log_tail()}")

    def publish_once(self, topic: str, data: str) -> int:
        if self.mode == "raw":
            req = urllib.request.Request(f"http://127.0.0.1:{self.port}/publish?topic={topic}",
                                         data=data.encode(), method="POST",
                                         headers={"Content-Type": "text/plain"})
        else:
            req = urllib.request.Request(f"http://127.0.0.1:{self.port}/publish",
                                         data=json.dumps({"topic": topic, "data": data}).encode(),
                                         method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=2) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    def stop(self) -> None:
        stop(self.proc)
        self.proc = None
        with contextlib.suppress(Exception):
            self._log.close()

    def log_tail(self, n: int = 1500) -> str:
        with contextlib.suppress(OSError):
            return self.logfile.read_text(errors="replace")[-n:]
        return ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


class SSEHub(Server):
    name = "ssehub"
    mode = "json"

    def available(self):
        if importlib.util.find_spec("ssehub") is None:
            return "ssehub is not installed (pip install -e .)"
        if importlib.util.find_spec("ssehub.asgi") is None:
            return "ssehub.asgi does not exist yet"
        return None

    def command(self):
        exe = shutil.which("ssehub")
        base = [exe] if exe else [sys.executable, "-m", "ssehub"]
        return [*base, "serve", "--host", "127.0.0.1", "--port", str(self.port)]

    def env(self):
        e = dict(os.environ)
        e.setdefault("SSEHUB_LOG_LEVEL", "warning")
        # the loadgen is one client address opening up to 10,000 streams
        e.setdefault("SSEHUB_MAX_SUBSCRIPTIONS_PER_CLIENT", "1000000")
        e.setdefault("SSEHUB_MAX_CONNECTIONS", "1000000")
        return e


class SSEHubBatch(SSEHub):
    """ssehub again, publishing 100 events per POST (a JSON array): its batch publish API.
    Run on the throughput workloads only; the peers have no batch publish."""

    name = "ssehub-batch"
    batch = 100


class SSEStarlette(Server):
    name = "sse-starlette"

    def available(self):
        for mod in ("sse_starlette", "uvicorn"):
            if importlib.util.find_spec(mod) is None:
                return f"{mod} is not installed"
        return None

    def command(self):
        return [sys.executable, str(PEERS / "sse_starlette_server.py"), "--port", str(self.port)]


class AiohttpSSE(Server):
    name = "aiohttp-sse"

    def available(self):
        for mod in ("aiohttp", "aiohttp_sse"):
            if importlib.util.find_spec(mod) is None:
                return f"{mod} is not installed"
        return None

    def command(self):
        return [sys.executable, str(PEERS / "aiohttp_sse_server.py"), "--port", str(self.port)]


NCHAN_MODULE_DIRS = ["/usr/lib/nginx/modules", "/usr/share/nginx/modules", "/usr/lib64/nginx/modules"]


class Nchan(Server):
    name = "nchan"
    mode = "raw"

    def _module(self) -> str | None:
        for d in NCHAN_MODULE_DIRS:
            p = Path(d) / "ngx_nchan_module.so"
            if p.exists():
                return str(p)
        return None

    def available(self):
        if not shutil.which("nginx"):
            return "nginx is not installed (apt-get install nginx-light libnginx-mod-nchan)"
        if not self._module():
            return "ngx_nchan_module.so not found (apt-get install libnginx-mod-nchan)"
        return None

    def command(self):
        prefix = self.workdir / f"nchan-{self.port}"
        (prefix / "tmp").mkdir(parents=True, exist_ok=True)
        conf = (PEERS / "nchan.conf.template").read_text()
        conf = (conf.replace("{prefix}", str(prefix)).replace("{port}", str(self.port))
                .replace("{module}", self._module() or ""))
        (prefix / "nginx.conf").write_text(conf)
        return ["nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf")]

    def log_tail(self, n: int = 1500) -> str:
        text = super().log_tail(n)
        with contextlib.suppress(OSError):
            text += (self.workdir / f"nchan-{self.port}" / "error.log").read_text(errors="replace")[-n:]
        return text


class SSEHubRedis(SSEHub):
    """ssehub with ``--broker redis://``: a redis-server (no persistence) started by the bench,
    pinned to the server's CPU like the server. Its CPU is reported apart (``redis``)."""

    name = "ssehub-redis"

    def available(self):
        if not shutil.which("redis-server"):
            return "redis-server is not installed"
        return super().available()

    def start(self, cpu: str | None) -> None:
        self.redis_port = self.port + 5000
        self.redis = spawn([*_pin(cpu), "redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                            "--save", "", "--appendonly", "no", "--dir", str(self.workdir)])
        end = time.monotonic() + STARTUP_TIMEOUT
        while self._redis_call(b"PING") != b"+PONG\r\n":
            if time.monotonic() > end or self.redis.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        super().start(cpu)

    def command(self):
        return [*super().command(), "--broker", f"redis://127.0.0.1:{self.redis_port}"]

    def _redis_call(self, command: bytes) -> bytes:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.redis_port), 2) as s:
            s.sendall(command + b"\r\n")
            data = b""
            while True:
                head, sep, rest = data.partition(b"\r\n")
                if sep and (not head.startswith(b"$") or len(rest) >= int(head[1:]) + 2):
                    return data
                chunk = s.recv(65536)
                if not chunk:
                    return data
                data += chunk
        return b""

    def redis_figures(self) -> dict:
        """Redis's own cost: µs per publish script call, CPU seconds since it started."""
        stats = self._redis_call(b"INFO commandstats").decode(errors="replace")
        cpu = self._redis_call(b"INFO cpu").decode(errors="replace")
        out: dict = {}
        for line in stats.splitlines():
            if line.startswith(("cmdstat_evalsha:", "cmdstat_xread:")):
                name, _, fields = line.partition(":")
                kv = dict(f.split("=", 1) for f in fields.split(",") if "=" in f)
                out[name.removeprefix("cmdstat_")] = {"calls": int(kv["calls"]),
                                                      "usec_per_call": float(kv["usec_per_call"])}
        for line in cpu.splitlines():
            if line.startswith(("used_cpu_user:", "used_cpu_sys:")):
                out["cpu_s"] = round(out.get("cpu_s", 0.0) + float(line.split(":", 1)[1]), 3)
        return out

    def stop(self) -> None:
        super().stop()
        stop(getattr(self, "redis", None))


SERVER_CLASSES = {c.name: c for c in (SSEHub, SSEHubBatch, SSEHubRedis, SSEStarlette, AiohttpSSE, Nchan)}
BATCH_WORKLOADS = {"fanout", "topics"}  # where a batched publisher makes sense


# --------------------------------------------------------------------------- workloads

class Tools:
    def __init__(self, loadgen: Path, publisher: Path, gen_cpu: str | None):
        self.loadgen = loadgen
        self.publisher = publisher
        self.gen_cpu = gen_cpu

    def start_loadgen(self, port: int, conns: int, topics: int, *, expect: int, timeout: float,
                      drain_max: float, coalesce_ms: float = 0,
                      prefix: str = "t") -> tuple[subprocess.Popen, LineReader]:
        cmd = [
            *_pin(self.gen_cpu), str(self.loadgen), "--port", str(port), "--conns", str(conns),
            "--path", f"/subscribe?topic={prefix}%d", "--topics", str(topics), "--expect", str(expect),
            "--timeout", str(timeout), "--drain-max", str(drain_max), "--drain-idle", "3",
            "--coalesce-ms", str(coalesce_ms),
        ]
        p = spawn(cmd, stdout=subprocess.PIPE)
        return p, LineReader(p)

    def publish(self, srv: Server, count: int, topics: int, *, size: int, rate: float,
                timeout: float, prefix: str = "t") -> dict:
        cmd = [
            *_pin(self.gen_cpu), str(self.publisher), "--port", str(srv.port),
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
        return json.loads(lines[-1])


def finish_loadgen(p: subprocess.Popen, reader: LineReader, timeout: float) -> dict:
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
               coalesce_ms: float = 0, prefix: str = "t") -> dict:
    """Subscribe `conns` streams over `topics` topics, publish `events` round-robin, collect."""
    expect = events // topics
    drain_max = timeout if drain_max is None else drain_max
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


def w_fanout(tools, srv, cfg):
    return run_pubsub(tools, srv, conns=cfg["conns"], topics=1, events=cfg["events"],
                      size=cfg["size"], rate=0, timeout=cfg["timeout"], coalesce_ms=COALESCE_MS)


def w_topics(tools, srv, cfg):
    return run_pubsub(tools, srv, conns=cfg["conns"], topics=cfg["topics"], events=cfg["events"],
                      size=cfg["size"], rate=0, timeout=cfg["timeout"], coalesce_ms=COALESCE_MS)


def w_latency(tools, srv, cfg):
    # a server that cannot keep up is cut off: the publisher gets 2x the nominal time, then the
    # subscribers get 10 s to drain; the rows then show what was delivered by that deadline.
    events = int(cfg["rate"] * cfg["seconds"])
    return run_pubsub(tools, srv, conns=cfg["conns"], topics=1, events=events, size=cfg["size"],
                      rate=cfg["rate"], timeout=cfg["seconds"] * 2 + 5, drain_max=10)


def w_idle(tools, srv, cfg):
    conns, topics = cfg["conns"], cfg["topics"]
    time.sleep(1.0)
    rss0 = tree_rss_kib(srv.pid)
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


# --------------------------------------------------------------------------- report

def _fmt(v, digits=0, none="–"):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return none
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}"


def _ratio(v, ref):
    if v is None or ref is None or not ref or math.isnan(v) or math.isnan(ref):
        return "–"
    return f"{v / ref:.2f}×"


def _get(results, wl, name, key):
    r = results.get(wl, {}).get(name)
    if not r or "error" in r:
        return None
    return r.get(key)


def _dup_extra(lg):
    return f"{lg['dups']}/{lg['extra']}"


def _notes(r: dict, rate: float | None = None) -> str:
    notes = []
    lg, pub = r["loadgen"], r["publisher"]
    if pub.get("exit") != "complete":
        notes.append(f"publisher cut at deadline ({pub['ok']:,}/{pub['count']:,} accepted)")
    elif rate and pub["rate"] < 0.95 * rate:
        notes.append(f"could not take {rate:,.0f}/s")
    if pub.get("errors"):
        codes = {k: v for k, v in pub.get("status", {}).items() if not k.startswith("2")}
        notes.append(f"{pub['errors']:,} publish errors {codes or ''}".strip())
    if lg.get("exit") in ("drain-max", "timeout"):
        notes.append("still delivering at deadline")
    elif lg.get("exit") == "drain-idle" and r["delivered"] < r["expected"]:
        notes.append("delivery stopped")
    if lg.get("failed"):
        notes.append(f"{lg['failed']} subscriptions failed (HTTP {lg.get('first_bad_status') or 'connect'})")
    if lg.get("closed_by_server"):
        notes.append(f"{lg['closed_by_server']} streams closed by server")
    redis = r.get("redis")
    if redis and "evalsha" in redis:
        notes.append(f"redis: {redis['evalsha']['usec_per_call']:.1f} µs/publish script, "
                     f"{redis.get('cpu_s', 0):.2f} s CPU in all")
    if r.get("foreign_cpu_cores", 0) >= 0.15:
        notes.append(f"⚠ other processes used {r['foreign_cpu_cores']:.2f} cores meanwhile")
    return "; ".join(notes)


def _servers_for(wl: str, servers: list[str]) -> list[str]:
    return [n for n in servers if SERVER_CLASSES[n].batch == 1 or wl in BATCH_WORKLOADS]


def render(results: dict, servers: list[str], workloads: list[str], cfgs: dict) -> str:
    out = []
    for wl in workloads:
        cfg = cfgs[wl]
        if wl in ("fanout", "topics"):
            if wl == "fanout":
                title = (f"fanout — 1 topic × {cfg['conns']:,} subscribers, {cfg['events']:,} events of "
                         f"{cfg['size']} B, {PUBLISHER_CONNS} keep-alive publishers, as fast as accepted")
            else:
                title = (f"topics — {cfg['topics']:,} topics × {cfg['conns'] // cfg['topics']} subscriber, "
                         f"{cfg['events']:,} events round-robin, as fast as accepted")
            out.append(f"### {title}\n")
            out.append("| server | delivered events/s | vs sse-starlette | vs nchan | delivered / expected "
                       "| missing | dup/extra | gaps | publishes/s | server CPU | loadgen CPU | notes |")
            out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
            ref_s = _get(results, wl, "sse-starlette", "delivered_per_s")
            ref_n = _get(results, wl, "nchan", "delivered_per_s")
            for name in _servers_for(wl, servers):
                r = results.get(wl, {}).get(name)
                if not r or "error" in r:
                    out.append(f"| {name} | {(r or {}).get('error', 'not run')[:160]} |" + " |" * 10)
                    continue
                lg, pub = r["loadgen"], r["publisher"]
                v = r["delivered_per_s"]
                out.append(
                    f"| {name} | {_fmt(v)} | {_ratio(v, ref_s)} | {_ratio(v, ref_n)} "
                    f"| {r['delivered']:,} / {r['expected']:,} | {max(0, r['expected'] - r['delivered']):,} "
                    f"| {_dup_extra(lg)} | {lg['gaps']} | {_fmt(pub['rate'])} "
                    f"| {_fmt(r['server_cpu_pct'])} % "
                    f"| {_fmt(r['loadgen_cpu_pct'])} % ({r['loadgen_cpu_s']:.2f} s) | {_notes(r)} |")
        elif wl == "latency":
            out.append(f"### latency — {cfg['conns']} subscribers of 1 topic, {cfg['rate']:,} events/s "
                       f"for {cfg['seconds']} s (send timestamp → parsed by the subscriber)\n")
            out.append("| server | p50 ms | p99 ms | p99.9 ms | max ms | p99 vs sse-starlette | p99 vs nchan "
                       "| delivered / expected | missing | dup/extra | publish rate | server CPU "
                       "| loadgen CPU "
                       "| notes |")
            out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")

            def p99(name, wl=wl):
                r = results.get(wl, {}).get(name)
                return r["loadgen"]["lat_us"]["p99"] if r and "error" not in r else None

            ref_s, ref_n = p99("sse-starlette"), p99("nchan")
            for name in _servers_for(wl, servers):
                r = results.get(wl, {}).get(name)
                if not r or "error" in r:
                    out.append(f"| {name} | {(r or {}).get('error', 'not run')[:160]} |" + " |" * 12)
                    continue
                lg, pub = r["loadgen"], r["publisher"]
                lat = lg["lat_us"]
                out.append(
                    f"| {name} | {lat['p50'] / 1000:.2f} | {lat['p99'] / 1000:.2f} "
                    f"| {lat['p999'] / 1000:.2f} "
                    f"| {lat['max'] / 1000:.1f} | {_ratio(lat['p99'], ref_s)} | {_ratio(lat['p99'], ref_n)} "
                    f"| {r['delivered']:,} / {r['expected']:,} | {max(0, r['expected'] - r['delivered']):,} "
                    f"| {_dup_extra(lg)} | {_fmt(pub['rate'])}/s | {_fmt(r['server_cpu_pct'])} % "
                    f"| {_fmt(r['loadgen_cpu_pct'])} % | {_notes(r, cfg['rate'])} |")
        elif wl == "idle":
            out.append(f"### idle — {cfg['conns']:,} open subscribers on {cfg['topics']} topics: "
                       "server memory per connection\n")
            out.append("| server | RSS KiB / connection | vs sse-starlette | vs nchan | subscribed "
                       "| RSS before → after MiB "
                       "| connect all (s) | then 1 event/topic delivered | idle CPU (2 s) | loadgen CPU |")
            out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
            ref_s = _get(results, wl, "sse-starlette", "kib_per_conn")
            ref_n = _get(results, wl, "nchan", "kib_per_conn")
            for name in _servers_for(wl, servers):
                r = results.get(wl, {}).get(name)
                if not r or "error" in r:
                    out.append(f"| {name} | {(r or {}).get('error', 'not run')[:160]} |" + " |" * 8)
                    continue
                v = r["kib_per_conn"]
                out.append(
                    f"| {name} | {_fmt(v, 1)} | {_ratio(v, ref_s)} | {_ratio(v, ref_n)} "
                    f"| {r['loadgen']['established']:,} / {r['loadgen']['conns']:,} "
                    f"| {r['rss_before_kib'] / 1024:.1f} → {r['rss_after_kib'] / 1024:.1f} "
                    f"| {r['connect_s']:.2f} | {r['delivered']:,} in {r['liveness_s'] * 1000:.0f} ms "
                    f"| {r['idle_cpu_2s']:.2f} s | {r['loadgen_cpu_s']:.2f} s |")
        out.append("")
    out.append("Ratios are this server ÷ reference: higher is better for events/s, lower is better for "
               "latency and memory. *expected* = events the server accepted × their subscribers; *missing* = "
               "expected events a subscribed stream had not received when the run ended; "
               "*dup/extra* = events received twice / with an unexpected sequence number; *gaps* = "
               "`event: gap` notices. CPU % is of one core over the delivery span (first send → last "
               "receive); the server runs on CPU 0, loadgen and publisher on CPU 1.")
    return "\n".join(out)


# --------------------------------------------------------------------------- main

def _versions() -> dict:
    v = {"python": platform.python_version()}
    for mod in ("uvicorn", "starlette", "sse_starlette", "aiohttp", "aiohttp_sse", "uvloop",
                "httptools", "ssehub"):
        with contextlib.suppress(Exception):
            from importlib import metadata
            v[mod] = metadata.version(mod.replace("_", "-"))
    with contextlib.suppress(Exception):
        v["nginx"] = subprocess.run(["nginx", "-v"], capture_output=True, text=True, check=False,
                                    timeout=5).stderr.strip()
    with contextlib.suppress(Exception):
        v["nchan"] = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "libnginx-mod-nchan"], check=False,
                                    capture_output=True, text=True, timeout=5).stdout.strip()
    return v


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            lines = f.readlines()
        for line in lines:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workloads", default=",".join(ALL_WORKLOADS))
    ap.add_argument("--servers", default=",".join(ALL_SERVERS))
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run (~1 min)")
    ap.add_argument("--port-base", type=int, default=18100)
    ap.add_argument("--no-pin", action="store_true", help="do not pin server / generators to CPUs")
    ap.add_argument("--out", help="JSON results file (default bench/results/<time>.json)")
    ap.add_argument("--lock-wait", type=float, default=600,
                    help="seconds to wait for another benchmark run to finish (default 600)")
    ap.add_argument("--quiet-wait", type=float, default=20,
                    help="before each server run, wait up to this long for other processes to go "
                         "idle (default 20 s)")
    args = ap.parse_args(argv)

    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    for w in workloads:
        if w not in WORKLOAD_FUNCS:
            ap.error(f"unknown workload {w!r} (choose from {', '.join(ALL_WORKLOADS)})")
    for s in servers:
        if s not in SERVER_CLASSES:
            ap.error(f"unknown server {s!r} (choose from {', '.join(ALL_SERVERS)})")
    cfgs = QUICK if args.quick else FULL

    ncpu = os.cpu_count() or 1
    server_cpu, gen_cpu = (None, None) if args.no_pin or ncpu < 2 else ("0", "1")
    nofile = raise_nofile()
    need = max(cfgs[w]["conns"] for w in workloads) + 100
    if nofile < need:
        log(f"warning: open-files limit {nofile} < {need}; the idle workload may fail")

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)

    # two benchmark runs at once would wreck each other's figures: take a machine-wide lock
    lock = open(os.path.join(tempfile.gettempdir(), "ssehub-bench.lock"), "w")  # noqa: SIM115 - held to exit
    lock_end = time.monotonic() + args.lock_wait
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= lock_end:
                log(f"another benchmark run still holds the lock after {args.lock_wait:.0f} s: giving up")
                return 3
            log("another benchmark run is in progress: waiting for it")
            time.sleep(5)

    loadgen, publisher = build_tools()
    tools = Tools(loadgen, publisher, gen_cpu)
    workdir = Path(tempfile.mkdtemp(prefix="ssehub-bench-"))
    results: dict = {w: {} for w in workloads}
    started = time.monotonic()
    port = args.port_base
    try:
        for wl in workloads:
            for name in servers:
                srv = SERVER_CLASSES[name](port, workdir)
                port += 1
                if srv.batch > 1 and wl not in BATCH_WORKLOADS:
                    continue
                why = srv.available()
                if why:
                    results[wl][name] = {"error": f"skipped: {why}"}
                    log(f"{wl}/{name}: skipped ({why})")
                    continue
                background = wait_for_quiet(args.quiet_wait)
                if background >= 0.15:
                    log(f"warning: the machine is busy ({background:.2f} cores used by other processes)")
                log(f"{wl}/{name}: starting on port {srv.port}")
                t0 = time.monotonic()
                try:
                    srv.start(server_cpu)
                    warmup(tools, srv)
                    results[wl][name] = WORKLOAD_FUNCS[wl](tools, srv, cfgs[wl])
                    r = results[wl][name]
                    r["background_cpu_cores_before"] = round(background, 3)
                    if isinstance(srv, SSEHubRedis):
                        r["redis"] = srv.redis_figures()
                    log(f"{wl}/{name}: done in {time.monotonic() - t0:.1f} s — "
                        f"delivered {r['delivered']:,}/{r['expected']:,}")
                except KeyboardInterrupt:
                    raise
                except Exception as exc:  # one failed server must not stop the run
                    results[wl][name] = {"error": f"{type(exc).__name__}: {exc}"}
                    log(f"{wl}/{name}: FAILED: {exc}\n{traceback.format_exc(limit=3)}")
                finally:
                    if srv.proc is not None and srv.proc.poll() is not None:
                        results[wl].setdefault(name, {})["server_exit"] = srv.proc.returncode
                    srv.stop()
    except KeyboardInterrupt:
        log("interrupted: stopping everything")
    finally:
        stop_all()

    elapsed = time.monotonic() - started
    RESULTS.mkdir(exist_ok=True)
    stamp = f"{_dt.datetime.now():%Y%m%d-%H%M%S}{'-quick' if args.quick else ''}"
    out = Path(args.out) if args.out else RESULTS / f"{stamp}.json"
    doc = {
        "meta": {
            "date": _dt.datetime.now().isoformat(timespec="seconds"),
            "quick": args.quick, "elapsed_s": round(elapsed, 1), "cpu": _cpu_model(), "ncpu": ncpu,
            "pinning": {"server": server_cpu, "generators": gen_cpu}, "nofile": nofile,
            "kernel": platform.release(), "versions": _versions(),
            "workloads": {w: cfgs[w] for w in workloads},
        },
        "results": results,
    }
    out.write_text(json.dumps(doc, indent=2))
    table = render(results, servers, workloads, cfgs)
    print(f"## ssehub benchmarks ({'quick' if args.quick else 'full'} run, {doc['meta']['cpu']}, "
          f"{ncpu} CPUs, {elapsed:.0f} s)\n")
    print(table)
    print(f"\nRaw results: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
