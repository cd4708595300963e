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
    data = event.data
    if (event.event is None and event.id is None and event.retry is None
            and "\n" not in data and "\r" not in data):  # (a data line alone: most events)
        return b"data: %s\n\n" % data.encode("utf-8")
    parts: list[str] = []
    if event.id is not None:
        parts.append(f"id: {event.id}\n")
    if event.event is not None:
        parts.append(f"event: {event.event}\n")
    if event.retry is not None:
        parts.append(f"retry: {event.retry}\n")
    if "\n" in data or "\r" in data:
        for line in _LINES.split(data):
            parts.append(f"data: {line}\n")
    else:
        parts.append(f"data: {data}\n")
    parts.append("\n")
    return "".join(parts).encode("utf-8")


# ``block=False`` leaves out the blank line that ends a block. A blank line after any field
# is an event to many clients that are not WHATWG parsers (httpx-sse and the OpenAI SDK
# dispatch every blank line after an ``id``/``retry`` field; @microsoft/fetch-event-source
# every blank line at all), so the hub's streams send a blank line only to end an event with
# data, and send their comments, retry hints and starting id as lines without one.


def encode_comment(text: str = "", *, block: bool = True) -> bytes:
    """A comment (``:`` line); ignored by every client, used for heartbeats."""
    end = b"\n" if block else b""
    if not text:
        return b":\n" + end
    return "".join(f": {line}\n" for line in _LINES.split(text)).encode("utf-8") + end


def encode_retry(ms: int, *, block: bool = True) -> bytes:
    """A ``retry`` field alone: it sets the client's reconnection time (WHATWG: when the line
    is parsed, not when a block ends)."""
    if isinstance(ms, bool) or not isinstance(ms, int) or ms < 0:
        raise InvalidField("retry must be a non-negative integer")
    return f"retry: {ms}\n".encode("ascii") + (b"\n" if block else b"")


def encode_id(ident: str, *, block: bool = True) -> bytes:
    """An ``id`` field alone. As a block (the default) it sets a WHATWG client's last event
    id without dispatching an event (the id field sets the buffer; a blank line with an empty
    data buffer dispatches nothing) — but it is an empty event to the clients named above."""
    return f"id: {check_field('id', ident)}\n".encode() + (b"\n" if block else b"")
