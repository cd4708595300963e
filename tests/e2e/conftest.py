"""End-to-end fixtures (shared, from tests/support): in-process uvicorn servers, ``ssehub serve``
subprocesses, raw SSE streams, an httpx client. ``hub_server`` runs every test against both
fronts; a module marked ``both_fronts`` runs its ``serve`` tests against both too."""

from __future__ import annotations

import pytest

from tests.support.fixtures import http, hub_server, parametrize_fronts, serve, sse_streams

__all__ = ["http", "hub_server", "serve", "sse_streams"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize_fronts(metafunc)
