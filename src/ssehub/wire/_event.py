"""The immutable SSE Event value: an invalid Event cannot exist."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InvalidField

__all__ = ["MAX_RETRY_MS", "Event", "check_field"]

_FORBIDDEN = ("\r", "\n", "\0")
MAX_RETRY_MS = 86_400_000  # one day: the largest reconnection delay an event may carry


def check_field(name: str, value: str) -> str:
    """Reject CR, LF and NUL in an ``id`` or ``event`` value (CWE-93); never strip them."""
    for ch in _FORBIDDEN:
        if ch in value:
            raise InvalidField(f"{name} must not contain CR, LF or NUL")
    return value


@dataclass(frozen=True, slots=True)
class Event:
    """One server-sent event. ``event=None`` means the default type, "message"."""

    data: str = ""
    event: str | None = None
    id: str | None = None
    retry: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.data, str):
            raise InvalidField("data must be a str")
        if self.event is not None:
            check_field("event", self.event)
        if self.id is not None:
            check_field("id", self.id)
        if self.retry is not None and (
            isinstance(self.retry, bool) or not isinstance(self.retry, int)
            or not 0 <= self.retry <= MAX_RETRY_MS
        ):
            raise InvalidField(f"retry must be an integer from 0 to {MAX_RETRY_MS} (milliseconds)")
