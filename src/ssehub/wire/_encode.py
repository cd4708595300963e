"""Event → bytes. Pure; the one encoder used by the hub, the simulator and the tests.

WHATWG HTML §9.2.6: lines end with CR LF, LF or CR; a ``data`` value with line breaks is sent
as one ``data:`` line per line so that the receiver joins them back with LF.
"""

from __future__ import annotations

import re

from ..errors import InvalidField
from ._event import Event, check_field

__all__ = ["encode", "encode_comment", "encode_id", "encode_retry"]

_LINES = re.compile(r"\r\n|\r|\n")


def encode(event: Event) -> bytes:
    """Encode one event as UTF-8 bytes ending with a blank line."""
    parts: list[str] = []
    if event.id is not None:
        parts.append(f"id: {event.id}\n")
    if event.event is not None:
        parts.append(f"event: {event.event}\n")
    if event.retry is not None:
        parts.append(f"retry: {event.retry}\n")
    data = event.data
    if "\n" in data or "\r" in data:
        for line in _LINES.split(data):
            parts.append(f"data: {line}\n")
    else:
        parts.append(f"data: {data}\n")
    parts.append("\n")
    return "".join(parts).encode("utf-8")


def encode_comment(text: str = "") -> bytes:
    """A comment (``:`` line); ignored by every client, used for heartbeats."""
    if not text:
        return b":\n\n"
    return "".join(f": {line}\n" for line in _LINES.split(text)).encode("utf-8") + b"\n"


def encode_retry(ms: int) -> bytes:
    """A frame that only sets the client's reconnection time."""
    if isinstance(ms, bool) or not isinstance(ms, int) or ms < 0:
        raise InvalidField("retry must be a non-negative integer")
    return f"retry: {ms}\n\n".encode("ascii")




def encode_id(ident: str) -> bytes:
    """An id-only block: it sets the client's last event id without dispatching an event
    (WHATWG: the id field sets the buffer; a blank line with an empty data buffer dispatches
    nothing), so a reconnect resumes from there."""
    return f"id: {check_field('id', ident)}\n\n".encode()
