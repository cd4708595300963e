"""Generations on a real Hub against a raw local upstream: stop, grace, shutdown, limits."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from ssehub.config import Settings
from ssehub.core import Hub
from ssehub.errors import CapacityExceeded, NotFound, RateLimited
from ssehub.relay import ChatRequest, Generation, RateLimiter, Relay
from ssehub.wire import Event

from .conftest import RawResponse, RawUpstream, UpstreamRequest, delta, sse

ASK = ChatRequest.from_prompt("hello")


def settings(base_url: str, **kw: Any) -> Settings:
    values: dict[str, Any] = {"llm_base_url": base_url, "llm_model": "m", "chat_grace": 5.0,
                              "upstream_read_timeout": 5.0, "upstream_connect_timeout": 2.0}
    values.update(kw)
    return Settings(**values)


async def topic_events(hub: Hub, topic: str, timeout: float = 5.0) -> list[Event]:
    """Everything in the topic from the start until its terminal event."""
    out: list[Event] = []
    async with asyncio.timeout(timeout):
        async with hub.subscribe(topic, last_event_id="earliest") as sub:
            async for ev in sub:
                out.append(ev)
                if ev.event in ("done", "error"):
                    return out
    return out


def kinds(events: list[Event]) -> list[str]:
    return [e.event or "message" for e in events]


async def slow_stream(resp: RawResponse, req: UpstreamRequest) -> None:
    """Reasoning at once, then nothing: the upstream is still 'thinking'."""
    await resp.start()
    await resp.chunk(b": keep-alive\n\n" + sse(delta(role="assistant", content=None),
                                                delta(reasoning_content="hmm")))


async def quick_stream(resp: RawResponse, req: UpstreamRequest) -> None:
    await resp.start()
    await resp.chunk(sse(delta(content="ok"), delta(finish="stop"), "[DONE]"))
    await resp.end()


@pytest.fixture
async def slow() -> AsyncIterator[RawUpstream]:
    async with RawUpstream(slow_stream) as up:
        yield up


async def first(hub: Hub, topic: str, name: str) -> None:
    async with asyncio.timeout(5), hub.subscribe(topic, last_event_id="earliest") as sub:
        async for ev in sub:
            if ev.event == name:
                return


async def test_stop_closes_the_upstream_within_100ms_and_ends_the_topic(slow: RawUpstream) -> None:
    async with Hub() as hub, Relay(hub, settings(slow.base_url)) as relay:
        gen = await relay.start(ASK, client="1.2.3.4")
        assert len(gen.id) >= 22 and gen.topic == f"chat/{gen.id}"
        await first(hub, gen.topic, "reasoning")
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await relay.stop(gen.id)
        req = slow.requests[0]
        await asyncio.wait_for(req.disconnected.wait(), 1)
        assert req.disconnected_at is not None and req.disconnected_at - t0 < 0.1
        events = await topic_events(hub, gen.topic)
        assert kinds(events) == ["start", "reasoning", "done"]
        assert json.loads(events[0].data) == {"id": gen.id, "model": "m", "provider": "default"}
        assert json.loads(events[-1].data) == {"finish_reason": "cancelled"}
        assert gen.outcome == "cancelled" and gen.cancel_reason == "stop"
        with pytest.raises(NotFound):
            await relay.stop(gen.id)
        with pytest.raises(NotFound):
            await relay.stop("no-such-generation")
        assert relay.status(gen.id) == ("finished", events[-1].id)
        assert relay.stats["cancelled"] == 1


class ManualTimers:
    """The relay's grace timers on a clock the test moves (``Relay(call_later=...)``)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pending: list[ManualTimer] = []

    def call_later(self, delay: float, callback: Callable[[Generation], None],
                   gen: Generation) -> ManualTimer:
        timer = ManualTimer(self.now + delay, callback, gen)
        self.pending.append(timer)
        return timer

    def advance(self, seconds: float) -> None:
        """Move time on, running (in time order) every live timer that falls due."""
        self.now += seconds
        due = sorted((t for t in self.pending if t.when <= self.now), key=lambda t: t.when)
        self.pending = [t for t in self.pending if t.when > self.now]
        for timer in due:
            if not timer.cancelled:
                timer.callback(timer.gen)

    def live(self) -> list[ManualTimer]:
        return [t for t in self.pending if not t.cancelled]


