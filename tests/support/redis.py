"""Real Redis servers for tests: ``RedisServer`` (one ``redis-server`` on a free loopback
port, in a temp dir) and ``RedisCluster`` (three primaries). Never the system Redis.

Without ``redis-server`` on the machine, ``require_redis()`` skips the test locally and fails
it loudly when ``CI`` is set (CI must run these tests).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from .wait import wait_for

__all__ = ["REDIS_CLI", "REDIS_SERVER", "RedisCluster", "RedisServer", "free_port", "require_redis"]

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
START_TIMEOUT = 20.0


def require_redis() -> None:
    """Skip (locally) or fail (CI) when redis-server is not installed."""
    if not (os.path.exists(REDIS_SERVER) and os.access(REDIS_SERVER, os.X_OK)):
        message = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("CI"):
            pytest.fail(message + ": CI must run the Redis tests", pytrace=False)
        pytest.skip(message)


def free_port(*, with_bus: bool = False) -> int:
    """A free loopback TCP port (and, for cluster nodes, a free port + 10000 for the bus)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if not with_bus:
            return port
        if port + 10000 < 65536:
            with socket.socket() as s, contextlib.suppress(OSError):
                s.bind(("127.0.0.1", port + 10000))
                return port
    raise RuntimeError("no free port")


def ping(port: int, timeout: float = 0.5) -> bytes:
    """The raw reply to PING (b"+PONG" when ready, b"-LOADING …" while loading), or b""."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(256).strip()
    except OSError:
        return b""


class RedisServer:
    """``redis-server`` on 127.0.0.1:<free port>. Default: no persistence (``--save ''
    --appendonly no``); ``appendonly=True`` with ``appendfsync`` ("always" by default)."""

    def __init__(self, *, appendonly: bool = False, appendfsync: str = "always",
                 port: int | None = None, directory: str | None = None, extra: tuple[str, ...] = ()) -> None:
        require_redis()
        self.port = port or free_port()
        self._tmp = None if directory else tempfile.TemporaryDirectory(prefix="ssehub-redis-")
        self.dir = Path(directory or self._tmp.name)  # type: ignore[union-attr]
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def args(self) -> list[str]:
        return [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", self.appendfsync,
                "--dir", str(self.dir), "--protected-mode", "no", "--daemonize", "no",
                "--logfile", str(self.dir / "redis.log"), *self.extra]

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(self.args(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        proc = self.proc

        def ready() -> bool:
            if proc.poll() is not None:
                log = (self.dir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited with {proc.returncode}: {log}")
            return ping(self.port) == b"+PONG"

        wait_for(ready, timeout=START_TIMEOUT, what=f"redis-server on port {self.port} to answer")
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown save, open connections die as in a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def restart(self) -> RedisServer:
        """Start again on the same port and directory (what it persisted is loaded)."""
        self.kill()
        return self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RedisCluster:
    """Three ``redis-server --cluster-enabled yes`` primaries joined with ``redis-cli --cluster
    create … --cluster-replicas 0``. ``url`` is ``redis+cluster://`` the first node."""

    def __init__(self, nodes: int = 3) -> None:
        require_redis()
        self.servers = [RedisServer(port=free_port(with_bus=True),
                                    extra=("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                                           "--cluster-node-timeout", "5000"))
                        for _ in range(nodes)]

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.servers[0].port}"

    def start(self) -> RedisCluster:
        for server in self.servers:
            server.start()
        nodes = [f"127.0.0.1:{s.port}" for s in self.servers]
        subprocess.run([REDIS_CLI, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)

        def ok() -> bool:
            for server in self.servers:
                info = [REDIS_CLI, "-p", str(server.port), "cluster", "info"]
                if b"cluster_state:ok" not in subprocess.run(info, check=False, capture_output=True,
                                                             timeout=10).stdout:
                    return False
            return True

        wait_for(ok, timeout=START_TIMEOUT, interval=0.05, what="the redis cluster to be ready")
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def __enter__(self) -> RedisCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
