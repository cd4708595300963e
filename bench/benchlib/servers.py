"""The servers under test: ssehub (memory, batched publish, Redis) and its peers
(sse-starlette, aiohttp-sse, nginx + Nchan), each started fresh and stopped with its process group."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .procs import PEERS, STARTUP_TIMEOUT, pin, spawn, stop

ALL_SERVERS = ["ssehub", "ssehub-asgi", "ssehub-batch", "ssehub-redis", "sse-starlette", "aiohttp-sse",
               "nchan", "raw"]
# not in the default run: another server for ssehub's app (issue 9's design (d))
EXTRA_SERVERS = ["ssehub-granian"]

# --------------------------------------------------------------------------- servers

class Server:
    name = ""
    mode = "json"          # how the publisher talks to it: json body or raw body + ?topic=
    batch = 1              # events per publish request (JSON array) — ssehub's batch publish

    def __init__(self, port: int, workdir: Path):
        self.port = port
        self.workdir = workdir
        self.proc: subprocess.Popen[str] | None = None
        self.logfile = workdir / f"{self.name}-{port}.log"

    def available(self) -> str | None:
        """None when it can run here, else why not."""
        return None

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, Any]:
        return dict(os.environ)

    def start(self, cpu: str | None) -> None:
        self._log = open(self.logfile, "w")  # noqa: SIM115 - closed in stop()
        self.proc = spawn(pin(cpu) + self.command(), env=self.env(), stdout=self._log,
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
                return int(r.status)
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
    """One event per POST in its raw-body form (``POST /publish?topic=T``), as Nchan gets it."""

    name = "ssehub"
    mode = "raw"

    def available(self) -> str | None:
        if importlib.util.find_spec("ssehub") is None:
            return "ssehub is not installed (pip install -e .)"
        if importlib.util.find_spec("ssehub.asgi") is None:
            return "ssehub.asgi does not exist yet"
        return None

    def command(self) -> list[str]:
        exe = shutil.which("ssehub")
        base = [exe] if exe else [sys.executable, "-m", "ssehub"]
        return [*base, "serve", "--host", "127.0.0.1", "--port", str(self.port)]

    def env(self) -> dict[str, Any]:
        e = dict(os.environ)
        e.setdefault("SSEHUB_LOG_LEVEL", "warning")
        # the loadgen is one client address opening up to 10,000 streams
        e.setdefault("SSEHUB_MAX_SUBSCRIPTIONS_PER_CLIENT", "1000000")
        e.setdefault("SSEHUB_MAX_CONNECTIONS", "1000000")
        return e


class SSEHubASGI(SSEHub):
    """ssehub with ``front = "asgi"``: every request through uvicorn's ASGI cycle and the
    Starlette app (the design before the fast front; the path of a mounted app)."""

    name = "ssehub-asgi"

    def env(self) -> dict[str, Any]:
        return {**super().env(), "SSEHUB_FRONT": "asgi"}


class SSEHubGranian(SSEHub):
    """ssehub's ASGI app under granian (Rust HTTP, uvloop) instead of uvicorn: ``--servers
    ssehub-granian`` (``pip install granian``)."""

    name = "ssehub-granian"

    def available(self) -> str | None:
        if importlib.util.find_spec("granian") is None:
            return "granian is not installed (pip install granian)"
        return super().available()

    def command(self) -> list[str]:
        return [sys.executable, "-m", "granian", "--interface", "asgi", "--loop", "uvloop", "--http", "1",
                "--no-ws", "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning",
                "ssehub_granian:app"]

    def env(self) -> dict[str, Any]:
        return {**super().env(), "PYTHONPATH": str(PEERS)}


class SSEHubBatch(SSEHub):
    """ssehub again, publishing 100 events per POST (a JSON array): its batch publish API.
    Run on the throughput workloads only; the peers have no batch publish."""

    name = "ssehub-batch"
    batch = 100
    mode = "json"


class PythonPeer(Server):
    """A peer that is one script in ``peers/`` needing a few modules."""

    modules: tuple[str, ...] = ()
    script = ""

    def available(self) -> str | None:
        for mod in self.modules:
            if importlib.util.find_spec(mod) is None:
                return f"{mod} is not installed"
        return None

    def command(self) -> list[str]:
        return [sys.executable, str(PEERS / self.script), "--port", str(self.port)]


class SSEStarlette(PythonPeer):
    name = "sse-starlette"
    modules = ("sse_starlette", "uvicorn")
    script = "sse_starlette_server.py"


class AiohttpSSE(PythonPeer):
    name = "aiohttp-sse"
    modules = ("aiohttp", "aiohttp_sse")
    script = "aiohttp_sse_server.py"


class Raw(PythonPeer):
    """The floor: uvloop + httptools + ``transport.write`` (peers/raw_server.py)."""

    name = "raw"
    mode = "raw"
    modules = ("uvloop", "httptools")
    script = "raw_server.py"


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

    def available(self) -> str | None:
        if not shutil.which("nginx"):
            return "nginx is not installed (apt-get install nginx-light libnginx-mod-nchan)"
        if not self._module():
            return "ngx_nchan_module.so not found (apt-get install libnginx-mod-nchan)"
        return None

    def command(self) -> list[str]:
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

    def available(self) -> str | None:
        if not shutil.which("redis-server"):
            return "redis-server is not installed"
        return super().available()

    def start(self, cpu: str | None) -> None:
        self.redis_port = self.port + 5000
        self.redis = spawn([*pin(cpu), "redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                            "--save", "", "--appendonly", "no", "--dir", str(self.workdir)])
        end = time.monotonic() + STARTUP_TIMEOUT
        while self._redis_call(b"PING") != b"+PONG\r\n":
            if time.monotonic() > end or self.redis.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        super().start(cpu)

    def command(self) -> list[str]:
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

    def redis_figures(self) -> dict[str, Any]:
        """Redis's own cost: µs per publish script call, CPU seconds since it started."""
        stats = self._redis_call(b"INFO commandstats").decode(errors="replace")
        cpu = self._redis_call(b"INFO cpu").decode(errors="replace")
        out: dict[str, Any] = {}
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


SERVER_CLASSES = {c.name: c for c in (SSEHub, SSEHubASGI, SSEHubGranian, SSEHubBatch, SSEHubRedis,
                                     SSEStarlette, AiohttpSSE, Nchan, Raw)}
BATCH_WORKLOADS = {"fanout", "topics"}  # where a batched publisher makes sense
