"""The one way tests wait: poll a condition until it holds, failing at a deadline.

``wait_until`` (async; the predicate may be sync or async) and ``wait_for`` (sync, for the
Playwright tests and process start-up) share the same deadline and message. Nothing in the
test tree sleeps a fixed time to "let things happen".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["TIMEOUT", "wait_for", "wait_until"]

TIMEOUT = 20.0  # generous default deadline for anything that should be "prompt"


class _Deadline:
    def __init__(self, timeout: float, what: str) -> None:
        self.timeout = timeout
        self.what = what
        self.end = time.monotonic() + timeout

    def check(self) -> None:
        if time.monotonic() > self.end:
            raise AssertionError(f"timed out after {self.timeout}s waiting for {self.what}")


async def wait_until(
    predicate: Callable[[], Any | Awaitable[Any]],
    *,
    timeout: float = TIMEOUT,
    interval: float = 0.02,
    what: str = "condition",
) -> Any:
    """Poll ``predicate`` (sync or async) until it returns something truthy, and return that."""
    deadline = _Deadline(timeout, what)
    while True:
        result = predicate()
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            result = await result
        if result:
            return result
        deadline.check()
        await asyncio.sleep(interval)


def wait_for(
    predicate: Callable[[], Any],
    *,
    timeout: float = TIMEOUT,
    interval: float = 0.02,
    what: str = "condition",
) -> Any:
    """Blocking ``wait_until`` for synchronous code (Playwright tests, process start-up)."""
    deadline = _Deadline(timeout, what)
    while True:
        result = predicate()
        if result:
            return result
        deadline.check()
        time.sleep(interval)
