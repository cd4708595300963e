"""The hub's own settings (``HubLimits``) and how published data becomes event text."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..config import Settings
from ..errors import InvalidField

__all__ = ["HubLimits", "encode_data"]


@dataclass(frozen=True, slots=True)
class HubLimits:
    """The settings the hub itself uses (``HubLimits.from_settings(settings)``)."""

    heartbeat: float = 15.0
    history_size: int = 1000
    history_bytes: int = 4 * 1024 * 1024
    max_topics: int = 100_000
    max_retained_bytes: int = 512 * 1024 * 1024
    slow_consumer: str = "gap"
    max_chunk_bytes: int = 256 * 1024
    max_topics_per_subscription: int = 64
    broker_timeout: float = 1.0

    @classmethod
    def from_settings(cls, s: Settings) -> HubLimits:
        return cls(s.heartbeat, s.history_size, s.history_bytes, s.max_topics, s.max_retained_bytes,
                   s.slow_consumer, s.max_chunk_bytes, s.max_topics_per_subscription, s.broker_timeout)


def encode_data(data: object) -> str:
    if isinstance(data, str):
        return data
    try:
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidField(f"data must be a JSON value: {exc}") from None
