"""The wire parser beyond the WPT table: line ends, decoding, fields, dispatch, limits."""

from __future__ import annotations

import pytest

from ssehub.errors import BadRequest, EventTooLarge, InvalidField, LineTooLong
from ssehub.wire import Event, Parser, is_event_stream


def parse(*chunks: bytes, parser: Parser | None = None) -> list[Event]:
    parser = parser or Parser()
    events: list[Event] = []
    for chunk in chunks:
        events += parser.feed(chunk)
    return events


def ev(data: str, event: str | None = None, id: str = "") -> Event:
    return Event(data=data, event=event, id=id)


def splits(body: bytes) -> list[tuple[bytes, bytes]]:
    return [(body[:i], body[i:]) for i in range(len(body) + 1)]


# -- line ends ------------------------------------------------------------------------


@pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"], ids=["LF", "CR", "CRLF"])
def test_every_line_end(eol: bytes) -> None:
    body = b"data: a" + eol + b"data: b" + eol + eol + b"data: c" + eol + eol
    assert parse(body) == [ev("a\nb"), ev("c")]


def test_mixed_line_ends() -> None:
    assert parse(b"data: a\rdata: b\r\ndata: c\n\r\n") == [ev("a\nb\nc")]


@pytest.mark.parametrize("first, second", splits(b"data: a\r\n\r\ndata: b\r\n\r\n"))
def test_crlf_split_between_chunks_is_one_line_end(first: bytes, second: bytes) -> None:
    assert parse(first, second) == [ev("a"), ev("b")]


def test_cr_then_crlf_across_chunks_is_a_blank_line() -> None:
    # "data: a" CR | CR LF: the second CR starts a blank line, the LF belongs to it.
    assert parse(b"data: a\r", b"\r\n") == [ev("a")]
    assert parse(b"data: a\r", b"\r", b"\n") == [ev("a")]


def test_lf_alone_after_cr_chunk_is_not_an_extra_blank_line() -> None:
    parser = Parser()
    assert parse(b"data: a\r", b"\n", parser=parser) == []
    assert parse(b"data: b\n\n", parser=parser) == [ev("a\nb")]


def test_empty_chunks_change_nothing() -> None:
    assert parse(b"", b"data: a\r", b"", b"\n", b"", b"\n", b"") == [ev("a")]


@pytest.mark.parametrize(
    "char", ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e"]
)
def test_unicode_line_separators_are_not_line_ends(char: str) -> None:
    body = f"data: a{char}b\nid: x{char}y\n\n".encode()
    assert parse(body) == [ev(f"a{char}b", id=f"x{char}y")]


# -- decoding ---------------------------------------------------------------------------


