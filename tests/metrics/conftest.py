"""Metrics and logs tests reuse the end-to-end fixtures (real servers, raw SSE streams)."""

from __future__ import annotations

from ..e2e.conftest import http, serve, sse_streams

__all__ = ["http", "serve", "sse_streams"]
