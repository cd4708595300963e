"""End-to-end fixtures: in-process uvicorn servers, `ssehub serve` subprocesses, raw SSE streams."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from ssehub.config import Settings
from ssehub.server import build_server

from .helpers import TIMEOUT, InProcServer, ServeProcess, SSEStream, start_uvicorn


@pytest.fixture
async def sse_streams() -> AsyncIterator[list[SSEStream]]:
    """A list tests append their streams to, so every one is closed at teardown."""
    streams: list[SSEStream] = []
    yield streams
    await asyncio.gather(*(s.close() for s in streams), return_exceptions=True)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        yield client


@pytest.fixture
async def hub_server() -> AsyncIterator[Callable[..., Awaitable[InProcServer]]]:
    """Factory: ``await hub_server(history_size=5, ...)`` → a running in-process ssehub server."""
    running: list[InProcServer] = []

    async def start(**settings: Any) -> InProcServer:
        values: dict[str, Any] = {"host": "127.0.0.1", "port": 0, "log_level": "warning"}
        values.update(settings)
        server = build_server(Settings(**values))
        task = await start_uvicorn(server)
        inproc = InProcServer(server, task)
        running.append(inproc)
        return inproc

    yield start
    for inproc in running:
        if not inproc.task.done():
            await inproc.stop()


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[ServeProcess]]]:
    """Factory: ``await serve("--history-size", "5")`` → a started ``ssehub serve`` on a free port.

    ``port=None`` leaves the port to the flags/environment/config; ``env`` replaces os.environ
    (SSEHUB_* variables of the test runner are dropped so they cannot leak in).
    """
    procs: list[ServeProcess] = []

    async def start(*args: str, port: int | None = 0, env: dict[str, str] | None = None) -> ServeProcess:
        # log level info: the "Uvicorn running on" line tells the bound port (access log is off)
        argv = ["--host", "127.0.0.1", "--log-level", "info", *args]
        if port is not None:
            argv += ["--port", str(port)]
        base = {k: v for k, v in os.environ.items() if not k.startswith("SSEHUB_")}
        base.update(env or {})
        proc = ServeProcess(argv, tmp_path / f"serve-{len(procs)}.log", base)
        procs.append(proc)
        return await proc.start()

    yield start
    for proc in procs:
        await proc.stop()