def test_bom_is_stripped_once_at_stream_start() -> None:
    assert parse(b"\xef\xbb\xbfdata: a\n\n") == [ev("a")]
    # a second BOM is part of the first line: the field "\ufeffdata" is unknown
    assert parse(b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\ndata: b\n\n") == [ev("b")]


@pytest.mark.parametrize("cut", [1, 2, 3])
def test_bom_split_over_chunks(cut: int) -> None:
    body = b"\xef\xbb\xbfdata: a\n\n"
    assert parse(body[:cut], body[cut:]) == [ev("a")]
    assert parse(*(body[i : i + 1] for i in range(len(body)))) == [ev("a")]


def test_bom_after_first_chunk_is_data() -> None:
    assert parse(b"data: ", b"\xef\xbb\xbfa\n\n") == [ev("\ufeffa")]
    assert parse(b"\n", b"\xef\xbb\xbfdata: a\n\ndata: b\n\n") == [ev("b")]


def test_bom_is_looked_for_again_after_close() -> None:
    parser = Parser()
    assert parse(b"\xef\xbb\xbfdata: a\n\n", parser=parser) == [ev("a")]
    assert parser.close() == []
    assert parse(b"\xef\xbb\xbfdata: b\n\n", parser=parser) == [ev("b")]


@pytest.mark.parametrize("text", ["é", "€", "😀", "ok\u2026"])
def test_multibyte_character_split_anywhere(text: str) -> None:
    body = f"event: {text}\ndata: {text}\n\n".encode()
    for first, second in splits(body):
        assert parse(first, second) == [ev(text, text)]


@pytest.mark.parametrize(
    "raw, text",
    [
        (b"\xff", "\ufffd"),
        (b"a\xc3(b", "a\ufffd(b"),  # truncated 2-byte sequence
        (b"\xe2\x82", "\ufffd"),  # truncated 3-byte sequence at end of line
        (b"\xed\xa0\x80", "\ufffd\ufffd\ufffd"),  # encoded surrogate
        (b"\xf0\x9f\x98", "\ufffd"),
    ],
)
def test_invalid_utf8_becomes_replacement_characters(raw: bytes, text: str) -> None:
    body = b"data: " + raw + b"\n\n"
    assert parse(body) == [ev(text)]
    assert parse(*(body[i : i + 1] for i in range(len(body)))) == [ev(text)]


# -- fields -------------------------------------------------------------------------------


def test_one_leading_space_is_dropped() -> None:
    assert parse(b"data:x\ndata: x\ndata:  x\ndata:\tx\n\n") == [ev("x\nx\n x\n\tx")]


def test_colon_in_value_is_kept() -> None:
    assert parse(b'data: {"a": "b:c"}\nevent: x:y\n\n') == [ev('{"a": "b:c"}', "x:y")]


def test_field_without_colon_has_empty_value() -> None:
    assert parse(b"data\ndata\n\n") == [ev("\n")]
    assert parse(b"event: x\nevent\ndata: y\n\n") == [ev("y")]
    assert parse(b"id: 1\nid\ndata: y\n\n") == [ev("y", id="")]


def test_field_names_are_case_sensitive_and_unknown_ones_ignored() -> None:
    assert parse(b"Data: a\nDATA: b\ndata : c\nfoo: d\ndata: e\n\n") == [ev("e")]


def test_comment_lines_are_ignored() -> None:
    assert parse(b": hi\n:\ndata: a\n: data: b\n\n:x\n\n") == [ev("a")]


def test_event_type() -> None:
    assert parse(b"event: add\ndata: 1\n\ndata: 2\n\n") == [ev("1", "add"), ev("2")]
    # "message" is a type like any other: not turned into None
    assert parse(b"event: message\ndata: 1\n\n") == [ev("1", "message")]
    # the last event field of an event wins
    assert parse(b"event: a\nevent: b\ndata: 1\n\n") == [ev("1", "b")]


def test_event_type_with_nul_is_not_dispatched() -> None:
    # An Event cannot carry NUL in its type (ssehub rejects it everywhere); the event is
    # dropped, and the buffers are reset as after any dispatch.
    parser = Parser()
    assert parse(b"id: 7\nevent: a\0b\ndata: 1\n\ndata: 2\n\n", parser=parser) == [
        ev("2", id="7")
    ]
    assert parser.last_event_id == "7"


@pytest.mark.parametrize(
    "value, expected",
    [
        ("0", 0),
        ("5", 5),
        ("007", 7),
        ("1000", 1000),
        ("123456789012345678901234567890", 123456789012345678901234567890),
        ("+5", None),
        ("-1", None),
        (" 5", None),  # "retry:  5": one space dropped, the other is not a digit
        ("5 ", None),
        ("1_000", None),
        ("1.5", None),
        ("1e3", None),
        ("0x10", None),
        ("\uff15", None),  # FULLWIDTH DIGIT FIVE
        ("\u0665", None),  # ARABIC-INDIC DIGIT FIVE
        ("\u00b2", None),  # SUPERSCRIPT TWO
        ("", None),
    ],
)
def test_retry_only_ascii_digits(value: str, expected: int | None) -> None:
    parser = Parser()
    parse(f"retry: {value}\n\n".encode(), parser=parser)
    assert parser.retry == expected


def test_retry_with_too_many_digits_for_int_is_ignored() -> None:
    parser = Parser()
    parse(b"retry: 5\n\nretry: " + b"9" * 5000 + b"\n\n", parser=parser)
    assert parser.retry == 5


def test_bad_retry_keeps_previous_value_and_retry_needs_no_dispatch() -> None:
    parser = Parser()
    assert parse(b"retry: 1000\nretry: x\n", parser=parser) == []
    assert parser.retry == 1000
    assert parse(b"retry: 2000\ndata: a\n\n", parser=parser) == [ev("a")]
    assert parser.retry == 2000


# -- dispatch and the last event ID -----------------------------------------------------


def test_no_dispatch_without_data() -> None:
    assert parse(b"\n\n\n") == []
    assert parse(b"event: x\n\n") == []
    assert parse(b"id: 1\nevent: x\nretry: 5\n: c\n\n") == []


def test_blank_line_without_data_resets_the_event_type() -> None:
    assert parse(b"event: x\n\ndata: y\n\n") == [ev("y")]


def test_empty_data_field_is_dispatched() -> None:
    assert parse(b"data:\n\n") == [ev("")]
    assert parse(b"data\n\n") == [ev("")]


def test_one_trailing_lf_removed() -> None:
    assert parse(b"data: a\ndata:\n\n") == [ev("a\n")]
    assert parse(b"data:\ndata:\ndata:\n\n") == [ev("\n\n")]


def test_id_buffer_persists_across_events_and_is_not_reset() -> None:
    parser = Parser()
    events = parse(b"id: 1\ndata: a\n\ndata: b\n\nid: 2\ndata: c\n\nid:\ndata: d\n\n", parser=parser)
    assert events == [ev("a", id="1"), ev("b", id="1"), ev("c", id="2"), ev("d", id="")]
    assert parser.last_event_id == ""


def test_id_with_nul_is_ignored() -> None:
    parser = Parser()
    assert parse(b"id: 1\ndata: a\n\nid: 2\0\ndata: b\n\n", parser=parser) == [
        ev("a", id="1"),
        ev("b", id="1"),
    ]
    assert parser.last_event_id == "1"


def test_last_event_id_changes_at_blank_line_even_without_data() -> None:
    parser = Parser()
    assert parse(b"id: 5\n", parser=parser) == []
    assert parser.last_event_id == ""  # not before the blank line
    assert parse(b"\n", parser=parser) == []
    assert parser.last_event_id == "5"
    assert parse(b"data: x\n\n", parser=parser) == [ev("x", id="5")]


def test_initial_last_event_id() -> None:
    parser = Parser(last_event_id="41")
    assert parser.last_event_id == "41"
    assert parse(b"data: x\n\nid: 42\ndata: y\n\n", parser=parser) == [
        ev("x", id="41"),
        ev("y", id="42"),
    ]
    with pytest.raises(InvalidField):
        Parser(last_event_id="a\nb")
    with pytest.raises(InvalidField):
        Parser(last_event_id="a\0b")


# -- end of stream ------------------------------------------------------------------------


def test_unterminated_event_is_discarded_at_close() -> None:
    parser = Parser()
    assert parse(b"data: a\n\ndata: b\n", parser=parser) == [ev("a")]
    assert parser.close() == []
    # nothing of the discarded event leaks into the next stream
    assert parse(b"data: c\n\n", parser=parser) == [ev("c")]


def test_unterminated_last_line_is_not_processed() -> None:
    parser = Parser()
    assert parse(b"id: 1\ndata: a\n\nid: 2\nretry: 10\nevent: e\ndata: b\n\nretry: 3", parser=parser) == [
        ev("a", id="1"),
        ev("b", "e", id="2"),
    ]
    assert parser.close() == []
    assert parser.retry == 10
    assert parser.last_event_id == "2"


def test_close_keeps_last_event_id_and_retry_for_the_next_connection() -> None:
    parser = Parser()
    parse(b"retry: 300\nid: 9\ndata: a\n\nid: 10\ndata: b\n", parser=parser)
    parser.close()
    assert (parser.last_event_id, parser.retry) == ("9", 300)
    # the id of the undispatched event is forgotten: the new stream starts from "9"
    assert parse(b"data: c\n\n", parser=parser) == [ev("c", id="9")]


def test_close_discards_a_truncated_utf8_sequence() -> None:
    parser = Parser()
    assert parse(b"data: a\n\ndata: \xe2\x82", parser=parser) == [ev("a")]
    assert parser.close() == []
    assert parse(b"\xacdata: b\n\n", parser=parser) == []  # "\ufffddata" is no field name
    assert parse(b"data: c\n\n", parser=parser) == [ev("c")]


# -- limits --------------------------------------------------------------------------------


def test_limit_errors_are_distinct_bad_requests() -> None:
    assert issubclass(LineTooLong, BadRequest)
    assert issubclass(EventTooLarge, BadRequest)
    assert not issubclass(LineTooLong, EventTooLarge)
    assert not issubclass(EventTooLarge, LineTooLong)


def test_line_at_limit_is_accepted() -> None:
    line = b"data: " + b"x" * 94  # 100 bytes
    assert parse(line + b"\n\n", parser=Parser(max_line_bytes=100)) == [ev("x" * 94)]
    assert parse(line, b"\n\n", parser=Parser(max_line_bytes=100)) == [ev("x" * 94)]


@pytest.mark.parametrize("prefix", [b"data: ", b": ", b"foo: ", b"id: "])
def test_line_over_limit_raises_line_too_long(prefix: bytes) -> None:
    line = prefix + b"x" * (101 - len(prefix))
    with pytest.raises(LineTooLong):
        parse(line + b"\n\n", parser=Parser(max_line_bytes=100))
    parser = Parser(max_line_bytes=100)
    assert parser.feed(b"data: ok\n\n" + line + b"\n") == [ev("ok")]  # error deferred
    with pytest.raises(LineTooLong):
        parser.close()


def test_line_too_long_is_raised_before_the_line_ends() -> None:
    parser = Parser(max_line_bytes=100)
    parse(b": ", *[b"x" * 10] * 9, parser=parser)  # 92 bytes, no line end yet
    with pytest.raises(LineTooLong):
        parser.feed(b"x" * 10)


def test_line_limit_counts_utf8_bytes() -> None:
    parser = Parser(max_line_bytes=100)
    assert parse(b"data: " + "é".encode() * 47 + b"\n\n", parser=parser) == [ev("é" * 47)]
    with pytest.raises(LineTooLong):
        parse(b"data: " + "é".encode() * 48, parser=parser)


def test_line_limit_spans_chunks() -> None:
    parser = Parser(max_line_bytes=100)
    parse(b"data: " + b"x" * 60, parser=parser)
    with pytest.raises(LineTooLong):
        parser.feed(b"x" * 60 + b"\n\n")


def test_event_at_limit_is_accepted() -> None:
    # data buffer "aaaa\nbbbb" is 9 bytes (its final LF is removed at dispatch)
    assert parse(b"data: aaaa\ndata: bbbb\n\n", parser=Parser(max_event_bytes=9)) == [
        ev("aaaa\nbbbb")
    ]


def test_event_over_limit_raises_event_too_large() -> None:
    with pytest.raises(EventTooLarge):
        parse(b"data: aaaa\ndata: bbbbb\n\n", parser=Parser(max_event_bytes=9))


def test_event_limit_counts_many_short_lines() -> None:
    parser = Parser(max_line_bytes=1000, max_event_bytes=100)
    for _ in range(33):
        parse(b"data: xx\n", parser=parser)  # 3 bytes each, 99 in all
    with pytest.raises(EventTooLarge):
        parser.feed(b"data: xx\n")


def test_event_too_large_is_raised_before_the_line_ends() -> None:
    parser = Parser(max_line_bytes=10_000, max_event_bytes=100)
    parse(b"data: " + b"x" * 100, parser=parser)  # exactly at the limit so far
    with pytest.raises(EventTooLarge):
        parser.feed(b"x")


def test_long_non_data_line_is_only_bound_by_the_line_limit() -> None:
    parser = Parser(max_line_bytes=10_000, max_event_bytes=100)
    assert parse(b": " + b"x" * 5000 + b"\ndata: ok\n\n", parser=parser) == [ev("ok")]
    assert parse(b"event: " + b"x" * 500, b"x" * 500, b"\ndata: ok\n\n", parser=parser) == [
        ev("ok", "x" * 1000)
    ]


def test_event_limit_resets_after_dispatch() -> None:
    parser = Parser(max_event_bytes=10)
    for _ in range(5):
        assert parse(b"data: 0123456789\n\n", parser=parser) == [ev("0123456789")]


def test_events_completed_before_a_limit_error_are_returned_first() -> None:
    parser = Parser(max_line_bytes=100)
    events = parser.feed(b"id: 1\ndata: a\n\n" + b"data: " + b"x" * 200)
    assert events == [ev("a", id="1")]
    assert parser.last_event_id == "1"
    with pytest.raises(LineTooLong):
        parser.feed(b"x")


def test_deferred_limit_error_is_raised_by_close() -> None:
    parser = Parser(max_event_bytes=5)
    assert parser.feed(b"data: a\n\ndata: 123456\n") == [ev("a")]
    with pytest.raises(EventTooLarge):
        parser.close()
    assert parser.close() == []  # reported once; the parser then starts a new stream
    assert parse(b"data: b\n\n", parser=parser) == [ev("b")]


def test_failed_stream_stays_failed_until_close() -> None:
    parser = Parser(max_line_bytes=10)
    with pytest.raises(LineTooLong):
        parser.feed(b"data: 0123456789")
    with pytest.raises(LineTooLong):
        parser.feed(b"\n\n")
    assert parser.close() == []  # already raised: not raised again
    assert parse(b"data: ok\n\n", parser=parser) == [ev("ok")]


def test_bad_limits_rejected() -> None:
    with pytest.raises(ValueError):
        Parser(max_line_bytes=0)
    with pytest.raises(ValueError):
        Parser(max_event_bytes=-1)


# -- Content-Type -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type, accepted",
    [
        ("text/event-stream", True),
        ("text/event-stream; charset=utf-8", True),
        ("Text/Event-Stream", True),
        (" text/event-stream ", True),
        ("text/event-stream ;charset=utf-8", True),
        ("text/event-stream;", True),
        ("application/json", False),
        ("text/plain", False),
        ("text/event-streams", False),
        ("text /event-stream", False),
        ("text/event stream", False),
        ("event-stream", False),
        ("", False),
        (None, False),
    ],
)
def test_is_event_stream(content_type: str | None, accepted: bool) -> None:
    assert is_event_stream(content_type) is accepted
