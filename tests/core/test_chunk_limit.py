"""Gap notices count in max_chunk_bytes: a resume that opens with many gaps does not get a
chunk of max_chunk_bytes of events on top of them (issue: a 64-topic resume with a long id)."""

from __future__ import annotations

from ssehub import Hub, Settings


async def test_gap_notices_count_in_the_chunk_limit() -> None:
    limit = 2000
    async with Hub(settings=Settings(heartbeat=3600, max_chunk_bytes=limit, history_size=2)) as hub:
        topics = [f"t{i}" for i in range(8)]
        for i in range(40):  # history_size 2: the early events are evicted from every topic
            await hub.publish(topics[i % 8], "x" * 100)
        # one topic: its gap, then events, within the limit together
        single = hub.subscribe(topics[0], last_event_id=f"{hub.epoch}-1")
        chunk = single.poll()
        assert chunk is not None and chunk.startswith(b"event: gap\n")
        single.close()
        # several topics: eight gaps, then as many events as fit beside them
        many = hub.subscribe(topics, last_event_id=f"{hub.epoch}-1")
        chunk = many.poll()
        assert chunk is not None and chunk.count(b"event: gap\n") == 8
        gaps = chunk[: chunk.rindex(b"event: gap\n")]
        assert len(chunk) <= limit + 200, (len(gaps), len(chunk))  # one event may overshoot
        rest = many.poll()
        assert rest is not None and rest.count(b"data: ") >= 1  # the remaining events follow
        many.close()
