"""The hub-wide bounds, as a part of the Hub: ``max_topics`` (forget the least recently used
idle topic, O(1) amortised) and ``max_retained_bytes`` (forget idle topics, then evict the
oldest frames of subscribed topics in turn: their readers get a gap, never a silent loss)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence

from .limits import HubLimits
from .topic import Topic

__all__ = ["Bounds"]


class Bounds:
    """Mixed into Hub; the attributes are the Hub's."""

    limits: HubLimits
    stats: dict[str, int | float]
    forgotten_seq: int
    retained_bytes: int
    _topics: dict[str, Topic]
    #: topics nobody subscribes to, least recently used first
    _idle: OrderedDict[str, Topic]
    _sweep: Iterator[Topic] | None
    _durable: bool

    def _forget_idle(self, protect: Sequence[str]) -> bool:
        """Forget the least recently used topic nobody subscribes to, never one named in
        ``protect``. O(1) amortised. False when there is none."""
        idle = self._idle
        for _ in range(len(protect) + 1):
            if not idle:
                return False
            name, topic = idle.popitem(last=False)
            if name in protect:
                idle[name] = topic  # to the back: it is in use right now
                continue
            if not self._durable:  # its history existed only here
                self.forgotten_seq = max(self.forgotten_seq, topic.log.last_seq)
            self.retained_bytes -= topic.log.retained_bytes
            del self._topics[name]
            topic.wake()
            self.stats["topics_forgotten"] += 1
            return True
        return False

    def _shrink(self, protect: Sequence[str]) -> None:
        """Hold max_retained_bytes: forget idle topics first, then evict the oldest frames
        of subscribed topics in turn (their readers get a gap: never a silent loss)."""
        limit = self.limits.max_retained_bytes
        while self.retained_bytes > limit and self._forget_idle(protect):
            pass
        misses = 0
        while self.retained_bytes > limit and misses <= len(self._topics):
            topic = next(self._sweep, None) if self._sweep is not None else None
            if topic is None:
                self._sweep = iter(list(self._topics.values()))
                topic = next(self._sweep, None)
                if topic is None:
                    return
            freed = topic.log.evict_oldest() if self._topics.get(topic.name) is topic else 0
            if freed:
                self.retained_bytes -= freed
                self.stats["frames_evicted_hub_wide"] += 1
                misses = 0
            else:
                misses += 1
