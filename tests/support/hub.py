"""Questions to a running hub over HTTP (GET /topics), and a stopwatch for reports."""

from __future__ import annotations

import time

import httpx

from .wait import TIMEOUT, wait_until

__all__ = ["Stopwatch", "subscriber_count", "wait_subscribers"]


async def subscriber_count(http: httpx.AsyncClient, base_url: str, topic: str,
                           headers: dict[str, str] | None = None) -> int:
    """The hub's subscriber count for ``topic`` according to GET /topics (0 when not listed).
    ``headers``: e.g. a token that may list private topics."""
    response = await http.get(base_url + "/topics", headers=headers)
    assert response.status_code == 200, response.text
    for entry in response.json()["topics"]:
        if entry["topic"] == topic:
            return int(entry["subscribers"])
    return 0


async def wait_subscribers(http: httpx.AsyncClient, base_url: str, topic: str, count: int,
                           *, timeout: float = TIMEOUT, headers: dict[str, str] | None = None) -> None:
    async def check() -> bool:
        return await subscriber_count(http, base_url, topic, headers) == count

    await wait_until(check, timeout=timeout, what=f"{count} subscriber(s) on {topic!r}")


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start
