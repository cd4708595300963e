"""SPEC §2 fan-out: 1,000 subscribers × 1,000 events, every event once, in order, to everyone."""

from __future__ import annotations

import asyncio
import hashlib
import re
import resource

import httpx
import pytest

from tests.support.fixtures import Serve
from tests.support.hub import Stopwatch
from tests.support.serve import ServeProcess
from tests.support.sse import SSEStream, subscribe_target

pytestmark = pytest.mark.both_fronts  # the serve fixture: front=fast and front=asgi

SUBSCRIBERS = 1000
EVENTS = 1000
PUBLISHERS = 4
BATCH = 25


def id_key(ident: str) -> tuple[int, ...]:
    """Digit-aware comparison key (SPEC §2: ids compare digit-aware)."""
    return tuple(int(part) for part in re.findall(r"\d+", ident))


def raise_nofile(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= needed


async def test_thousand_subscribers_thousand_events(serve: Serve, sse_streams: list[SSEStream]) -> None:
    raise_nofile(SUBSCRIBERS + 512)
    hub: ServeProcess = await serve()
    watch = Stopwatch()

    # -- 1,000 subscribers; a 200 response means the hub registered the subscription
    gate = asyncio.Semaphore(100)

    async def open_one(i: int) -> SSEStream:
        async with gate:
            return await SSEStream.open(hub.port, subscribe_target("fan"), keep_raw=False, store=False,
                                        timeout=60)

    streams = await asyncio.gather(*(open_one(i) for i in range(SUBSCRIBERS)))
    sse_streams.extend(streams)
    assert all(s.status == 200 for s in streams)
    opened = watch.elapsed()

    # -- each subscriber reads until it has EVENTS events, folding them into a digest
    async def consume(stream: SSEStream) -> tuple[int, bytes]:
        # The digest covers the exact sequence: a lost, duplicated or reordered event changes it.
        digest = hashlib.blake2b()
        count = 0
        while count < EVENTS:
            events = await stream.read_some()
            if events is None:
                break
            count += len(events)
            digest.update("".join(f"{e.id}\0{e.event}\0{e.data}\n" for e in events).encode())
        return count, digest.digest()

    consumers = [asyncio.create_task(consume(s)) for s in streams]

    # -- a few keep-alive publishers, each sending JSON-array batches
    async def publisher(p: int, client: httpx.AsyncClient) -> list[tuple[str, str]]:
        sent: list[tuple[str, str]] = []
        per = EVENTS // PUBLISHERS
        for start in range(0, per, BATCH):
            datas = [f"p{p}-e{n}-é" for n in range(start, min(per, start + BATCH))]
            body = [{"topic": "fan", "data": d} for d in datas]
            response = await client.post(hub.url + "/publish", json=body)
            assert response.status_code == 200, response.text
            ids = response.json()["ids"]
            assert len(ids) == len(datas)
            sent += zip(ids, datas, strict=True)
        return sent

    async with httpx.AsyncClient(timeout=30) as client:
        batches = await asyncio.gather(*(publisher(p, client) for p in range(PUBLISHERS)))
    published = sorted((pair for batch in batches for pair in batch), key=lambda pair: id_key(pair[0]))
    assert len(published) == EVENTS
    assert len({ident for ident, _ in published}) == EVENTS  # one id per event
    expected = hashlib.blake2b()
    for ident, data in published:
        expected.update(f"{ident}\0None\0{data}\n".encode())
    published_at = watch.elapsed()

    results = await asyncio.wait_for(asyncio.gather(*consumers), timeout=120)
    done = watch.elapsed()
    print(f"\nfan-out: {SUBSCRIBERS} subscribers opened in {opened:.2f}s, {EVENTS} events published by "
          f"{published_at:.2f}s, all delivered by {done:.2f}s")
    short = [i for i, (count, _) in enumerate(results) if count != EVENTS]
    assert not short, f"{len(short)} subscribers got too few events (#{short[0]}: {results[short[0]][0]})"
    wrong = [i for i, (_, digest) in enumerate(results) if digest != expected.digest()]
    assert not wrong, f"{len(wrong)} subscribers got a different sequence of (id, data) than published"
