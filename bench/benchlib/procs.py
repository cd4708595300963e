"""Process control for the benchmark: paths, spawning and stopping children (each in its own
process group, all killed at exit), CPU pinning, /proc figures (RSS, CPU time, machine load),
reading a child's output lines, compiling the C load generators."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent.parent  # bench/
ROOT = BENCH.parent
BUILD = BENCH / "build"
RESULTS = BENCH / "results"
PEERS = BENCH / "peers"

STARTUP_TIMEOUT = 30.0

_children: list[subprocess.Popen[str]] = []   # every process we started, killed at exit


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

# --------------------------------------------------------------------------- processes

def pin(cpu: str | None) -> list[str]:
    if cpu is None or not shutil.which("taskset"):
        return []
    return ["taskset", "-c", cpu]


def spawn(cmd: list[str], *, env: dict[str, Any] | None = None, stdout: Any = subprocess.DEVNULL,
          stderr: Any = None, cwd: str | None = None) -> subprocess.Popen[str]:
    p = subprocess.Popen(cmd, env=env, stdout=stdout, stderr=stderr, cwd=cwd,
                         start_new_session=True, text=True)
    _children.append(p)
    return p


def stop(p: subprocess.Popen[str] | None, grace: float = 5.0) -> None:
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

    def __init__(self, p: subprocess.Popen[str]):
        self.q: queue.Queue[str | None] = queue.Queue()
        self.lines: list[str] = []
        self.t = threading.Thread(target=self._run, args=(p,), daemon=True)
        self.t.start()

    def _run(self, p: subprocess.Popen[str]) -> None:
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

    def last_json(self) -> dict[str, Any] | None:
        for line in reversed(self.lines):
            if line.startswith("{"):
                doc: dict[str, Any] = json.loads(line)
                return doc
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
