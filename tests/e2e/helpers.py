"""Compatibility imports: the helpers live in tests/support (one implementation each)."""

from __future__ import annotations

from tests.support.hub import Stopwatch, subscriber_count, wait_subscribers
from tests.support.serve import SSEHUB, ServeProcess, clean_env, free_port
from tests.support.sse import SSEStream, gap_info, request_bytes, stalled_subscriber, subscribe_target
from tests.support.uvicorn import InProcServer, start_uvicorn
from tests.support.wait import TIMEOUT, wait_until

__all__ = [
    "SSEHUB", "TIMEOUT", "InProcServer", "SSEStream", "ServeProcess", "Stopwatch", "clean_env",
    "free_port", "gap_info", "request_bytes", "stalled_subscriber", "start_uvicorn", "subscribe_target",
    "subscriber_count", "wait_subscribers", "wait_until",
]
