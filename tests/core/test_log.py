"""The pure topic log: positions, eviction by count and bytes, compaction, byte-limited slices."""

from __future__ import annotations

from ssehub.core import TopicLog


def fill(log: TopicLog, seqs: range | list[int], size: int = 10) -> None:
    for s in seqs:
        log.append(s, (b"%d:" % s).ljust(size, b"x"))


def test_append_and_positions() -> None:
    log = TopicLog(max_events=100, max_bytes=10_000)
    assert (log.first, log.head, len(log), log.last_seq) == (0, 0, 0, 0)
    fill(log, [3, 7, 9])
    assert (log.first, log.head, len(log), log.last_seq) == (0, 3, 3, 9)
    assert log.index_after(0) == 0
    assert log.index_after(3) == 1
    assert log.index_after(5) == 1
    assert log.index_after(9) == 3


def test_eviction_by_count_records_the_evicted_seq() -> None:
    log = TopicLog(max_events=3, max_bytes=10_000)
    fill(log, range(1, 6))
    assert len(log) == 3
    assert log.first == 2 and log.head == 5
    assert log.evicted_seq == 2
    assert [f.split(b":")[0] for f in log.frames[log.first - log.base:]] == [b"3", b"4", b"5"]


def test_eviction_by_bytes_keeps_at_least_the_newest() -> None:
    log = TopicLog(max_events=100, max_bytes=25)
    fill(log, range(1, 4), size=10)
    assert len(log) == 2 and log.retained_bytes == 20
    log.append(4, b"y" * 100)
    assert len(log) == 1 and log.retained_bytes == 100 and log.evicted_seq == 3


def test_compaction_keeps_absolute_indexes() -> None:
    log = TopicLog(max_events=10, max_bytes=1 << 30)
    fill(log, range(1, 5001))
    assert log.head == 5000 and log.first == 4990
    assert log.base > 0  # compacted at least once
    assert len(log.seqs) < 5000
    assert log.index_after(4995) == 4995
    assert log.seqs[log.index_after(4995) - log.base] == 4996


def test_slot_end_limits_bytes_but_takes_at_least_one() -> None:
    log = TopicLog(max_events=100, max_bytes=1 << 20)
    fill(log, range(1, 11), size=10)
    assert log.slot_end(0, 10, 1000) == 10
    assert log.slot_end(0, 10, 35) == 3
    assert log.slot_end(2, 10, 5) == 3
    fill(log, range(11, 200), size=10)  # evictions and compaction
    lo = log.first - log.base
    assert log.slot_end(lo, log.head - log.base, 25) == lo + 2
