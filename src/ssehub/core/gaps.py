"""``event: gap`` — why a subscriber's continuity broke, as a plain value."""

from __future__ import annotations

import json

from ..wire import Event

__all__ = ["GapReason", "gap_event"]


class GapReason:
    UNKNOWN_ID = "unknown-id"  # not an id this hub makes
    OTHER_EPOCH = "other-epoch"  # from before a restart or data loss: that history is gone
    FUTURE_ID = "future-id"  # an id this hub has not handed out yet
    EVICTED = "evicted"  # the events after the id were evicted from the retained history
    SLOW_CONSUMER = "slow-consumer"  # the subscriber fell behind the retained history
    #: live subscribers, when the broker lost its history (Redis restarted empty, or lost its
    #: last writes) and the hub moved to a new, larger epoch
    RESET = "reset"

    ALL = (UNKNOWN_ID, OTHER_EPOCH, FUTURE_ID, EVICTED, SLOW_CONSUMER, RESET)


def gap_event(topic: str, last_event_id: str | None, reason: str) -> Event:
    """The ``gap`` event sent before a subscriber continues from the oldest retained event."""
    data = json.dumps({"topic": topic, "last_event_id": last_event_id, "reason": reason},
                      ensure_ascii=False, separators=(",", ":"))
    return Event(data, "gap")
