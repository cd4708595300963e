"""Properties: encode → parse is the identity (up to the wire's normal forms) under any
chunking, and the incremental parser agrees with a naive one-character-at-a-time reading
of the WHATWG algorithm on arbitrary bytes."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from ssehub.errors import EventTooLarge, LineTooLong
from ssehub.wire import MAX_RETRY_MS, Event, Parser, encode, encode_comment, encode_retry

TRICKY = ["\r", "\n", "\r\n", "\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\0", "\ufeff",
          ":", " ", "\U0001f600", "\u00e9", "\ufffd", "data:", "id:", "event:", "retry:"]

any_text = st.lists(st.one_of(st.sampled_from(TRICKY), st.text(max_size=5)), max_size=8).map(
    "".join
)
field_text = any_text.map(lambda s: s.replace("\r", "").replace("\n", "").replace("\0", ""))

events_strategy = st.builds(
    Event,
    data=any_text,
    event=st.none() | field_text,
    id=st.none() | field_text,
    retry=st.none() | st.integers(min_value=0, max_value=MAX_RETRY_MS),
)

# Frames: an Event, or a comment / bare retry frame between events.
frames_strategy = st.lists(
    st.one_of(
        events_strategy,
        any_text.map(lambda s: ("comment", s)),
        st.integers(min_value=0, max_value=10**6).map(lambda n: ("retry", n)),
    ),
    max_size=8,
)


def chunked(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(body)) for c in cuts})
    edges = [0, *points, len(body)]
    return [body[a:b] for a, b in itertools.pairwise(edges)]


def feed_all(parser: Parser, chunks: list[bytes]) -> list[Event]:
    events: list[Event] = []
    for chunk in chunks:
        events += parser.feed(chunk)
    return events + parser.close()


@settings(max_examples=200, deadline=None)
@given(
    frames=frames_strategy,
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12),
    eol=st.sampled_from(["\n", "\r\n", "\r"]),
    bom=st.booleans(),
)
def test_encode_then_parse_is_identity(
    frames: list[Event | tuple[str, object]], cuts: list[int], eol: str, bom: bool
) -> None:
    parts: list[bytes] = []
    expected: list[Event] = []
    last_id = ""  # the last event ID buffer: kept until an event sets it
    retry = None
    for frame in frames:
        if isinstance(frame, Event):
            parts.append(encode(frame))
            if frame.id is not None:
                last_id = frame.id
            if frame.retry is not None:
                retry = frame.retry
            data = frame.data.replace("\r\n", "\n").replace("\r", "\n")
            expected.append(Event(data, frame.event or None, last_id))
        elif frame[0] == "comment":
            parts.append(encode_comment(str(frame[1])))
        else:
            assert isinstance(frame[1], int)
            parts.append(encode_retry(frame[1]))
            retry = frame[1]
    # The encoder always ends lines with LF; any of the three line ends must parse alike.
    body = b"".join(parts).replace(b"\n", eol.encode())
    if bom:
        body = "\ufeff".encode() + body

    parser = Parser()
    assert feed_all(parser, chunked(body, cuts)) == expected
    assert parser.retry == retry
    assert parser.last_event_id == last_id


def reference_parse(body: bytes) -> tuple[list[Event], int | None, str]:
    """WHATWG §9.2.6, read literally: decode the whole body, then walk it char by char."""
    text = body.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    events: list[Event] = []
    data, type_, id_buffer, last_id, retry = "", "", "", "", None
    line, i = "", 0
    while i < len(text):
        char = text[i]
        i += 1
        if char not in "\r\n":
            line += char
            continue
        if char == "\r" and text[i : i + 1] == "\n":
            i += 1
        if line == "":
            last_id = id_buffer
            if data:
                if data.endswith("\n"):
                    data = data[:-1]
                if "\0" not in type_:  # ssehub: such an event cannot exist (dropped)
                    events.append(Event(data, type_ or None, id_buffer))
            data, type_ = "", ""
        elif not line.startswith(":"):
            field, colon, value = line.partition(":")
            if colon and value.startswith(" "):
                value = value[1:]
            if field == "data":
                data += value + "\n"
            elif field == "event":
                type_ = value
            elif field == "id" and "\0" not in value:
                id_buffer = value
            elif field == "retry" and value and all(c in "0123456789" for c in value):
                retry = int(value)
        line = ""
    return events, retry, last_id  # the unterminated tail is discarded


TOKENS = [b"data", b"id", b"event", b"retry", b"Data", b":", b": ", b" ", b"\r", b"\n",
          b"\r\n", b"\n\n", b"\xef\xbb\xbf", b"\xef", b"\xbb\xbf", b"\xe2\x80\xa8", b"\xe2",
          b"\x80", b"\xff", b"\0", b"0", b"5", b"x", b"\xf0\x9f\x98\x80"]


@settings(max_examples=300, deadline=None)
@given(
    body=st.lists(st.sampled_from(TOKENS) | st.binary(max_size=3), max_size=40).map(b"".join),
    cuts=st.lists(st.integers(min_value=0, max_value=120), max_size=10),
)
def test_parser_agrees_with_reference_under_any_chunking(body: bytes, cuts: list[int]) -> None:
    parser = Parser()
    events = feed_all(parser, chunked(body, cuts))
    assert (events, parser.retry, parser.last_event_id) == reference_parse(body)


@settings(max_examples=200, deadline=None)
@given(
    body=st.lists(st.sampled_from([b"data: ", b"xxxx", b"\xc3\xa9", b"\n", b"\r", b": "]),
                  max_size=40).map(b"".join),
    cuts=st.lists(st.integers(min_value=0, max_value=120), max_size=10),
    max_line=st.integers(min_value=1, max_value=30),
    max_event=st.integers(min_value=0, max_value=40),
)
def test_limit_errors_do_not_depend_on_chunking(
    body: bytes, cuts: list[int], max_line: int, max_event: int
) -> None:
    def outcome(chunks: list[bytes]) -> tuple[list[Event], str | None]:
        parser = Parser(max_line_bytes=max_line, max_event_bytes=max_event)
        events: list[Event] = []
        try:
            for chunk in chunks:
                events += parser.feed(chunk)
            parser.close()
        except (LineTooLong, EventTooLarge) as error:
            return events, type(error).__name__
        return events, None

    whole_events, whole_error = outcome([body])
    split_events, split_error = outcome(chunked(body, cuts))
    assert split_error == whole_error
    if whole_error is None:
        assert split_events == whole_events
    else:
        # a split stream may deliver events of the chunks before the failing one; never
        # an event the whole stream would not have
        assert whole_events[: len(split_events)] == split_events or split_events[
            : len(whole_events)
        ] == whole_events
