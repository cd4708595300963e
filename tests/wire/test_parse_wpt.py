"""The web-platform-tests ``eventsource/format-*`` family, as a table for the wire parser.

Each row is the response body a WPT server script sends (``resources/message.py`` appends
``"\\n\\n" + "\\n"`` to its ``message``, or only ``"\\n"`` with ``newline=none``) and what
the page must observe. Tests that reconnect (the ``last-event-id`` scripts echo the
``Last-Event-ID`` header) list one body per connection; the parser is ``close()``d between
them, as an EventSource keeps its last event ID across a reconnect.

Every case is fed whole, one byte at a time, and split in two at every position.
The ``format-mime-*`` tests are about the response's Content-Type, not the body: they are
checked against ``is_event_stream`` at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ssehub.wire import Event, Parser, is_event_stream

MESSAGE_END = b"\n\n\n"  # message.py: message + "\n\n" + "\n"
NONE_END = b"\n"  # message.py with newline=none: message + "\n"
BOM = "\ufeff".encode()
LONG = b"x" * 2048


def ev(data: str, event: str | None = None, id: str = "") -> Event:
    return Event(data=data, event=event, id=id)


@dataclass(frozen=True)
class Case:
    name: str
    bodies: tuple[bytes, ...]  # one per connection
    events: tuple[Event, ...]
    retry: int | None = None
    last_event_id: str = ""


def hello(idvalue: bytes) -> bytes:
    """resources/last-event-id.py without a Last-Event-ID header."""
    return b"id: " + idvalue + b"\nretry: 200\ndata: hello\n\n"


ELLIPSIS = "\u2026"

CASES = [
    Case(
        "format-bom",
        (BOM + b"data:1\n\n" + BOM + b"data:2\n\ndata:3" + MESSAGE_END,),
        (ev("1"), ev("3")),  # only one leading BOM is ignored: the 2nd makes a bogus field
    ),
    Case(
        "format-bom-2",
        (BOM + BOM + b"data:1\n\ndata:2\n\ndata:3" + MESSAGE_END,),
        (ev("2"), ev("3")),
    ),
    Case(
        "format-comments",
        (
            b"data:1\r:\0\n:\r\ndata:2\n:"
            + LONG
            + b"\rdata:3\n:data:fail\r:"
            + LONG
            + b"\ndata:4\n"
            + NONE_END,
        ),
        (ev("1\n2\n3\n4"),),
    ),
    Case(
        "format-data-before-final-empty-line",
        (b"retry:1000\ndata:test1\n\nid:test\ndata:test2" + NONE_END,) * 2,
        # test2 is never dispatched, so its id never becomes the last event ID: the
        # reconnect sends none and test1 comes again, still with lastEventId "".
        (ev("test1"), ev("test1")),
        retry=1000,
    ),
    Case(
        "format-field-data",
        (b"data:\n\ndata\ndata\n\ndata:test" + MESSAGE_END,),
        (ev(""), ev("\n"), ev("test")),
    ),
    Case(
        "format-field-event",
        (b"event:test\ndata:x\n\ndata:x" + MESSAGE_END,),
        (ev("x", "test"), ev("x")),
    ),
    Case(
        "format-field-event-empty",
        (b"event: \ndata:data" + MESSAGE_END,),
        (ev("data"),),
    ),
    Case(
        "format-field-id",
        (hello(ELLIPSIS.encode()), f"data: {ELLIPSIS}\n\n".encode()),
        (ev("hello", id=ELLIPSIS), ev(ELLIPSIS, id=ELLIPSIS)),
        retry=200,
        last_event_id=ELLIPSIS,
    ),
    Case(
        "format-field-id-2",
        (hello(ELLIPSIS.encode()),) + (f"data: {ELLIPSIS}\n\n".encode(),) * 2,
        (ev("hello", id=ELLIPSIS), ev(ELLIPSIS, id=ELLIPSIS), ev(ELLIPSIS, id=ELLIPSIS)),
        retry=200,
        last_event_id=ELLIPSIS,
    ),
    Case(
        "format-field-id-3 persists",
        (b"id: 1\ndata: 1\n\ndata: 2\n\nid: 2\ndata:3\n\ndata:4\n\n",),
        (ev("1", id="1"), ev("2", id="1"), ev("3", id="2"), ev("4", id="2")),
        last_event_id="2",
    ),
    Case(
        "format-field-id-3 changes and persists",
        (b"id: 1\ndata: 1\n\nid: 2\ndata:2\n\ndata:3\n\n",),
        (ev("1", id="1"), ev("2", id="2"), ev("3", id="2")),
        last_event_id="2",
    ),
    Case(
        "format-field-id-3 resets",
        (b"id: 1\ndata: 1\n\nid:\ndata:2\n\ndata:3\n\n",),
        (ev("1", id="1"), ev("2"), ev("3")),
    ),
    Case(
        "format-field-id-3 resets (id without colon)",
        (b"id: 1\ndata: 1\n\nid\ndata:2\n\ndata:3\n\n",),
        (ev("1", id="1"), ev("2"), ev("3")),
    ),
    # format-field-id-null: an id containing U+0000 is ignored, so Last-Event-ID stays
    # empty and the reconnect gets the same "hello" body again.
    *(
        Case(
            f"format-field-id-null {idvalue!r}",
            (hello(idvalue),) * 2,
            (ev("hello"), ev("hello")),
            retry=200,
        )
        for idvalue in (b"\0\0", b"x\0", b"\0x", b"x\0x", b" \0")
    ),
    Case(
        "format-field-parsing",
        (
            b"data:\0\ndata:  2\rData:1\ndata\0:2\ndata:1\r\0data:4\nda-ta:3\rdata_5\n"
            b"data:3\rdata:\r\n data:32\ndata:4\n" + NONE_END,
        ),
        (ev("\0\n 2\n1\n3\n\n4"),),
    ),
    Case(
        "format-field-retry",
        (b"retry:03000\ndata:x" + MESSAGE_END,),  # base ten, not octal
        (ev("x"),),
        retry=3000,
    ),
    Case(
        "format-field-retry-bogus",
        (b"retry:3000\nretry:1000x\ndata:x" + MESSAGE_END,),
        (ev("x"),),
        retry=3000,
    ),
    Case(
        "format-field-retry-empty",
        (b"retry\ndata:test" + MESSAGE_END,),
        (ev("test"),),
    ),
    Case(
        "format-field-unknown",
        (
            b"data:test\n data\ndata\nfoobar:xxx\njustsometext\n:thisisacommentyay\ndata:test"
            + MESSAGE_END,
        ),
        (ev("test\n\ntest"),),
    ),
    Case(
        "format-leading-space",
        (b"data:\ttest\rdata: \ndata:test" + MESSAGE_END,),
        (ev("\ttest\n\ntest"),),
    ),
    Case(
        "format-newlines",
        (b"data:test\r\ndata\ndata:test\r\n\r" + NONE_END,),
        (ev("test\n\ntest"),),
    ),
    Case(
        "format-null-character",
        (b"data:\0\n\n" + MESSAGE_END,),
        (ev("\0"),),
    ),
    Case(
        "format-utf-8",  # served with charset=windows-1252: still decoded as UTF-8
        (b"data:ok\xe2\x80\xa6" + MESSAGE_END,),
        (ev("ok\u2026"),),
    ),
    Case(
        "event-data (resources/message2.py)",
        (
            b"data:msg\ndata: msg\n\n:\nfalsefield:msg\n\nfalsefield:msg\nData:data\n\n"
            b"data\n\ndata:end\n\n",
        ),
        (ev("msg\nmsg"), ev(""), ev("end")),
    ),
    Case(
        "eventsource-onmessage (message.py defaults)",
        (b"data: data" + MESSAGE_END,),
        (ev("data"),),
    ),
]

def run(case: Case, chunkings: list[list[bytes]]) -> tuple[list[Event], Parser]:
    parser = Parser()
    events: list[Event] = []
    for chunks in chunkings:
        for chunk in chunks:
            events += parser.feed(chunk)
        events += parser.close()
    return events, parser


def check(case: Case, chunkings: list[list[bytes]]) -> None:
    events, parser = run(case, chunkings)
    assert events == list(case.events)
    assert parser.retry == case.retry
    assert parser.last_event_id == case.last_event_id


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_whole(case: Case) -> None:
    check(case, [[body] for body in case.bodies])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_one_byte_at_a_time(case: Case) -> None:
    check(case, [[body[i : i + 1] for i in range(len(body))] for body in case.bodies])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_split_at_every_position(case: Case) -> None:
    longest = max(len(body) for body in case.bodies)
    for cut in range(longest + 1):
        check(case, [[body[:cut], body[cut:]] for body in case.bodies])


MIME_CASES = [
    ("format-mime-trailing-semicolon", "text/event-stream;", True),
    ("format-mime-bogus", "x bogus", False),
    ("format-mime-valid-bogus", "text/x-bogus", False),
    ("format-utf-8", "text/event-stream;charset=windows-1252", True),
    ("message.py default", "text/event-stream", True),
]


@pytest.mark.parametrize(
    ("content_type", "accepted"),
    [(c[1], c[2]) for c in MIME_CASES],
    ids=[c[0] for c in MIME_CASES],
)
def test_mime(content_type: str, accepted: bool) -> None:
    assert is_event_stream(content_type) is accepted
