"""bytes → Events: an incremental, sans-I/O ``text/event-stream`` parser.

Implements WHATWG HTML §9.2.6 "Interpreting an event stream" exactly; the quoted rules
beside the code are from that section. Chunk boundaries may fall anywhere: inside a
line, between CR and LF, inside a UTF-8 sequence or a BOM.

Work is per chunk and per line, never per byte: the chunk is decoded by the incremental
UTF-8 decoder, line breaks are normalised with ``str.replace`` and lines cut with
``str.split`` (all in C). Memory is bounded by ``max_line_bytes`` (one unterminated
line) and ``max_event_bytes`` (one event's data buffer), both in UTF-8 bytes.
"""

from __future__ import annotations

import codecs
import contextlib
import re

from ..errors import EventTooLarge, LineTooLong
from ._event import Event, check_field

__all__ = ["Parser", "is_event_stream"]

_Utf8Decoder = codecs.getincrementaldecoder("utf-8")


def _blen(text: str) -> int:
    """UTF-8 length of ``text``; O(1) when it is ASCII (``str.isascii`` reads a flag)."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))


# WHATWG MIME Sniffing "parse a MIME type": type "/" subtype, both HTTP tokens, optional
# whitespace before ";parameters" (which never make a MIME type invalid).
_TOKEN = r"[-!#$%&'*+.^_`|~0-9A-Za-z]+"
_MIME = re.compile(rf"({_TOKEN})/({_TOKEN})[\t\n\r ]*(?:;.*)?", re.DOTALL)


def is_event_stream(content_type: str | None) -> bool:
    """Whether a response ``Content-Type`` is ``text/event-stream``.

    EventSource "fail[s] the connection" unless "res's `Content-Type` is
    `text/event-stream`", comparing the MIME type's essence: parameters are ignored, so
    ``text/event-stream;`` is accepted, and a charset never changes the UTF-8 decoding.
    """
    if content_type is None:
        return False
    match = _MIME.fullmatch(content_type.strip("\t\n\r "))
    return match is not None and (match[1].lower(), match[2].lower()) == ("text", "event-stream")


class Parser:
    """Incremental WHATWG event-stream parser: ``feed(bytes)`` → completed Events.

    ``last_event_id`` is the stream's *last event ID string*: the value a client sends as
    ``Last-Event-ID`` when it reconnects. As in a browser it changes only at a blank line,
    so an ``id:`` inside an event cut off by the end of the stream is not reported.
    ``retry`` is the last valid ``retry`` field (milliseconds), else None.

    ``close()`` ends the stream; the same parser may then be fed the next connection's
    stream (a reconnect): ``last_event_id`` and ``retry`` carry over, like an EventSource.
    Pass ``last_event_id`` to resume from an id obtained elsewhere.

    ``LineTooLong`` / ``EventTooLarge`` are raised as soon as a limit is crossed, before
    the line ends. If the same chunk completed events before that point, ``feed`` returns
    them first (their ids are already in ``last_event_id``; dropping them would lose
    them silently on resume) and the error is raised by the next ``feed`` or ``close``.
    After the error the stream is unusable: ``feed`` raises again until ``close()``.
    """

    __slots__ = (
        "_broken",
        "_cr",
        "_data",
        "_data_bytes",
        "_decoder",
        "_id",
        "_pending",
        "_pending_bytes",
        "_started",
        "_type",
        "_unraised",
        "last_event_id",
        "max_event_bytes",
        "max_line_bytes",
        "retry",
    )

    def __init__(
        self,
        max_line_bytes: int = 1 << 20,
        max_event_bytes: int = 1 << 24,
        *,
        last_event_id: str = "",
    ) -> None:
        if max_line_bytes < 1 or max_event_bytes < 0:
            raise ValueError("max_line_bytes must be >= 1 and max_event_bytes >= 0")
        self.max_line_bytes = max_line_bytes
        self.max_event_bytes = max_event_bytes
        self.retry: int | None = None
        self.last_event_id: str = check_field("last_event_id", last_event_id)
        self._new_stream()

    def _new_stream(self) -> None:
        self._decoder = _Utf8Decoder("replace")
        self._started = False  # no character seen yet: a BOM may still come
        self._cr = False  # the previous chunk ended with CR: drop a leading LF
        self._pending: list[str] = []  # the current unterminated line, in pieces
        self._pending_bytes = 0
        self._data: list[str] = []  # the data buffer, one item per data line
        self._data_bytes = 0  # UTF-8 size of the data buffer, LFs included
        self._type = ""  # the event type buffer
        self._id = self.last_event_id  # the last event ID buffer
        self._broken: LineTooLong | EventTooLarge | None = None
        self._unraised = False  # _broken was deferred by feed() and not raised yet

    def feed(self, data: bytes) -> list[Event]:
        """Parse the next chunk of the stream; return the events it completes."""
        if self._broken is not None:
            self._unraised = False
            raise type(self._broken)(self._broken.message)
        # "Event streams are always decoded as UTF-8." The decoder keeps an incomplete
        # multi-byte sequence for the next chunk; invalid bytes become U+FFFD.
        text = self._decoder.decode(data)
        if not text:
            return []
        if not self._started:
            self._started = True
            # "One leading U+FEFF BYTE ORDER MARK character must be ignored if any are
            # present." Only at the start of the stream; a split BOM is reassembled by
            # the decoder before we see it.
            if text[0] == "\ufeff":
                text = text[1:]
                if not text:
                    return []
        if self._cr:
            self._cr = False
            if text[0] == "\n":  # the LF of a CRLF split between two chunks
                text = text[1:]
                if not text:
                    return []
        # "a U+000D CARRIAGE RETURN U+000A LINE FEED (CRLF) character pair, a single
        # U+000A LINE FEED (LF) character not preceded by a U+000D CARRIAGE RETURN (CR)
        # character, and a single U+000D CARRIAGE RETURN (CR) character not preceded or
        # followed by a U+000A LINE FEED (LF) character being the ways in which a line can
        # end." Nothing else ends a line (not U+2028, NEL, VT, FF: no str.splitlines).
        if "\r" in text:
            self._cr = text[-1] == "\r"  # its line ends now; its LF may come next chunk
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        rest = lines.pop()  # after the last line break: the start of an unfinished line
        events: list[Event] = []
        try:
            if lines:
                # Cheap bound first: lines are only measured one by one if, together, they
                # could exceed the line limit.
                measure = self._pending_bytes + _blen(text) > self.max_line_bytes
                if self._pending:
                    self._pending.append(lines[0])
                    lines[0] = "".join(self._pending)
                    self._pending = []
                    self._pending_bytes = 0
                self._process(lines, events, measure)
            if rest:
                self._extend(rest)
        except (LineTooLong, EventTooLarge):
            if not events:
                raise
            self._unraised = True
        return events

    def close(self) -> list[Event]:
        """End of stream: pending data is discarded; nothing is dispatched.

        "Once the end of the file is reached, any pending data must be discarded. (If the
        file ends in the middle of an event, before the final empty line, the incomplete
        event is not dispatched.)" An unterminated last line is pending data too: it is
        not a line (it has no end), so it is not processed.

        Raises the limit error a previous ``feed`` deferred and nobody saw yet, if any.
        """
        broken = self._broken if self._unraised else None
        self._new_stream()
        if broken is not None:
            raise type(broken)(broken.message)
        return []

    def _extend(self, piece: str) -> None:
        """Keep the start of an unfinished line, enforcing both limits already."""
        self._pending.append(piece)
        self._pending_bytes += _blen(piece)
        size = self._pending_bytes
        if size > self.max_line_bytes or self._data_bytes + size - 6 > self.max_event_bytes:
            head = ""
            for part in self._pending:
                head += part
                if len(head) >= 5:
                    break
            self._check_limits(size, head.startswith("data:"))

    def _check_limits(self, size: int, is_data: bool) -> None:
        """Raise the error a byte-by-byte reading hits first in a line of ``size`` bytes.

        A "data:" line adds at least (its size - 6) bytes to the event's data, so past
        ``room`` bytes the event is too large, whatever the rest of the line holds. Both
        limits are checked as if crossed in stream order, so the error does not depend on
        where the chunks were cut.
        """
        room = self.max_event_bytes - self._data_bytes + 6
        if is_data and size > room and room < self.max_line_bytes:
            self._fail(EventTooLarge, f"event larger than {self.max_event_bytes} bytes")
        if size > self.max_line_bytes:
            self._fail(LineTooLong, f"line longer than {self.max_line_bytes} bytes")

    def _fail(self, error: type[LineTooLong | EventTooLarge], message: str) -> None:
        self._pending = []
        self._data = []
        self._broken = error(message)
        raise error(message)

    def _process(self, lines: list[str], events: list[Event], measure: bool) -> None:
        for line in lines:
            if measure and _blen(line) > self.max_line_bytes:
                self._check_limits(_blen(line), line.startswith("data:"))
            if not line:
                # "If the line is empty (a blank line): Dispatch the event".
                # Dispatch step 1: "Set the last event ID string of the event source to
                # the value of the last event ID buffer. The buffer does not get reset".
                self.last_event_id = self._id
                # Step 2: "If the data buffer is an empty string, set the data buffer and
                # the event type buffer to the empty string and return."
                if self._data:
                    # Step 3: "If the data buffer's last character is a U+000A LINE FEED
                    # (LF) character, then remove the last character from the data
                    # buffer." Joining the lines with LF is exactly that.
                    # "If the event type buffer has a value other than the empty string,
                    # change the type of the newly created event to equal the value of the
                    # event type buffer." (None here means "message".)
                    # A type with NUL cannot be an Event (ssehub rejects it everywhere);
                    # such an event is dropped rather than renamed.
                    if "\0" not in self._type:
                        events.append(Event("\n".join(self._data), self._type or None, self._id))
                    self._data = []
                    self._data_bytes = 0
                self._type = ""
                continue
            # "If the line starts with a U+003A COLON character (:): Ignore the line."
            if line[0] == ":":
                continue
            colon = line.find(":")
            if colon < 0:
                # "Otherwise, the string is not empty but does not contain a U+003A COLON
                # character (:): Process the field using the steps described below, using
                # the whole line as the field name, and the empty string as the field
                # value."
                field, value = line, ""
            else:
                # "Collect the characters on the line before the first U+003A COLON
                # character (:), and let field be that string. Collect the characters on
                # the line after the first U+003A COLON character (:), and let value be
                # that string. If value starts with a U+0020 SPACE character, remove it
                # from value."
                field = line[:colon]
                value = line[colon + 2 :] if line.startswith(" ", colon + 1) else line[colon + 1 :]
            if field == "data":
                # "Append the field value to the data buffer, then append a single U+000A
                # LINE FEED (LF) character to the data buffer."
                self._data.append(value)
                self._data_bytes += _blen(value) + 1
                if self._data_bytes - 1 > self.max_event_bytes:
                    self._fail(EventTooLarge, f"event larger than {self.max_event_bytes} bytes")
            elif field == "event":
                # "Set the event type buffer to the field value."
                self._type = value
            elif field == "id":
                # "If the field value does not contain U+0000 NULL, then set the last
                # event ID buffer to the field value. Otherwise, ignore the field."
                if "\0" not in value:
                    self._id = value
            # retry: "If the field value consists of only ASCII digits, then interpret the
            # field value as an integer in base ten, and set the event stream's
            # reconnection time to that integer. Otherwise, ignore the field."
            # (Not int() alone: it accepts "+5", " 5", "1_000" and non-ASCII digits.)
            elif field == "retry" and value.isascii() and value.isdigit():
                # int() refuses more than sys.get_int_max_str_digits() (4300) digits: such
                # a delay is not usable anyway, so it is ignored like a bogus one.
                with contextlib.suppress(ValueError):
                    self.retry = int(value)
            # "Otherwise: The field is ignored."
