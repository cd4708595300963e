"""Shared pytest fixtures. Import the ones a conftest or module needs:
``from tests.support.fixtures import redis_server, make_hub  # noqa: F401``.

Real servers: ``serve`` (``ssehub serve`` subprocesses), ``hub_server`` (in-process uvicorn),
``redis_server``/``redis_cluster``; clients: ``http`` (httpx) and ``sse_streams`` (closed at
teardown)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest

from ssehub import Hub, Settings
from ssehub.brokers import from_url
from ssehub.server import build_server

from .redis import RedisCluster, RedisServer
from .serve import ServeProcess, clean_env
from .sse import SSEStream
from .uvicorn import InProcServer
from .wait import TIMEOUT

__all__ = ["FRONTS", "HubServer", "Serve", "broker_kind", "front_of", "http", "hub_server", "make_hub",
           "parametrize_fronts", "redis_cluster", "redis_server", "serve", "sse_streams"]


class Serve(Protocol):
    """The ``serve`` fixture: ``await serve("--history-size", "5")`` → a started ServeProcess."""

    def __call__(self, *args: str, port: int | None = 0,
                 env: dict[str, str] | None = None) -> Awaitable[ServeProcess]: ...


HubServer = Callable[..., Awaitable[InProcServer]]


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


FRONTS = ("fast", "asgi")


def parametrize_fronts(metafunc: pytest.Metafunc) -> None:
    """``pytest_generate_tests`` hook: a test marked ``both_fronts`` runs once per front."""
    if metafunc.definition.get_closest_marker("both_fronts") and "serve" in metafunc.fixturenames:
        metafunc.fixturenames.append("front")
        metafunc.parametrize("front", FRONTS)


def front_of(request: pytest.FixtureRequest) -> str:
    callspec = getattr(request.node, "callspec", None)
    return str(callspec.params.get("front", "fast")) if callspec is not None else "fast"


@pytest.fixture(params=FRONTS)
async def hub_server(request: pytest.FixtureRequest) -> AsyncIterator[HubServer]:
    """Factory: ``await hub_server(history_size=5, ...)`` → a running in-process ssehub server.
    Every test using it runs against both fronts (``front = fast`` and ``front = asgi``)."""
    running: list[InProcServer] = []

    async def start(**settings: Any) -> InProcServer:
        values: dict[str, Any] = {"host": "127.0.0.1", "port": 0, "log_level": "warning",
                                  "front": request.param}
        values.update(settings)
        inproc = await InProcServer.start(build_server(Settings(**values)))
        running.append(inproc)
        return inproc

    yield start
    for inproc in running:
        if not inproc.task.done():
            await inproc.stop()


@pytest.fixture
async def serve(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Serve]:
    """Factory: ``await serve("--history-size", "5")`` → a started ``ssehub serve`` on a free port.

    ``port=None`` leaves the port to the flags/environment/config; ``env`` is added to
    os.environ without the test runner's SSEHUB_* variables (so they cannot leak in).
    """
    procs: list[ServeProcess] = []

    async def start(*args: str, port: int | None = 0, env: dict[str, str] | None = None) -> ServeProcess:
        # log level info: the "Uvicorn running on" line tells the bound port (access log is off)
        argv = ["--host", "127.0.0.1", "--log-level", "info", "--front", front_of(request), *args]
        if port is not None:
            argv += ["--port", str(port)]
        proc = ServeProcess(argv, tmp_path / f"serve-{len(procs)}.log", clean_env(**(env or {})))
        procs.append(proc)
        return await proc.start()

    yield start
    for proc in procs:
        await proc.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server (no persistence) for the session; tests use their own namespaces."""
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    with RedisCluster() as cluster:
        yield cluster


@pytest.fixture(params=["memory", "redis"])
def broker_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_hub(broker_kind: str, request: pytest.FixtureRequest) -> Callable[..., Hub]:
    """Factory: ``make_hub(history_size=3)`` → an unstarted Hub on the parametrized broker
    (``async with make_hub() as hub``). Hubs of one test share a Redis namespace, as
    processes of one deployment would."""
    namespace = "test-" + uuid.uuid4().hex[:12]
    url = "memory://"
    if broker_kind == "redis":
        url = request.getfixturevalue("redis_server").url

    def make(**kw: Any) -> Hub:
        settings = Settings(heartbeat=3600, broker=url, namespace=namespace, **kw)
        return Hub(from_url(url, namespace=namespace, timeout=settings.broker_timeout), settings=settings)

    return make
