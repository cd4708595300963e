"""Who is subscribed, as a part of the Hub: subscriber counts per topic, the listeners told
of every change (the relay's grace timers), and the topic listing of ``GET /topics``."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from .positions import format_id
from .topic import Topic

__all__ = ["Presence", "PresenceListener"]

#: called with (topic name, its subscriber count now)
PresenceListener = Callable[[str, int], None]


class Presence:
    """Mixed into Hub; the attributes are the Hub's."""

    epoch: int
    _topics: dict[str, Topic]
    _idle: OrderedDict[str, Topic]
    _listeners: list[PresenceListener]

    def add_presence_listener(self, listener: PresenceListener) -> None:
        self._listeners.append(listener)

    def remove_presence_listener(self, listener: PresenceListener) -> None:
        self._listeners.remove(listener)

    def presence(self, topic: Topic, delta: int) -> None:
        """A subscriber of ``topic`` arrived (+1) or left (-1): tell the listeners."""
        topic.subscribers += delta
        if topic.subscribers == 0:
            if self._topics.get(topic.name) is topic:
                self._idle[topic.name] = topic
        elif delta > 0 and topic.subscribers == 1:
            self._idle.pop(topic.name, None)
        for listener in tuple(self._listeners):
            listener(topic.name, topic.subscribers)

    def subscriber_count(self, name: str) -> int:
        topic = self._topics.get(name)
        return topic.subscribers if topic is not None else 0

    def topics(self) -> list[dict[str, object]]:
        """Topics with subscribers or retained events: name, subscribers, last id, retained."""
        out: list[dict[str, object]] = []
        for t in self._topics.values():
            if t.subscribers or len(t.log):
                last = format_id(self.epoch, t.log.last_seq) if len(t.log) else None
                out.append({"topic": t.name, "subscribers": t.subscribers, "last_event_id": last,
                            "retained": len(t.log)})
        return out
