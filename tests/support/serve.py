"""The one launcher of real ``ssehub serve`` subprocesses.

``ServeProcess`` starts the process with its log in a file (no pipe to fill up) and waits
until the log says where it listens; ``start()`` for async tests, ``start_blocking()`` for
the synchronous (Playwright) ones. ``ServeProcess.configured(log, port=0, retry=200)`` passes
settings as ``SSEHUB_*`` variables, the way an operator's environment would.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from .redis import free_port
from .wait import TIMEOUT, wait_for, wait_until

__all__ = ["SSEHUB", "ServeProcess", "clean_env", "free_port"]

SSEHUB = shutil.which("ssehub", path=str(Path(sys.executable).parent)) or shutil.which("ssehub") or "ssehub"
_RUNNING = re.compile(rb"Uvicorn running on https?://[^:\s]+:(\d+)")


def clean_env(**extra: str) -> dict[str, str]:
    """os.environ without the test runner's own SSEHUB_* variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSEHUB_")}
    env.update(extra)
    return env


class ServeProcess:
    """A real ``ssehub serve`` subprocess; ``port`` is read from its log once it listens."""

    def __init__(self, args: Iterable[str], log_path: Path, env: dict[str, str] | None = None, *,
                 preexec_fn: Callable[[], None] | None = None) -> None:
        self.args = [SSEHUB, "serve", *args]
        self.log_path = log_path
        self.env = env
        self.preexec_fn = preexec_fn
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @classmethod
    def configured(cls, log_path: Path, *, port: int = 0, **settings: Any) -> ServeProcess:
        """Listen on 127.0.0.1:``port`` (0: a free one), settings through SSEHUB_* variables."""
        env = clean_env(**{f"SSEHUB_{k.upper()}": str(v) for k, v in settings.items()})
        return cls(["--host", "127.0.0.1", "--port", str(port)], log_path, env)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # starting
    def launch(self) -> subprocess.Popen[bytes]:
        """Start the process (without waiting for it to listen)."""
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=self.env,
                                         preexec_fn=self.preexec_fn)  # noqa: PLW1509 (tests run no threads then)
        return self.proc

    def listening(self) -> bool:
        """True once the log tells the bound port (which is then in ``port``); fails if it exited."""
        proc = self.proc
        assert proc is not None
        if proc.poll() is not None:
            raise AssertionError(f"ssehub serve exited with {proc.returncode}:\n{self.log()}")
        m = _RUNNING.search(self.log_path.read_bytes())
        if m:
            self.port = int(m.group(1))
        return m is not None

    async def start(self, timeout: float = TIMEOUT) -> ServeProcess:
        self.launch()
        await wait_until(self.listening, timeout=timeout, interval=0.05, what="ssehub serve to listen")
        return self

    def start_blocking(self, timeout: float = TIMEOUT) -> ServeProcess:
        self.launch()
        wait_for(self.listening, timeout=timeout, interval=0.05, what="ssehub serve to listen")
        return self

    # stopping
    def send_signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def wait_exit(self, timeout: float = TIMEOUT) -> int:
        proc = self.proc
        assert proc is not None
        await wait_until(lambda: proc.poll() is not None, timeout=timeout, interval=0.01,
                         what="ssehub serve to exit")
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL: a crash, no shutdown (streams are cut without a terminal event)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    async def stop(self, timeout: float = TIMEOUT) -> None:
        """SIGTERM and wait for the exit (SIGKILL after ``timeout``)."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await self.wait_exit(timeout)
        except AssertionError:
            self.kill()

    def stop_blocking(self, timeout: float = 10.0) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()


@contextlib.contextmanager
def uvicorn_process(cmd: list[str], log_path: Path, *, cwd: Path | None = None,
                    timeout: float = TIMEOUT) -> Iterator[int]:
    """Run a command that serves with uvicorn (``ssehub simulate-llm``, ``uvicorn app:app``)
    with its log in ``log_path``; yield the port it listens on; SIGTERM it afterwards."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=clean_env())
    try:
        def port() -> int | None:
            assert proc.poll() is None, log_path.read_text(errors="replace")
            m = _RUNNING.search(log_path.read_bytes())
            return int(m.group(1)) if m else None

        yield wait_for(port, timeout=timeout, what=f"{cmd[0]} to listen")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
