"""``ssehub serve --workers N``: N server processes sharing one listening socket.

The parent binds the socket once and starts N worker processes (``spawn``: no state copied
by ``fork``), each running the same ``ssehub.server.Server`` as a single-process hub, so
every worker keeps the hub-first shutdown that never hangs on open streams. The parent
forwards SIGTERM/SIGINT to every worker, waits for them, and starts a worker again when
one dies on its own. Workers share nothing but the broker, so ``N > 1`` needs a shared
broker (``redis://``): with ``memory://`` each worker would be a separate hub, and a
publish answered by one would never reach the subscribers of another.
"""

from __future__ import annotations

import logging
import logging.config
import multiprocessing
import os
import signal
import socket
import sys
import time
from multiprocessing.context import SpawnProcess
from types import FrameType

import uvicorn

from .config import ConfigError, Settings

__all__ = ["check_workers", "run_workers"]

log = logging.getLogger("ssehub")
STOP_WAIT = 10.0  # seconds a worker may take to end its streams before it is killed
RESTART_BACKOFF = 1.0  # seconds between restarts of a worker that keeps dying


def check_workers(settings: Settings) -> None:
    """ConfigError unless ``settings.workers`` can work with ``settings.broker``."""
    if settings.workers > 1 and settings.broker.split("://", 1)[0].lower() in ("memory", ""):
        raise ConfigError(
            f"--workers {settings.workers} needs a shared broker: with memory:// every worker "
            "would be a separate hub, and an event published to one would never reach the "
            "subscribers of another. Use --broker redis://HOST:6379 (or run one worker)."
        )


def _worker(settings: Settings, sock: socket.socket) -> None:  # pragma: no cover - child process
    from .logs import log_config
    from .server import build_server

    logging.config.dictConfig(log_config(settings.log_level, settings.log_format))
    server = build_server(settings, log_config=None)
    server.own_process = True
    server.run(sockets=[sock])


def run_workers(settings: Settings) -> None:
    """Serve with ``settings.workers`` processes until SIGINT/SIGTERM."""
    check_workers(settings)
    config = uvicorn.Config("ssehub:unused", host=settings.host, port=settings.port,
                            log_level=settings.log_level, backlog=4096)
    sock = config.bind_socket()
    sock.listen(4096)  # connections wait in the backlog until a worker accepts (never refused)
    ctx = multiprocessing.get_context("spawn")
    stopping = False

    def start() -> SpawnProcess:
        proc = ctx.Process(target=_worker, args=(settings, sock), daemon=False)
        proc.start()
        return proc

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    procs = [start() for _ in range(settings.workers)]
    print(f"ssehub: {settings.workers} workers on http://{settings.host}:{settings.port} "
          f"(supervisor pid {os.getpid()})", file=sys.stderr, flush=True)
    last_restart = 0.0
    try:
        while not stopping:
            time.sleep(0.2)
            for i, proc in enumerate(procs):
                if not stopping and not proc.is_alive():
                    if time.monotonic() - last_restart < RESTART_BACKOFF:
                        continue
                    last_restart = time.monotonic()
                    log.warning("worker pid %s exited with %s; starting another", proc.pid, proc.exitcode)
                    procs[i] = start()
    finally:
        for proc in procs:
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT
        for proc in procs:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join(1.0)
        sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
