"""SPEC §6, generations across processes: two or three real `ssehub serve` on one Redis, an
upstream the test controls. A generation runs where ``POST /chat`` arrived; stop, readers,
resume and the owner's death reach it from any process."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis

from tests.support.fixtures import Serve, redis_server  # noqa: F401
from tests.support.redis import RedisServer
from tests.support.serve import ServeProcess
from tests.support.sse import SSEStream, subscribe_target
from tests.support.upstream import RawResponse, RawUpstream, UpstreamRequest, delta, sse
from tests.support.wait import wait_until

BOUND = 15.0  # seconds any awaited effect may take at most (never a timing assertion)


async def first_then_stall(resp: RawResponse, request: UpstreamRequest) -> None:
    """One token, then nothing: the generation runs until someone stops it."""
    await resp.start()
    await resp.chunk(sse(delta(content="hello")))


@pytest.fixture
async def upstream() -> AsyncIterator[RawUpstream]:
    async with RawUpstream(first_then_stall) as up:
        yield up


@pytest.fixture
def hub_args(redis_server: RedisServer, upstream: RawUpstream) -> list[str]:  # noqa: F811
    return ["--broker", redis_server.url, "--namespace", "gen-" + uuid.uuid4().hex[:10],
            "--llm-base-url", upstream.base_url, "--llm-model", "m", "--llm-api-key", "k"]


async def start_chat(http: httpx.AsyncClient, proc: ServeProcess) -> str:
    response = await http.post(proc.url + "/chat", json={"messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def read_to_terminal(stream: SSEStream) -> None:
    await stream.read_until(lambda s: any(e.event in ("done", "error") for e in s.events),
                            timeout=BOUND, what="the generation's terminal event")


async def test_delete_on_another_process_closes_the_upstream_call(
        serve: Serve, hub_args: list[str], upstream: RawUpstream, http: httpx.AsyncClient,
        sse_streams: list[SSEStream]) -> None:
    a, b = await asyncio.gather(serve(*hub_args), serve(*hub_args))
    gid = await start_chat(http, a)
    reader = await SSEStream.open(b.port, subscribe_target(f"chat/{gid}", last_event_id="earliest"))
    sse_streams.append(reader)
    await asyncio.wait_for(upstream.arrived.wait(), BOUND)
    stop = await http.delete(f"{b.url}/chat/{gid}")
    assert stop.status_code == 200, stop.text
    assert stop.json() == {"id": gid, "finish_reason": "cancelled"}
    await asyncio.wait_for(upstream.requests[0].disconnected.wait(), BOUND)
    await read_to_terminal(reader)
    done = [e for e in reader.events if e.event == "done"]
    assert [json.loads(e.data) for e in done] == [{"finish_reason": "cancelled"}]
    # stopped once: now unknown as running anywhere
    again = await http.delete(f"{a.url}/chat/{gid}")
    assert again.status_code == 404


async def test_a_reader_on_another_process_keeps_the_generation_past_its_grace(
        serve: Serve, hub_args: list[str], upstream: RawUpstream, http: httpx.AsyncClient,
        sse_streams: list[SSEStream]) -> None:
    grace = ["--chat-grace", "1", "--generation-lease", "1"]
    a, b = await asyncio.gather(serve(*hub_args, *grace), serve(*hub_args, *grace))
    gid = await start_chat(http, a)
    reader = await SSEStream.open(b.port, subscribe_target(f"chat/{gid}", last_event_id="earliest"))
    sse_streams.append(reader)
    await asyncio.wait_for(upstream.arrived.wait(), BOUND)
    await reader.read_until(lambda s: any(e.event == "content" for e in s.events), timeout=BOUND)
    # three grace periods pass with the only reader on B: the owner A keeps the call open
    await asyncio.sleep(3.0)
    assert not upstream.requests[0].disconnected.is_set(), "cancelled although B had a reader"
    # the last reader anywhere leaves: after the grace period the owner cancels
    await reader.close()
    await asyncio.wait_for(upstream.requests[0].disconnected.wait(), BOUND)
    late = await SSEStream.open(a.port, subscribe_target(f"chat/{gid}", last_event_id="earliest"))
    sse_streams.append(late)
    await read_to_terminal(late)
    assert json.loads(late.events[-1].data) == {"finish_reason": "cancelled"}


async def test_readers_get_one_error_when_the_owner_dies(
        serve: Serve, hub_args: list[str], upstream: RawUpstream, http: httpx.AsyncClient,
        sse_streams: list[SSEStream]) -> None:
    lease = ["--generation-lease", "1"]
    a, b, c = await asyncio.gather(*(serve(*hub_args, *lease) for _ in range(3)))
    gid = await start_chat(http, a)
    readers = []
    for proc in (b, c):
        stream = await SSEStream.open(proc.port, subscribe_target(f"chat/{gid}", last_event_id="earliest"))
        sse_streams.append(stream)
        readers.append(stream)
    for stream in readers:
        await stream.read_until(lambda s: any(e.event == "content" for e in s.events), timeout=BOUND)
    a.send_signal(signal.SIGKILL)
    for stream in readers:
        await read_to_terminal(stream)
    await asyncio.sleep(2.0)  # two more lease periods: nobody publishes a second end
    for stream in readers:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(stream.read_some(), 0.2)
        ends = [e for e in stream.events if e.event in ("done", "error")]
        assert len(ends) == 1
        assert ends[0].event == "error"
        assert "generation lost" in json.loads(ends[0].data)["message"]
    assert readers[0].events[-1].id == readers[1].events[-1].id  # one event, seen by both
    status = await http.delete(f"{b.url}/chat/{gid}")
    assert status.status_code == 404


async def test_chat_stream_resumes_on_another_process_without_a_second_upstream_call(
        serve: Serve, hub_args: list[str], upstream: RawUpstream, http: httpx.AsyncClient,
        sse_streams: list[SSEStream]) -> None:
    a, b = await asyncio.gather(serve(*hub_args), serve(*hub_args))
    first = await SSEStream.open(a.port, "/chat/stream?prompt=hi")
    sse_streams.append(first)
    await first.read_until(lambda s: any(e.event == "content" for e in s.events), timeout=BOUND)
    last_id = [e.id for e in first.events if e.id][-1]
    assert last_id is not None
    gid = last_id.split("/", 1)[0]
    await first.close()
    again = await SSEStream.open(b.port, "/chat/stream", headers={"Last-Event-ID": last_id})
    sse_streams.append(again)
    assert again.status == 200, again.body
    stop = await http.delete(f"{b.url}/chat/{gid}")
    assert stop.status_code == 200
    await read_to_terminal(again)
    assert [e.event for e in again.events] == ["done"]  # only what came after the resume id
    assert all((e.id or "").startswith(gid + "/") for e in again.events)
    assert len(upstream.requests) == 1


async def test_finished_generation_topics_expire_in_redis(
        serve: Serve, hub_args: list[str], redis_server: RedisServer, upstream: RawUpstream,  # noqa: F811
        http: httpx.AsyncClient) -> None:
    a = await serve(*hub_args, "--generation-ttl", "120")
    gid = await start_chat(http, a)
    await asyncio.wait_for(upstream.arrived.wait(), BOUND)
    assert (await http.delete(f"{a.url}/chat/{gid}")).status_code == 200
    namespace = hub_args[hub_args.index("--namespace") + 1]
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        async def expiring() -> bool:
            ttl = await client.ttl(f"{{{namespace}}}:t:chat/{gid}")
            record = await client.ttl(f"{{{namespace}}}:gen:{gid}")
            return bool(0 < ttl <= 120 and 0 < record <= 120)

        await wait_until(expiring, timeout=BOUND, what="the finished generation to get its TTL")
    finally:
        await client.aclose()


async def test_an_owner_that_stalls_past_its_lease_stops_without_a_second_end(
        serve: Serve, hub_args: list[str], upstream: RawUpstream, http: httpx.AsyncClient,
        sse_streams: list[SSEStream]) -> None:
    """A GC pause or a frozen VM is not death: B declares the generation lost; when A wakes
    up it must stop (closing the upstream call) and publish nothing more."""
    lease = ["--generation-lease", "1"]
    a, b = await asyncio.gather(serve(*hub_args, *lease), serve(*hub_args, *lease))
    gid = await start_chat(http, a)
    reader = await SSEStream.open(b.port, subscribe_target(f"chat/{gid}", last_event_id="earliest"))
    sse_streams.append(reader)
    await reader.read_until(lambda s: any(e.event == "content" for e in s.events), timeout=BOUND)
    a.send_signal(signal.SIGSTOP)
    try:
        await read_to_terminal(reader)  # B's "generation lost"
    finally:
        a.send_signal(signal.SIGCONT)
    await asyncio.wait_for(upstream.requests[0].disconnected.wait(), BOUND)  # A stopped the call
    await asyncio.sleep(1.0)
    ends = [e for e in reader.events if e.event in ("done", "error")]
    assert [e.event for e in ends] == ["error"]
    assert reader.events[-1].event == "error", [e.event for e in reader.events]


async def slow_tokens(resp: RawResponse, request: UpstreamRequest) -> None:
    """Twenty tokens over about four seconds, then a normal end."""
    await resp.start()
    for i in range(20):
        await resp.chunk(sse(delta(content=f"t{i} ")))
        await asyncio.sleep(0.2)
    await resp.chunk(sse(delta(finish="stop"), "[DONE]"))


async def test_a_redis_blip_does_not_end_a_generation(
        serve: Serve, redis_server: RedisServer, http: httpx.AsyncClient,  # noqa: F811
        sse_streams: list[SSEStream]) -> None:
    async with RawUpstream(slow_tokens) as up:
        args = ["--broker", redis_server.url, "--namespace", "blip-" + uuid.uuid4().hex[:8],
                "--llm-base-url", up.base_url, "--llm-model", "m", "--llm-api-key", "k"]
        a = await serve(*args)
        gid = await start_chat(http, a)
        reader = await SSEStream.open(a.port, subscribe_target(f"chat/{gid}", last_event_id="earliest"))
        sse_streams.append(reader)
        await reader.read_until(lambda s: sum(e.event == "content" for e in s.events) >= 3, timeout=BOUND)
        assert redis_server.proc is not None
        redis_server.proc.send_signal(signal.SIGSTOP)  # Redis answers nothing for 2 s
        await asyncio.sleep(2.0)
        redis_server.proc.send_signal(signal.SIGCONT)
        await read_to_terminal(reader)
        ends = [e for e in reader.events if e.event in ("done", "error")]
        assert len(ends) == 1 and ends[0].event == "done", [(e.event, e.data) for e in ends]
        assert json.loads(ends[0].data) == {"finish_reason": "stop"}
        text = "".join(json.loads(e.data)["text"] for e in reader.events if e.event == "content")
        assert text == "".join(f"t{i} " for i in range(20))  # every token, once, in order


async def test_a_long_redis_outage_still_ends_the_generation_once(
        serve: Serve, redis_server: RedisServer, http: httpx.AsyncClient,  # noqa: F811
        sse_streams: list[SSEStream]) -> None:
    """Redis frozen longer than the generation may wait: the generation ends, and its one
    terminal event reaches the readers as soon as Redis answers again (never an endless wait)."""
    async with RawUpstream(slow_tokens) as up:
        args = ["--broker", redis_server.url, "--namespace", "long-" + uuid.uuid4().hex[:8],
                "--llm-base-url", up.base_url, "--llm-model", "m", "--llm-api-key", "k",
                "--generation-lease", "1"]
        a = await serve(*args)
        gid = await start_chat(http, a)
        reader = await SSEStream.open(a.port, subscribe_target(f"chat/{gid}", last_event_id="earliest"))
        sse_streams.append(reader)
        await reader.read_until(lambda s: sum(e.event == "content" for e in s.events) >= 2, timeout=BOUND)
        assert redis_server.proc is not None
        redis_server.proc.send_signal(signal.SIGSTOP)
        await asyncio.sleep(3.0)  # > generation_lease: the generation gives up on this token
        redis_server.proc.send_signal(signal.SIGCONT)
        await read_to_terminal(reader)
        await asyncio.sleep(1.0)
        ends = [e for e in reader.events if e.event in ("done", "error")]
        assert len(ends) == 1, [(e.event, e.data) for e in ends]
        assert ends[0].event == "error" and "unreachable" in json.loads(ends[0].data)["message"]
