"""pytest fixtures for Redis-backed tests. Import the ones a conftest or module needs:
``from tests.support.fixtures import redis_server, make_hub  # noqa: F401``."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ssehub import Hub, Settings
from ssehub.brokers import from_url

from .redis import RedisCluster, RedisServer

__all__ = ["broker_kind", "make_hub", "redis_cluster", "redis_server"]


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
