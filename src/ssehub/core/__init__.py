"""The HTTP-free hub: positions, bounded topic logs, subscriptions."""

from __future__ import annotations

from .broker import Broker, MemoryBroker
from .hub import Hub
from .log import TopicLog
from .positions import EARLIEST, Position, format_id, parse_id
from .subscription import GapReason, SlowConsumer, Subscription, SubscriptionClosed

__all__ = [
    "EARLIEST",
    "Broker",
    "GapReason",
    "Hub",
    "MemoryBroker",
    "Position",
    "SlowConsumer",
    "Subscription",
    "SubscriptionClosed",
    "TopicLog",
    "format_id",
    "parse_id",
]
