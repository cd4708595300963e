"""End-to-end fixtures (shared, from tests/support): in-process uvicorn servers, ``ssehub serve``
subprocesses, raw SSE streams, an httpx client."""

from __future__ import annotations

from tests.support.fixtures import http, hub_server, serve, sse_streams

__all__ = ["http", "hub_server", "serve", "sse_streams"]
