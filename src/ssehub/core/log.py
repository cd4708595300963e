"""A bounded, append-only log of one topic's encoded frames. Pure: no asyncio, no I/O.

Entries are addressed two ways: by ``seq`` (the hub-wide event number, sparse within one
topic) and by *absolute index* (0 for the first entry ever appended to this log, +1 per
entry). Subscribers keep absolute indexes as cursors: finding "what is new since my cursor"
is a slice, with no search. Eviction (by count and by encoded bytes) moves ``first``;
a cursor below ``first`` has lost events and must be told so (``gap``).

Two operations serve a shared broker (Redis), where the log is a cache of the tail of the
topic's stream: ``prepend`` inserts history loaded from the broker *before* the entries the
live feed already appended (absolute indexes of existing entries do not move, so cursors stay
valid), and ``reset`` drops everything and moves ``first`` past every existing cursor, so
every reader finds itself behind (``reset_index`` tells why: the history was lost).
"""

from __future__ import annotations

from bisect import bisect_right

__all__ = ["TopicLog"]

_COMPACT_AT = 1024  # evicted slots kept before the lists are compacted


class TopicLog:
    __slots__ = (
        "_bytes",
        "_cum_base",
        "base",
        "cum",
        "evicted_seq",
        "frames",
        "max_bytes",
        "max_events",
        "reset_index",
        "seqs",
        "start",
    )

    def __init__(self, max_events: int, max_bytes: int, evicted_seq: int = 0) -> None:
        self.max_events = max_events
        self.max_bytes = max_bytes
        #: highest seq ever evicted from this topic: a resume from below it lost events
        self.evicted_seq = evicted_seq
        self.seqs: list[int] = []
        self.frames: list[bytes] = []
        #: cum[i] = bytes of all frames up to and including list slot i (running total)
        self.cum: list[int] = []
        #: list slot of the oldest retained entry
        self.start = 0
        #: absolute index of list slot 0 (subtract it from an absolute index to get a slot)
        self.base = 0
        self._bytes = 0
        self._cum_base = 0  # running byte total before list slot 0
        #: cursors below this absolute index were cut by ``reset`` (not by falling behind)
        self.reset_index = 0

    # -- positions ------------------------------------------------------------------
    @property
    def first(self) -> int:
        """Absolute index of the oldest retained entry."""
        return self.base + self.start

    @property
    def head(self) -> int:
        """Absolute index the next appended entry will get."""
        return self.base + len(self.seqs)

    @property
    def last_seq(self) -> int:
        return self.seqs[-1] if len(self.seqs) > self.start else self.evicted_seq

    def __len__(self) -> int:
        return len(self.seqs) - self.start

    @property
    def retained_bytes(self) -> int:
        return self._bytes

    def index_after(self, seq: int) -> int:
        """Absolute index of the first retained entry with a seq greater than ``seq``."""
        return self.base + bisect_right(self.seqs, seq, self.start)

    def slot_end(self, lo: int, hi: int, max_bytes: int) -> int:
        """The largest slot end ≤ hi such that frames[lo:end] fit in max_bytes (at least one)."""
        cum = self.cum
        before = cum[lo - 1] if lo else self._cum_base
        if cum[hi - 1] - before <= max_bytes:
            return hi
        return max(lo + 1, bisect_right(cum, before + max_bytes, lo, hi))

    # -- mutation -------------------------------------------------------------------
    def append(self, seq: int, frame: bytes) -> int:
        """Add the newest frame (evicting the oldest past the bounds); returns by how much
        ``retained_bytes`` changed."""
        size = len(frame)
        before = self._bytes
        cum = self.cum
        self.seqs.append(seq)
        self.frames.append(frame)
        cum.append((cum[-1] if cum else self._cum_base) + size)
        self._bytes = before + size
        if len(self.seqs) - self.start > self.max_events or self._bytes > self.max_bytes:
            self._evict()
        return self._bytes - before

    def _evict(self) -> None:
        # Keep at least the newest entry, even when it alone is over max_bytes.
        seqs, frames = self.seqs, self.frames
        last = len(seqs) - 1
        start = self.start
        while start < last and (last + 1 - start > self.max_events or self._bytes > self.max_bytes):
            self._bytes -= len(frames[start])
            self.evicted_seq = seqs[start]
            frames[start] = b""  # release memory now; the slot goes at the next compaction
            start += 1
        self.start = start
        if start >= _COMPACT_AT and start * 2 >= len(seqs):
            self._cum_base = self.cum[start - 1]
            del seqs[:start], frames[:start], self.cum[:start]
            self.base += start
            self.start = 0


    def evict_oldest(self) -> int:
        """Evict the oldest retained entry (even the newest one); return the bytes freed."""
        if self.start >= len(self.seqs):
            return 0
        size = len(self.frames[self.start])
        self._bytes -= size
        self.evicted_seq = self.seqs[self.start]
        self.frames[self.start] = b""
        self.start += 1
        return size

    def prepend(self, entries: list[tuple[int, bytes]], evicted_seq: int) -> None:
        """Insert older history (seqs ascending, all below every retained seq) before the
        retained entries; ``evicted_seq`` is the boundary below it. Indexes do not move."""
        live_seqs, live_frames = self.seqs[self.start:], self.frames[self.start:]
        first = self.first
        self.seqs = [s for s, _ in entries] + live_seqs
        self.frames = [f for _, f in entries] + live_frames
        self.base = first - len(entries)
        self.start = 0
        self._cum_base = 0
        total = 0
        cum = []
        for frame in self.frames:
            total += len(frame)
            cum.append(total)
        self.cum = cum
        self._bytes = total
        self.evicted_seq = max(self.evicted_seq, evicted_seq)
        if len(self.seqs) > self.max_events or self._bytes > self.max_bytes:
            self._evict()

    def reset(self, evicted_seq: int) -> None:
        """Forget every entry; every existing cursor ends up below ``first``."""
        head = self.head
        self.seqs, self.frames, self.cum = [], [], []
        self.start = 0
        self.base = head + 1  # strictly above any cursor, even one at the head
        self._bytes = self._cum_base = 0
        self.evicted_seq = evicted_seq
        self.reset_index = self.base
