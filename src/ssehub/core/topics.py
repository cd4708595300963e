"""Topic-name rules: 1–256 characters, no control characters."""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..errors import InvalidTopic

__all__ = ["MAX_TOPIC_LENGTH", "check_topic", "check_topics"]

MAX_TOPIC_LENGTH = 256
# control characters, and lone surrogates (not encodable as UTF-8: they would break every
# response that names the topic)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def check_topic(name: object) -> str:
    if not isinstance(name, str):
        raise InvalidTopic("topic must be a string")
    if not 1 <= len(name) <= MAX_TOPIC_LENGTH:
        raise InvalidTopic(f"topic must be 1 to {MAX_TOPIC_LENGTH} characters")
    if _CONTROL.search(name):
        raise InvalidTopic("topic must not contain control characters or lone surrogates")
    return name


def check_topics(names: str | Iterable[object], limit: int | None = None) -> tuple[str, ...]:
    """Validated topic names, duplicates removed, in the order given."""
    if isinstance(names, str):
        return (check_topic(names),)
    if isinstance(names, tuple) and len(names) == 1:  # (one topic: most publishes)
        return (check_topic(names[0]),)
    seen: dict[str, None] = {}
    for name in names:
        seen[check_topic(name)] = None
    if not seen:
        raise InvalidTopic("at least one topic is required")
    if limit is not None and len(seen) > limit:
        raise InvalidTopic(f"too many topics: at most {limit} per request")
    return tuple(seen)