class ManualTimer:
    def __init__(self, when: float, callback: Callable[[Generation], None], gen: Generation) -> None:
        self.when, self.callback, self.gen = when, callback, gen
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


async def test_grace_cancels_after_the_last_reader_leaves(slow: RawUpstream) -> None:
    timers = ManualTimers()
    async with Hub() as hub, Relay(hub, settings(slow.base_url, chat_grace=20.0),
                                   call_later=timers.call_later) as relay:
        gen = await relay.start(ASK)
        await first(hub, gen.topic, "reasoning")  # a reader came, read a little and left
        assert gen.running and gen.grace is not None and len(timers.live()) == 1
        timers.advance(19.9)  # not yet
        await asyncio.sleep(0)
        assert gen.running and gen.cancel_reason is None
        timers.advance(0.2)  # the grace is over: the upstream call is cancelled
        await asyncio.wait_for(slow.requests[0].disconnected.wait(), 5)
        events = await topic_events(hub, gen.topic)
        assert kinds(events) == ["start", "reasoning", "done"]
        assert json.loads(events[-1].data) == {"finish_reason": "cancelled"}
        assert gen.cancel_reason == "grace"


async def test_grace_is_disarmed_by_a_returning_reader() -> None:
    release = asyncio.Event()

    async def script(resp: RawResponse, req: UpstreamRequest) -> None:
        await slow_stream(resp, req)
        await release.wait()
        await resp.chunk(sse(delta(content="done"), delta(finish="stop"), "[DONE]"))
        await resp.end()

    timers = ManualTimers()
    async with RawUpstream(script) as up, Hub() as hub, \
            Relay(hub, settings(up.base_url, chat_grace=20.0), call_later=timers.call_later) as relay:
        gen = await relay.start(ASK)
        sub = hub.subscribe(gen.topic, last_event_id="earliest")  # a reader arrives at once
        sub.close()  # ... leaves: grace armed
        assert len(timers.live()) == 1
        timers.advance(10)
        async with hub.subscribe(gen.topic, last_event_id="earliest"):  # ... and comes back
            assert timers.live() == [] and gen.grace is None  # disarmed
            timers.advance(3600)  # far longer than the grace: nothing is due
            await asyncio.sleep(0)
            assert gen.running
            release.set()
            events = await topic_events(hub, gen.topic)
        assert kinds(events)[-2:] == ["content", "done"]
        assert json.loads(events[-1].data) == {"finish_reason": "stop"}


async def test_nobody_ever_reads_means_cancelled_after_grace(slow: RawUpstream) -> None:
    timers = ManualTimers()
    async with Hub() as hub, Relay(hub, settings(slow.base_url, chat_grace=20.0),
                                   call_later=timers.call_later) as relay:
        gen = await relay.start(ASK)
        assert len(timers.live()) == 1  # armed at once: nobody is reading
        async with asyncio.timeout(5):  # the upstream call is under way
            while not slow.requests:
                await asyncio.sleep(0.01)
        timers.advance(20.0)
        await asyncio.wait_for(gen.task, 5)  # type: ignore[arg-type]
        assert gen.outcome == "cancelled" and gen.cancel_reason == "grace"
        await asyncio.wait_for(slow.requests[0].disconnected.wait(), 5)


async def test_grace_uses_the_running_loop_by_default(slow: RawUpstream) -> None:
    """Without ``call_later`` the grace is a real loop timer (one short one, bounded wait)."""
    async with Hub() as hub, Relay(hub, settings(slow.base_url, chat_grace=0.05)) as relay:
        gen = await relay.start(ASK)
        assert isinstance(gen.grace, asyncio.TimerHandle)
        await asyncio.wait_for(gen.task, 5)  # type: ignore[arg-type]
        assert gen.cancel_reason == "grace"


