"""The relay's counters behind /metrics: upstream failures by kind (real sockets), and the
time-to-first-token histogram as Prometheus reads it (cumulative buckets, sum, count)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from ssehub.asgi import create_app
from ssehub.config import Settings
from ssehub.relay import ChatRequest, Provider, Upstream
from ssehub.relay.generation import Generation, new_id
from tests.support.upstream import RawResponse, RawUpstream, Script, UpstreamRequest, delta, sse

from .scrape import parse, value
from .test_metrics_access import get

MESSAGES = [{"role": "user", "content": "hi"}]


async def run(script: Script, **settings: Any) -> dict[str, int]:
    """One upstream call against ``script``; the error counts it left."""
    errors: dict[str, int] = {}
    async with RawUpstream(script) as up, Upstream(
            Settings(**{"upstream_connect_timeout": 2.0, "upstream_read_timeout": 5.0, **settings}),
            errors=errors) as client:
        async for _ in client.stream(Provider("p", up.base_url), "m", MESSAGES):
            pass
    return errors


async def ok(resp: RawResponse, req: UpstreamRequest) -> None:
    await resp.start()
    await resp.chunk(sse(delta(content="a"), delta(content="b", finish="stop"), "[DONE]"))
    await resp.end()


async def no_done_line(resp: RawResponse, req: UpstreamRequest) -> None:
    await resp.start()
    await resp.chunk(sse(delta(content="a", finish="stop")))
    await resp.end()
    resp.writer.close()


async def status_401(resp: RawResponse, req: UpstreamRequest) -> None:
    await resp.whole(401, json.dumps({"error": {"message": "bad key"}}).encode())


async def status_502(resp: RawResponse, req: UpstreamRequest) -> None:
    await resp.whole(502, b"<html>bad gateway</html>", "text/html")


async def dropped(resp: RawResponse, req: UpstreamRequest) -> None:
    await resp.start()
    await resp.chunk(sse(delta(content="Hel")))
    resp.writer.transport.abort()


async def midstream_error(resp: RawResponse, req: UpstreamRequest) -> None:
    await resp.start()
    await resp.chunk(sse(delta(content="a"), {"error": {"message": "overloaded", "code": 529}}))


async def silent(resp: RawResponse, req: UpstreamRequest) -> None:
    await resp.start()


@pytest.mark.parametrize(("script", "expected"), [
    (ok, {}),
    (no_done_line, {}),
    (status_401, {"http_4xx": 1}),
    (status_502, {"http_5xx": 1}),
    (dropped, {"dropped": 1}),
    (midstream_error, {"stream_error": 1}),
])
async def test_upstream_failures_by_kind(script: Script, expected: dict[str, int]) -> None:
    assert await run(script) == expected


async def test_read_timeout_and_refused_connection() -> None:
    assert await run(silent, upstream_read_timeout=0.2) == {"read_timeout": 1}
    async with RawUpstream(lambda r, q: asyncio.sleep(0)) as up:
        url = up.base_url
    errors: dict[str, int] = {}
    async with Upstream(Settings(), errors=errors) as client:  # the port is closed now
        async for _ in client.stream(Provider("p", url), "m", MESSAGES):
            pass
    assert errors == {"connect": 1}


async def test_ttft_histogram_is_cumulative_with_sum_and_count() -> None:
    app = create_app(Settings())
    relay = app.state.relay
    firsts = [0.05, 0.5, 0.7, 100.0]
    for first in [*firsts, None]:  # (a generation with no token is not observed)
        gen = Generation(new_id(), Provider("p", "http://127.0.0.1:9/v1"), "m",
                         ChatRequest.from_prompt("hi", None, None))
        gen.first_token, gen.outcome, gen.tokens = first, "done", 3
        relay._finished_cb(gen)
    samples = parse((await get(app, "127.0.0.1"))[2].decode())
    buckets = {le: value(samples, "ssehub_upstream_ttft_seconds_bucket", le=le)
               for le in ("0.1", "0.25", "0.5", "1.0", "60.0", "+Inf")}
    assert buckets == {"0.1": 1, "0.25": 1, "0.5": 2, "1.0": 3, "60.0": 3, "+Inf": 4}
    assert value(samples, "ssehub_upstream_ttft_seconds_count") == 4
    assert value(samples, "ssehub_upstream_ttft_seconds_sum") == pytest.approx(sum(firsts))
    assert value(samples, "ssehub_generations_total", outcome="done") == 5
    assert value(samples, "ssehub_generation_tokens_total") == 15
