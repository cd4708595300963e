"""GET /metrics on a real ``ssehub serve``: the values move with publishes, subscriptions,
refused requests and generations (parsed with prometheus-client's own parser)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from tests.support.fixtures import Serve
from tests.support.serve import ServeProcess
from tests.support.sse import SSEStream, subscribe_target
from tests.support.upstream import RawResponse, RawUpstream, UpstreamRequest
from tests.support.wait import wait_until

from .scrape import Samples, scrape, value


async def scrape_until(http: httpx.AsyncClient, server: ServeProcess, check: Callable[[Samples], bool],
                       what: str) -> Samples:
    async def once() -> Samples | None:
        samples = await scrape(http, server.url)
        return samples if check(samples) else None

    result: Samples = await wait_until(once, what=what, interval=0.05)
    return result


async def read_sse_until(http: httpx.AsyncClient, url: str, last: str, **kw: Any) -> str:
    """GET an SSE URL and read it until an ``event: <last>`` line arrives."""
    text = ""
    async with http.stream("GET", url, **kw) as resp:
        assert resp.status_code == 200
        async for piece in resp.aiter_text():
            text += piece
            if f"event: {last}\n" in text:
                break
    return text


async def test_metrics_move_with_streams_publishes_and_refusals(
        serve: Serve, http: httpx.AsyncClient, sse_streams: list[SSEStream]) -> None:
    server = await serve("--max-event-bytes", "2000")
    before = await scrape(http, server.url)
    assert value(before, "ssehub_connections") == 0
    assert value(before, "ssehub_subscriptions") == 0
    assert ("ssehub_events_published_total", ()) in before
    assert not [name for name, labels in before if any(k == "topic" for k, _ in labels)]

    stream = await SSEStream.open(server.port, subscribe_target(["m/a", "m/b"]))
    sse_streams.append(stream)
    assert stream.status == 200
    await scrape_until(http, server, lambda s: value(s, "ssehub_connections") == 1
                       and value(s, "ssehub_subscriptions") == 2, "one stream of two topics")

    for body in ({"topic": "m/a", "data": "1"}, {"topic": ["m/a", "m/b"], "data": "2"},
                 {"topic": "m/b", "data": "3"}):
        assert (await http.post(server.url + "/publish", json=body)).status_code == 200
    events = await stream.read_events(3)
    assert [e.data for e in events] == ["1", "2", "3"]

    # refused: no topic (400), too large (413), cross-site (403), unknown generation (404)
    bad = await http.post(server.url + "/publish", json={"data": "x"})
    big = await http.post(server.url + "/publish", json={"topic": "m/a", "data": "x" * 5000})
    cross = await http.post(server.url + "/publish", json={"topic": "m/a", "data": "x"},
                            headers={"Origin": "http://evil.example"})
    unknown = await http.delete(server.url + "/chat/nope")
    assert [r.status_code for r in (bad, big, cross, unknown)] == [400, 413, 403, 404]

    after = await scrape(http, server.url)
    delta = value(after, "ssehub_events_published_total") - value(before, "ssehub_events_published_total")
    assert delta == 3  # one per event, whatever its number of topics
    assert value(after, "ssehub_stream_writes_total") >= 2  # the opening, then the events
    assert value(after, "ssehub_stream_bytes_total") >= len(stream.raw)
    for status in ("400", "413", "403"):
        assert value(after, "ssehub_publish_errors_total", status=status) == 1, status
    assert value(after, "ssehub_rejected_requests_total", reason="bad_request") == 1
    assert value(after, "ssehub_rejected_requests_total", reason="limit") == 1
    assert value(after, "ssehub_rejected_requests_total", reason="origin") == 1
    assert value(after, "ssehub_rejected_requests_total", reason="not_found") == 1
    assert value(after, "process_resident_memory_bytes") > 0

    await stream.close()
    await scrape_until(http, server, lambda s: value(s, "ssehub_connections") == 0
                       and value(s, "ssehub_subscriptions") == 0, "the stream to be gone")


async def test_generation_metrics_and_relay_log_lines(serve: Serve, http: httpx.AsyncClient) -> None:
    server = await serve("--demo-tokens-per-second", "2000")
    text = await read_sse_until(http, server.url + "/chat/stream", "done", params={"prompt": "hi"})
    assert "event: content" in text

    def finished(s: Samples) -> bool:
        return value(s, "ssehub_generations_total", outcome="done") == 1
    samples = await scrape_until(http, server, finished, "the generation to be counted")
    assert value(samples, "ssehub_generations_total", outcome="started") == 1
    assert value(samples, "ssehub_generations_total", outcome="error") == 0
    assert value(samples, "ssehub_generations_running") == 0
    assert value(samples, "ssehub_generation_tokens_total") >= text.count("event: content")
    assert value(samples, "ssehub_upstream_ttft_seconds_count") == 1
    assert value(samples, "ssehub_upstream_ttft_seconds_bucket", le="+Inf") == 1
    assert value(samples, "ssehub_upstream_ttft_seconds_sum") > 0
    assert not [k for k in samples if k[0] == "ssehub_upstream_errors_total"]

    # the relay's own lines, at info, under `ssehub serve`
    await wait_until(lambda: "ssehub.relay: generation" in server.log() and " done: " in server.log(),
                     what="the relay's log lines")
    lines = [line for line in server.log().splitlines() if "ssehub.relay" in line]
    assert any(line.startswith("INFO:") and " started: provider=demo model=" in line for line in lines)
    assert any(line.startswith("INFO:") and " done: " in line and " tokens in " in line for line in lines)


async def test_upstream_error_counted_by_kind_and_logged_with_its_status(
        serve: Serve, http: httpx.AsyncClient) -> None:
    async def unavailable(resp: RawResponse, req: UpstreamRequest) -> None:
        await resp.whole(503, json.dumps({"error": {"message": "overloaded, try later"}}).encode())

    async with RawUpstream(unavailable) as up:
        server = await serve("--llm-base-url", up.base_url, "--llm-model", "m")
        started = await http.post(server.url + "/chat", json={"messages": [{"role": "user", "content": "x"}]})
        assert started.status_code == 200, started.text
        text = await read_sse_until(http, server.url + started.json()["events"], "error")
        assert '"status":503' in text

        def failed(s: Samples) -> bool:
            return value(s, "ssehub_generations_total", outcome="error") == 1
        samples = await scrape_until(http, server, failed, "the failed generation to be counted")
        assert value(samples, "ssehub_upstream_errors_total", kind="http_5xx") == 1
        assert value(samples, "ssehub_generations_total", outcome="done") == 0
        assert value(samples, "ssehub_upstream_ttft_seconds_count") == 0

        await wait_until(lambda: "failed: upstream status 503" in server.log(), what="the failure log line")
        line = next(x for x in server.log().splitlines() if "failed: upstream status 503" in x)
        assert line.startswith("WARNING:") and "ssehub.relay" in line and "overloaded, try later" in line
