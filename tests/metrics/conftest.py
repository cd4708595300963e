"""Metrics and logs tests reuse the end-to-end fixtures (real servers, raw SSE streams)."""

from __future__ import annotations

from tests.support.fixtures import http, serve, sse_streams

__all__ = ["http", "serve", "sse_streams"]
