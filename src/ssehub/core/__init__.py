"""The HTTP-free hub: positions, bounded topic logs, subscriptions, the broker protocol."""

from __future__ import annotations

from ..errors import SlowConsumer, SubscriptionClosed
from .broker import Broker, MemoryBroker, Prepared, Sink
from .gaps import GapReason, gap_event
from .hub import Hub, HubLimits
from .log import TopicLog
from .positions import EARLIEST, Position, format_id, parse_id
from .subscription import Subscription
from .topic import Topic

__all__ = [
    "EARLIEST",
    "Broker",
    "GapReason",
    "Hub",
    "HubLimits",
    "MemoryBroker",
    "Position",
    "Prepared",
    "Sink",
    "SlowConsumer",
    "Subscription",
    "SubscriptionClosed",
    "Topic",
    "TopicLog",
    "format_id",
    "gap_event",
    "parse_id",
]
