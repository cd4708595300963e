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
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from benchlib.procs import RESULTS, ROOT, build_tools, log, raise_nofile, stop_all, wait_for_quiet
from benchlib.report import render
from benchlib.servers import ALL_SERVERS, BATCH_WORKLOADS, SERVER_CLASSES, SSEHubRedis
from benchlib.workloads import ALL_WORKLOADS, FULL, QUICK, WORKLOAD_FUNCS, Tools, warmup

# --------------------------------------------------------------------------- main

def _versions() -> dict[str, Any]:
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


def main(argv: list[str] | None = None) -> int:
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
            ap.error(f"unknown server {s!r} (choose from {', '.join(SERVER_CLASSES)})")
    cfgs = QUICK if args.quick else FULL

    ncpu = os.cpu_count() or 1
    server_cpu, gen_cpu = (None, None) if args.no_pin or ncpu < 2 else ("0", "1")
    nofile = raise_nofile()
    need = max(cfgs[w]["conns"] for w in workloads) + 100
    if nofile < need:
        log(f"warning: open-files limit {nofile} < {need}; the idle workload may fail")

    def on_term(signum: int, frame: object) -> None:
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
    results: dict[str, Any] = {w: {} for w in workloads}
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
