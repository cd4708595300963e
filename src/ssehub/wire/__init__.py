"""SSE wire format (WHATWG HTML "Server-sent events"): Event value, encoder, incremental parser.

Standard library only, no I/O: the server, the client and the LLM relay all use this code.
"""

from __future__ import annotations

from ..errors import EventTooLarge, InvalidField, LineTooLong
from ._encode import encode, encode_comment, encode_id, encode_retry
from ._event import MAX_RETRY_MS, Event, check_field
from ._parse import Parser, is_event_stream

__all__ = [
    "MAX_RETRY_MS",
    "Event",
    "EventTooLarge",
    "InvalidField",
    "LineTooLong",
    "Parser",
    "check_field",
    "encode",
    "encode_comment",
    "encode_id",
    "encode_retry",
    "is_event_stream",
]
