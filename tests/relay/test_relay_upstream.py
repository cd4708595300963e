"""The upstream client over real sockets: fixtures served in odd pieces, errors, time-outs, drops."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import httpx
import pytest

from ssehub.config import Settings
from ssehub.relay import Out, Provider, Upstream
from ssehub.relay.clients import PER_CLIENT, ClientPool
from ssehub.relay.mapping import merge_texts
from tests.support.upstream import RawResponse, RawUpstream, UpstreamRequest, delta, sse

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "upstream"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))
MESSAGES = [{"role": "user", "content": "hi"}]


async def collect(upstream: Upstream, provider: Provider, **kw: Any) -> list[Out]:
    out: list[Out] = []
    async for batch in upstream.stream(provider, "m", MESSAGES, **kw):
        out += batch
    return out


def flat(outs: list[Out]) -> list[list[Any]]:
    """Merge consecutive texts, the form that does not depend on how bytes were cut."""
    return [[o.event, o.data] for o in merge_texts(outs)]


def settings(**kw: Any) -> Settings:
    return Settings(**{"upstream_connect_timeout": 2.0, "upstream_read_timeout": 5.0, **kw})


@pytest.mark.parametrize("name", sorted(EXPECTED["streams"]))
async def test_fixture_streams_over_http_in_random_pieces(name: str) -> None:
    data = (FIXTURES / name).read_bytes()
    rng = random.Random(name)

    async def script(resp: RawResponse, req: UpstreamRequest) -> None:
        await resp.start()
        i = 0
        while i < len(data):
            n = rng.randint(1, 200)
            await resp.chunk(data[i : i + n])
            i += n
        await resp.end()
        if name == "dropped_midstream.sse":
            resp.writer.close()

    async with RawUpstream(script) as up, Upstream(settings()) as client:
        out = await collect(client, Provider("p", up.base_url, api_key="sk-test", params={"top_p": 0.5}))
        expected = [Out(e, d) for e, d in EXPECTED["streams"][name]]
        assert flat(out) == flat(expected)
        req = up.requests[0]
        assert req.path == "/v1/chat/completions"
        assert req.headers["authorization"] == "Bearer sk-test"
        assert req.json() == {"top_p": 0.5, "model": "m", "messages": MESSAGES, "stream": True}


@pytest.mark.parametrize("name", sorted(EXPECTED["errors"]))
async def test_error_answers(name: str) -> None:
    case = EXPECTED["errors"][name]

    async def script(resp: RawResponse, req: UpstreamRequest) -> None:
        await resp.whole(case["status"], (FIXTURES / "errors" / name).read_bytes(), case["content_type"])

    async with RawUpstream(script) as up, Upstream(settings()) as client:
        out = await collect(client, Provider("p", up.base_url))
        assert [[o.event, o.data] for o in out] == [case["expect"]]


async def test_connection_dropped_mid_body_is_an_error() -> None:
    async def script(resp: RawResponse, req: UpstreamRequest) -> None:
        await resp.start()
        await resp.chunk(sse(delta(content="Hel"), delta(content="lo")))
        resp.writer.transport.abort()  # no terminating chunk: a broken connection

    async with RawUpstream(script) as up, Upstream(settings()) as client:
        out = await collect(client, Provider("p", up.base_url))
        assert flat(out) == [["content", {"text": "Hello"}], ["error", {
            "message": "upstream closed the connection before the answer was complete", "status": None}]]


async def test_read_timeout() -> None:
    async def script(resp: RawResponse, req: UpstreamRequest) -> None:
        await resp.start()
        await resp.chunk(b": keep-alive\n\n" + sse(delta(content="a")))

    async with RawUpstream(script) as up, Upstream(settings(upstream_read_timeout=0.2)) as client:
        out = await collect(client, Provider("p", up.base_url))
        assert out[-1] == Out("error", {"message": "127.0.0.1 sent nothing for 0.2 s", "status": None})
        await asyncio.wait_for(up.requests[0].disconnected.wait(), 1)


async def test_connect_refused_and_connect_timeout() -> None:
    async with RawUpstream(lambda r, q: asyncio.sleep(0)) as up:
        url = up.base_url
    async with Upstream(settings()) as client:  # the port is closed now
        out = await collect(client, Provider("p", url))
        assert out == [Out("error", {"message": "could not connect to 127.0.0.1", "status": None})]

    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    async with Upstream(settings(), transport=httpx.MockTransport(timeout)) as client:
        out = await collect(client, Provider("p", "https://api.example.com/v1"))
        assert out == [Out("error", {"message": "timed out connecting to api.example.com after 2 s",
                                     "status": None})]


async def test_non_streamed_json_answer() -> None:
    body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "whole",
                                                 "reasoning_content": "r"}, "finish_reason": "stop"}]}

    async def script(resp: RawResponse, req: UpstreamRequest) -> None:
        await resp.whole(200, json.dumps(body).encode())

    async with RawUpstream(script) as up, Upstream(settings()) as client:
        out = await collect(client, Provider("p", up.base_url))
        assert flat(out) == [["reasoning", {"text": "r"}], ["content", {"text": "whole"}],
                             ["done", {"finish_reason": "stop"}]]


async def test_key_echoed_by_upstream_is_scrubbed() -> None:
    key = "sk-very-secret-key-123456"

    async def script(resp: RawResponse, req: UpstreamRequest) -> None:
        await resp.whole(401, json.dumps({"error": {"message": f"bad key {key}"}}).encode())

    async with RawUpstream(script) as up, Upstream(settings()) as client:
        out = await collect(client, Provider("p", up.base_url, api_key=key), secrets=[key])
        assert out == [Out("error", {"message": "bad key ***", "status": 401})]


async def test_cancelling_the_consumer_closes_the_connection_at_once() -> None:
    async def script(resp: RawResponse, req: UpstreamRequest) -> None:
        await resp.start()
        await resp.chunk(sse(delta(content="a")))

    async with RawUpstream(script) as up, Upstream(settings()) as client:
        got = asyncio.Event()

        async def consume() -> None:
            async for _ in client.stream(Provider("p", up.base_url), "m", MESSAGES):
                got.set()

        task = asyncio.get_running_loop().create_task(consume())
        await asyncio.wait_for(got.wait(), 5)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        task.cancel()
        await asyncio.wait_for(up.requests[0].disconnected.wait(), 1)
        assert up.requests[0].disconnected_at is not None
        assert up.requests[0].disconnected_at - t0 < 0.1


async def test_closing_the_stream_between_batches_closes_the_connection_at_once() -> None:
    """The consumer is busy (publishing) when it is stopped: the generator sits at ``yield``."""

    async def script(resp: RawResponse, req: UpstreamRequest) -> None:
        await resp.start()
        await resp.chunk(sse(delta(content="a")))

    async with RawUpstream(script) as up, Upstream(settings()) as client:
        stream = client.stream(Provider("p", up.base_url), "m", MESSAGES)
        assert await anext(stream) == [Out("content", {"text": "a"})]
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await stream.aclose()
        await asyncio.wait_for(up.requests[0].disconnected.wait(), 1)
        assert up.requests[0].disconnected_at is not None
        assert up.requests[0].disconnected_at - t0 < 0.1


async def test_client_pool_grows_only_under_concurrency() -> None:
    made: list[httpx.AsyncClient] = []

    def factory() -> httpx.AsyncClient:
        made.append(httpx.AsyncClient())
        return made[-1]

    pool = ClientPool(factory, max_requests=3 * PER_CLIENT)
    first = [pool.acquire() for _ in range(PER_CLIENT)]
    assert pool.size == 1 and {c for _, c in first} == {made[0]}
    slot, client = pool.acquire()  # the first client is full: a second one
    assert pool.size == 2 and client is made[1]
    pool.release(slot)
    for i, _ in first[:4]:
        pool.release(i)
    assert pool.acquire()[1] is made[1]  # the least busy
    for _ in range(4 * PER_CLIENT):
        pool.acquire()
    assert pool.size == 3  # never more than max_requests / PER_CLIENT
    await pool.aclose()
    assert all(c.is_closed for c in made)
    single = ClientPool(factory, max_requests=1000, single=True)
    for _ in range(100):
        single.acquire()
    assert single.size == 1
    await single.aclose()