async def test_shutdown_cancels_running_generations_and_ends_their_topics(slow: RawUpstream) -> None:
    async with Hub() as hub:
        relay = Relay(hub, settings(slow.base_url))
        async with relay:
            gens = [await relay.start(ASK) for _ in range(3)]
            await asyncio.wait_for(_arrivals(slow, 3), 5)
        for gen in gens:
            events = await topic_events(hub, gen.topic)
            assert json.loads(events[-1].data) == {"finish_reason": "cancelled"}
            assert gen.cancel_reason == "shutdown"
        for req in slow.requests:
            await asyncio.wait_for(req.disconnected.wait(), 1)
        with pytest.raises(CapacityExceeded):
            await relay.start(ASK)


async def _arrivals(up: RawUpstream, n: int) -> None:
    while len(up.requests) < n:
        await asyncio.sleep(0.01)


async def test_capacity_limit(slow: RawUpstream) -> None:
    async with Hub() as hub, Relay(hub, settings(slow.base_url, max_generations=2)) as relay:
        a = await relay.start(ASK)
        await relay.start(ASK)
        with pytest.raises(CapacityExceeded):
            await relay.start(ASK)
        await relay.stop(a.id)
        await relay.start(ASK)


async def test_rate_limit_per_client() -> None:
    async with RawUpstream(quick_stream) as up, Hub() as hub, \
            Relay(hub, settings(up.base_url, chat_rate_per_minute=2)) as relay:
        await relay.start(ASK, client="10.0.0.1")
        await relay.start(ASK, client="10.0.0.1")
        with pytest.raises(RateLimited):
            await relay.start(ASK, client="10.0.0.1")
        await relay.start(ASK, client="10.0.0.2")


def test_rate_limiter_refills() -> None:
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0], max_keys=3)
    assert all(limiter.allow("a") for _ in range(60))
    assert not limiter.allow("a")
    now[0] += 1.0
    assert limiter.allow("a") and not limiter.allow("a")
    for key in "bcde":
        assert limiter.allow(key)
    now[0] += 120
    limiter.allow("f")  # over max_keys: full buckets are forgotten
    assert len(limiter._buckets) <= 3
    assert RateLimiter(0).allow("x")


async def test_upstream_error_is_the_terminal_event() -> None:
    async def script(resp: RawResponse, req: UpstreamRequest) -> None:
        await resp.whole(429, b'{"error":{"message":"slow down","code":429}}')

    async with RawUpstream(script) as up, Hub() as hub, Relay(hub, settings(up.base_url)) as relay:
        gen = await relay.start(ASK)
        events = await topic_events(hub, gen.topic)
        assert kinds(events) == ["start", "error"]
        assert json.loads(events[-1].data) == {"message": "slow down", "status": 429}
        assert gen.outcome == "error" and relay.stats["error"] == 1


async def test_one_terminal_event_when_stop_races_the_end() -> None:
    async with RawUpstream(quick_stream) as up, Hub() as hub, Relay(hub, settings(up.base_url)) as relay:
        for spins in range(12):
            gen = await relay.start(ASK)
            for _ in range(spins):
                await asyncio.sleep(0)
            with contextlib.suppress(NotFound):
                await relay.stop(gen.id)
            events = await topic_events(hub, gen.topic)
            assert kinds(events).count("done") + kinds(events).count("error") == 1
            assert kinds(events)[-1] == "done"
            await asyncio.wait_for(gen.task, 2)  # type: ignore[arg-type]
            assert gen.state == "finished"


async def test_usage_and_text_are_relayed_in_order() -> None:
    async def script(resp: RawResponse, req: UpstreamRequest) -> None:
        await resp.start()
        for piece in (delta(reasoning_content="r1"), delta(reasoning_content="r2"), delta(content="c1"),
                      delta(content="c2"), delta(finish="stop"),
                      {"choices": [], "usage": {"total_tokens": 9}}, "[DONE]"):
            await resp.chunk(sse(piece))
            await asyncio.sleep(0.005)
        await resp.end()

    async with RawUpstream(script) as up, Hub() as hub, Relay(hub, settings(up.base_url)) as relay:
        gen = await relay.start(ASK)
        events = await topic_events(hub, gen.topic)
        text = {k: "".join(json.loads(e.data)["text"] for e in events if e.event == k)
                for k in ("reasoning", "content")}
        assert text == {"reasoning": "r1r2", "content": "c1c2"}
        assert kinds(events)[-2:] == ["usage", "done"]
        assert gen.tokens == 4 and gen.first_token is not None
