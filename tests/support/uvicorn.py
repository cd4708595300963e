"""The one in-process server runner: a ``uvicorn.Server`` as a task of the test's event loop,
on 127.0.0.1 port 0."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

from .wait import TIMEOUT, wait_until

__all__ = ["InProcServer", "serve_app", "start_uvicorn"]


async def start_uvicorn(server: uvicorn.Server) -> asyncio.Task[None]:
    """Run a uvicorn.Server as a task and wait until it listens."""
    task = asyncio.get_running_loop().create_task(server.serve())
    await wait_until(lambda: server.started or task.done(), interval=0.005, what="uvicorn startup")
    if task.done():
        task.result()  # raise the startup error
        raise AssertionError("uvicorn exited during startup")
    return task


class InProcServer:
    """A started uvicorn.Server and its task; ``url`` is where it listens."""

    def __init__(self, server: uvicorn.Server, task: asyncio.Task[None]) -> None:
        self.server = server
        self.task = task
        self.port: int = server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    @classmethod
    async def start(cls, server: uvicorn.Server) -> InProcServer:
        return cls(server, await start_uvicorn(server))

    async def stop(self) -> None:
        self.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self.task, TIMEOUT)


@contextlib.asynccontextmanager
async def serve_app(app: Any, **options: Any) -> AsyncIterator[str]:
    """Run an ASGI app under uvicorn on a free port; yield its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="auto",
                            timeout_graceful_shutdown=1, **options)
    running = await InProcServer.start(uvicorn.Server(config))
    try:
        yield running.url
    finally:
        await running.stop()
