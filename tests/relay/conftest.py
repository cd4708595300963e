"""Relay tests use the shared helpers of tests/support (re-exported here for the modules that
import them from ``.conftest``): the raw upstream, the in-process uvicorn runner, SSE readers."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support.sse import EventReader, read_events, terminal
from tests.support.upstream import RawResponse, RawUpstream, Script, UpstreamRequest, delta, sse
from tests.support.uvicorn import serve_app

__all__ = ["EventReader", "RawResponse", "RawUpstream", "Script", "UpstreamRequest", "delta", "read_events",
           "serve_app", "sse", "terminal"]


@pytest.fixture
def raw_upstream() -> Callable[[Script], RawUpstream]:
    return RawUpstream
