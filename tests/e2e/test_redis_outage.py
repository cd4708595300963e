"""Redis killed (-9) under load and restarted: 3 `ssehub serve` processes × 50 subscribers, a
publisher at a steady rate. Publishes during the outage answer 503 promptly; subscribers stay
connected; afterwards, with `appendonly yes` + `appendfsync always`, every acknowledged event
reaches every subscriber once and in order; without persistence Redis comes back empty, the
hub moves to a new larger epoch and every subscriber gets `gap` (reason `reset`) first — ids
never go backwards and nothing is lost silently. Bounded: ~1,600 events, about 10 s a mode.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest

from ssehub.core import Position, parse_id
from tests.support.fixtures import Serve
from tests.support.redis import RedisServer
from tests.support.serve import ServeProcess
from tests.support.sse import SSEStream, gap_info, subscribe_target
from tests.support.wait import wait_until

PER_PROCESS = 50
BEFORE, AFTER = 800, 800  # events published before the kill and after the restart
RATE = 300.0  # events per second
END = "end-of-test"

pytestmark = pytest.mark.slow


async def steady(http: httpx.AsyncClient, procs: list[ServeProcess], n: int, tag: str,
                 acked: list[str]) -> None:
    """Publish n events at RATE, round robin over the processes; keep the acknowledged ids."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(n):
        response = await http.post(procs[i % 3].url + "/publish", json={"topic": "load", "data": f"{tag}{i}"})
        assert response.status_code == 200, response.text
        acked.append(response.json()["id"])
        delay = start + (i + 1) / RATE - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)


def pos(ident: str | None) -> Position:
    p = parse_id(ident or "")
    assert p is not None, ident
    return p


@pytest.mark.parametrize("persistence", ["none", "aof-always"])
async def test_kill_redis_under_load_then_restart(serve: Serve, http: httpx.AsyncClient,
                                                 sse_streams: list[SSEStream], persistence: str) -> None:
    with RedisServer(appendonly=persistence == "aof-always", appendfsync="always") as redis:
        namespace = "outage-" + uuid.uuid4().hex[:8]
        # a generous deadline: on a busy 2-core machine a healthy Redis call can take most of a
        # second, and this test is about a real outage (refused connections answer at once)
        args = ("--broker", redis.url, "--namespace", namespace, "--broker-timeout", "3")
        procs = list(await asyncio.gather(*(serve(*args) for _ in range(3))))
        for p in procs:
            for _ in range(PER_PROCESS):
                stream = await SSEStream.open(p.port, subscribe_target("load"), keep_raw=False)
                assert stream.status == 200
                sse_streams.append(stream)
        def ended(s: SSEStream) -> bool:
            return bool(s.events) and s.events[-1].data == END

        readers = [asyncio.create_task(s.read_until(ended, timeout=90)) for s in sse_streams]

        acked: list[str] = []
        await steady(http, procs, BEFORE, "b", acked)
        redis.kill()
        for p in procs:  # during the outage: 503 within a bounded time, never a hang
            t0 = time.monotonic()
            response = await http.post(p.url + "/publish", json={"topic": "load", "data": "refused"})
            assert response.status_code == 503 and "error" in response.json()
            assert time.monotonic() - t0 < 6.0  # within about broker_timeout: never a hang
        assert (await http.get(procs[0].url + "/healthz")).status_code == 503
        redis.start()

        async def healthy() -> bool:  # every process: publishes go round robin over all three
            statuses = [(await http.get(p.url + "/healthz")).status_code for p in procs]
            return statuses == [200, 200, 200]

        await wait_until(healthy, timeout=20, interval=0.1, what="the hubs to see Redis come back")
        restart_at = len(acked)
        await steady(http, procs, AFTER, "a", acked)
        end = (await http.post(procs[0].url + "/publish", json={"topic": "load", "data": END})).json()["id"]
        acked.append(end)
        await asyncio.gather(*readers)

        for stream in sse_streams:
            events = [e for e in stream.events if e.data]
            gaps = [i for i, e in enumerate(events) if e.event == "gap"]
            real = [e for e in events if e.event != "gap"]
            positions = [pos(e.id) for e in real]
            assert positions == sorted(positions) and len(set(positions)) == len(positions)  # never backwards
            got = [e.id for e in real]
            if persistence == "aof-always":
                assert gaps == []
                assert set(acked) <= set(got)  # every acknowledged event, once, in order
            else:
                assert len(gaps) == 1 and gap_info(events[gaps[0]])["reason"] == "reset"
                before, after = got[:gaps[0]], got[gaps[0]:]
                assert before == acked[:len(before)]  # before the gap: a prefix, nothing skipped
                assert after == acked[restart_at:]  # after it: everything published since
                assert pos(after[0]).epoch > pos(before[-1]).epoch
        for p in procs:
            assert "redis broker back after" in p.log()
            assert p.log().count("redis broker unreachable") == 1  # one line per outage
