"""The Event value and the encoder: exact bytes, and invalid fields rejected, never stripped."""

from __future__ import annotations

import dataclasses

import pytest

from ssehub.errors import BadRequest, InvalidField
from ssehub.wire import Event, check_field, encode, encode_comment, encode_retry

# -- Event ---------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["a\rb", "a\nb", "a\r\nb", "a\0b", "\n", "x\r", "\0"])
@pytest.mark.parametrize("field", ["event", "id"])
def test_event_rejects_cr_lf_nul_in_event_and_id(field: str, bad: str) -> None:
    with pytest.raises(InvalidField) as info:
        if field == "event":
            Event(data="x", event=bad)
        else:
            Event(data="x", id=bad)
    assert field in info.value.message
    assert info.value.status == 400


@pytest.mark.parametrize("ok", ["", "a b", "\u2028", "\u2026", "😀", "\t", ":", "x:y"])
def test_event_accepts_other_characters_in_event_and_id(ok: str) -> None:
    assert Event(event=ok, id=ok).event == ok


def test_event_data_may_hold_anything() -> None:
    data = "a\r\nb\rc\nd\0e\u2028f😀"
    assert Event(data).data == data


@pytest.mark.parametrize("bad", [-1, True, False, 1.5, "5"])
def test_event_rejects_bad_retry(bad: object) -> None:
    with pytest.raises(InvalidField):
        Event(retry=bad)  # type: ignore[arg-type]


def test_event_rejects_non_str_data() -> None:
    with pytest.raises(InvalidField):
        Event(data=b"x")  # type: ignore[arg-type]


def test_event_is_frozen_and_defaults() -> None:
    event = Event()
    assert (event.data, event.event, event.id, event.retry) == ("", None, None, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.data = "x"  # type: ignore[misc]


def test_check_field() -> None:
    assert check_field("event", "ok") == "ok"
    with pytest.raises(InvalidField):
        check_field("event", "a\nb")
    assert issubclass(InvalidField, BadRequest)
    assert issubclass(InvalidField, ValueError)


# -- encode ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event, wire",
    [
        (Event("hello"), b"data: hello\n\n"),
        (Event(""), b"data: \n\n"),
        (Event("x", id="1-42"), b"id: 1-42\ndata: x\n\n"),
        (Event("x", event="update"), b"event: update\ndata: x\n\n"),
        (Event("x", retry=3000), b"retry: 3000\ndata: x\n\n"),
        (
            Event('{"text": "hi"}', event="content", id="7-3", retry=0),
            b'id: 7-3\nevent: content\nretry: 0\ndata: {"text": "hi"}\n\n',
        ),
        (Event("a\nb"), b"data: a\ndata: b\n\n"),
        (Event("a\r\nb\rc"), b"data: a\ndata: b\ndata: c\n\n"),
        (Event("a\n"), b"data: a\ndata: \n\n"),
        (Event("\n"), b"data: \ndata: \n\n"),
        (Event("\r\n\r\n"), b"data: \ndata: \ndata: \n\n"),
        (Event(" lead"), b"data:  lead\n\n"),  # the parser drops exactly one space
        (Event("data: x"), b"data: data: x\n\n"),
        (Event("a\u2028b\x85c"), "data: a\u2028b\x85c\n\n".encode()),  # not line breaks
        (Event("caf\u00e9 \U0001f600"), "data: caf\u00e9 \U0001f600\n\n".encode()),
        (Event("nul\0"), b"data: nul\0\n\n"),
        (Event("x", id=""), b"id: \ndata: x\n\n"),  # an empty id resets Last-Event-ID
    ],
)
def test_encode_exact_bytes(event: Event, wire: bytes) -> None:
    assert encode(event) == wire


def test_encode_is_utf8_without_escaping() -> None:
    assert encode(Event("\u4f60\u597d", event="\u00e9v")) == "event: \u00e9v\ndata: \u4f60\u597d\n\n".encode()


# -- encode_comment / encode_retry --------------------------------------------------------


@pytest.mark.parametrize(
    "text, wire",
    [
        ("", b":\n\n"),
        ("ping", b": ping\n\n"),
        ("a\nb", b": a\n: b\n\n"),
        ("a\r\nb\rc", b": a\n: b\n: c\n\n"),
        ("\u2026", ": \u2026\n\n".encode()),
    ],
)
def test_encode_comment(text: str, wire: bytes) -> None:
    assert encode_comment(text) == wire


def test_encode_comment_default_is_a_bare_colon() -> None:
    assert encode_comment() == b":\n\n"


@pytest.mark.parametrize("ms, wire", [(0, b"retry: 0\n\n"), (2500, b"retry: 2500\n\n")])
def test_encode_retry(ms: int, wire: bytes) -> None:
    assert encode_retry(ms) == wire


@pytest.mark.parametrize("bad", [-1, True, 1.0, "100", None])
def test_encode_retry_rejects_non_natural_numbers(bad: object) -> None:
    with pytest.raises(InvalidField):
        encode_retry(bad)  # type: ignore[arg-type]


def test_lines_without_a_block_end_dispatch_nothing_anywhere() -> None:
    """``block=False``: the lines a hub stream sends outside events (heartbeat, retry hints,
    starting id) end with no blank line, so no client — WHATWG or not — can see an event."""
    from ssehub.wire import Parser, encode_id

    assert encode_comment(block=False) == b":\n"
    assert encode_comment("a\nb", block=False) == b": a\n: b\n"
    assert encode_retry(250, block=False) == b"retry: 250\n"
    assert encode_id("3-9", block=False) == b"id: 3-9\n"
    assert encode_id("3-9") == b"id: 3-9\n\n"
    parser = Parser()
    stream = encode_retry(250, block=False) + encode_id("3-9", block=False) + encode_comment(block=False)
    assert b"\n\n" not in stream
    assert parser.feed(stream) == [] and parser.retry == 250  # retry applies at once
    # the first event completes the block; its own id replaces the opening one
    events = parser.feed(encode(Event("x", id="3-10")))
    assert [(e.data, e.id) for e in events] == [("x", "3-10")] and parser.last_event_id == "3-10"
