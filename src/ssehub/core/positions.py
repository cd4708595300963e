"""Event ids: ``"<epoch>-<seq>"``. The only module that formats or parses them.

``seq`` grows by one per published event across every topic of a hub namespace, so one id is
an exact resume point for a subscription to many topics. ``epoch`` changes whenever the
history behind the seqs is lost (a memory hub restarts, a Redis namespace is flushed) and
grows over time, so ids compare digit-aware (epoch first, then seq) across restarts too.
"""

from __future__ import annotations

import re
import time
from typing import NamedTuple

__all__ = ["EARLIEST", "Position", "format_id", "new_epoch", "parse_id"]

EARLIEST = "earliest"
_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,20})")


class Position(NamedTuple):
    epoch: int
    seq: int


def new_epoch() -> int:
    """A fresh epoch: microseconds since the Unix epoch, so it grows across restarts."""
    return time.time_ns() // 1000


def format_id(epoch: int, seq: int) -> str:
    return f"{epoch}-{seq}"


def parse_id(value: str) -> Position | None:
    """The position an id names, or None when it is not an id this hub could have made."""
    m = _ID.fullmatch(value)
    if m is None:
        return None
    return Position(int(m.group(1)), int(m.group(2)))
