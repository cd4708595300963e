"""Malformed and hostile requests, one table, against both fronts of a real ``ssehub serve``
(``front = fast``: the protocol serves /publish and /subscribe itself; ``front = asgi``:
everything through uvicorn's ASGI cycle) and against h11 as the reference parser.

Each row is the raw bytes a client sends on a fresh connection and the statuses it must read
back, in order, before the server closes or goes quiet. Both fronts must answer every row
alike; h11 must agree on which requests are malformed (the table's classification is not
ssehub's own opinion).
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import h11
import pytest

from tests.support.serve import ServeProcess, clean_env

HOST = b"Host: 127.0.0.1\r\n"
MAX_EVENT = 4096
MAX_HEADER = 8192


def post(body: bytes, *headers: bytes, target: bytes = b"/publish?topic=hostile") -> bytes:
    return (b"POST " + target + b" HTTP/1.1\r\n" + HOST + b"".join(h + b"\r\n" for h in headers)
            + b"\r\n" + body)


JSON = b'{"topic":"hostile","data":"x"}'


def cl(body: bytes) -> bytes:
    return b"Content-Length: %d" % len(body)


@dataclass(frozen=True)
class Row:
    name: str
    data: bytes
    statuses: tuple[int, ...]  # what the client reads back, in order
    malformed: bool = False  # h11 must refuse it too
    h11: bool = True  # whether h11 can judge it (size limits and routes are not a parser's)


ROWS = [
    # well-formed
    Row("publish", post(b"hi", cl(b"hi")), (200,)),
    Row("chunked publish", post(b"2\r\nhi\r\n0\r\n\r\n", b"Transfer-Encoding: chunked"), (200,)),
    Row("pipelined publishes", post(b"a", cl(b"a")) * 3, (200, 200, 200)),
    Row("pipelined publish, bad subscribe, publish",
        post(b"a", cl(b"a")) + b"GET /subscribe HTTP/1.1\r\n" + HOST + b"\r\n" + post(b"b", cl(b"b")),
        (200, 400, 200)),
    Row("expect 100-continue", post(b"hi", cl(b"hi"), b"Expect: 100-continue"), (100, 200)),
    Row("HTTP/1.0 publish", post(b"hi", cl(b"hi")).replace(b"HTTP/1.1", b"HTTP/1.0", 1), (200,)),
    Row("GET /publish", b"GET /publish HTTP/1.1\r\n" + HOST + b"\r\n", (405,)),
    Row("HEAD /subscribe, then a publish", b"HEAD /subscribe?topic=a HTTP/1.1\r\n" + HOST + b"\r\n"
        + post(b"a", cl(b"a")), (200, 200)),
    Row("subscribe with a body, then a publish behind the stream",
        b"GET /subscribe?topic=a HTTP/1.1\r\n" + HOST + b"Content-Length: 2\r\n\r\nxx" + post(b"a", cl(b"a")),
        (200,)),  # a stream never ends by itself: what is pipelined behind it waits
    # framing: request smuggling defences
    Row("Content-Length and Transfer-Encoding",
        post(b"2\r\nhi\r\n0\r\n\r\n", b"Content-Length: 11", b"Transfer-Encoding: chunked"), (400,),
        malformed=True, h11=False),  # h11 lets Transfer-Encoding win (RFC 9112 allows either)
    Row("two different Content-Lengths", post(b"hi", b"Content-Length: 2", b"Content-Length: 3"), (400,),
        malformed=True),
    Row("non-numeric Content-Length", post(b"hi", b"Content-Length: 2x"), (400,), malformed=True),
    Row("negative Content-Length", post(b"hi", b"Content-Length: -2"), (400,), malformed=True),
    Row("Transfer-Encoding not ending in chunked", post(b"hi", b"Transfer-Encoding: gzip"), (400,),
        malformed=True, h11=False),  # h11 answers 501 Not Implemented to the same request
    Row("bad chunk size", post(b"zz\r\nhi\r\n0\r\n\r\n", b"Transfer-Encoding: chunked"), (400,),
        malformed=True),
    # header syntax
    Row("obs-fold", post(b"hi", cl(b"hi"), b"X-A: a", b" folded"), (400,), malformed=True,
        h11=False),  # h11 unfolds it (RFC 9112 allows a server to reject or unfold)
    Row("space before colon", post(b"hi", cl(b"hi"), b"X-A : a"), (400,), malformed=True),
    Row("NUL in a header value", post(b"hi", cl(b"hi"), b"X-A: a\x00b"), (400,), malformed=True),
    Row("header line without colon", post(b"hi", cl(b"hi"), b"X-A"), (400,), malformed=True),
    Row("control byte in the target", b"GET /subscribe?topic=a\x01 HTTP/1.1\r\n" + HOST + b"\r\n", (400,),
        malformed=True),
    Row("unknown method token", b"P@ST /publish HTTP/1.1\r\n" + HOST + b"\r\n", (400,), malformed=True),
    # limits and rules
    Row("head over max_header_bytes", post(b"", b"X-Big: " + b"a" * (MAX_HEADER + 100), cl(b"")), (431,),
        h11=False),
    Row("declared body over max_event_bytes", post(b"", b"Content-Length: %d" % (MAX_EVENT + 1)), (413,),
        h11=False),
    Row("chunked body growing past max_event_bytes",
        post(b"".join(b"400\r\n" + b"x" * 1024 + b"\r\n" for _ in range(6)) + b"0\r\n\r\n",
             b"Transfer-Encoding: chunked"), (413,), h11=False),
    Row("Host not served", post(b"hi", cl(b"hi")).replace(HOST, b"Host: evil.example\r\n"), (400,),
        h11=False),
    Row("cross-site Origin", post(b"hi", cl(b"hi"), b"Origin: http://evil.example"), (403,), h11=False),
    Row("generation topics are the relay's", post(b"hi", cl(b"hi"), target=b"/publish?topic=chat/x"),
        (403,), h11=False),
    Row("line break in an event name", post(b"hi", cl(b"hi"), target=b"/publish?topic=a&event=x%0Ay"),
        (400,), h11=False),
    # the first of two Content-Type headers counts, even empty (then a JSON body is refused)
    Row("empty Content-Type before a JSON one", post(JSON, cl(JSON), b"Content-Type: ",
                                                     b"Content-Type: application/json", target=b"/publish"),
        (415,), h11=False),
]

STATUS = re.compile(rb"HTTP/1\.[01] (\d{3}) ")


def exchange(port: int, data: bytes, *, quiet: float = 0.4, deadline: float = 10.0) -> list[int]:
    """Send ``data`` on a fresh connection; the statuses read until EOF or ``quiet`` s of silence."""
    with socket.create_connection(("127.0.0.1", port), timeout=deadline) as sock:
        with contextlib.suppress(OSError):  # the server may answer and close before it read all
            sock.sendall(data)
        received = b""
        sock.settimeout(quiet)
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            try:
                piece = sock.recv(65536)
            except TimeoutError:
                break
            except OSError:
                break
            if not piece:
                break
            received += piece
    return [int(m.group(1)) for m in STATUS.finditer(received)]


def h11_refuses(data: bytes) -> bool:
    """Whether h11, as a server, finds ``data`` malformed (a RemoteProtocolError)."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=1 << 20)
    conn.receive_data(data)
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
                return False
            if isinstance(event, h11.EndOfMessage) and conn.our_state is h11.SEND_RESPONSE:
                # answer, then read the next request
                conn.send(h11.Response(status_code=200, headers=[("content-length", "0")]))
                conn.send(h11.EndOfMessage())
                if conn.our_state is h11.MUST_CLOSE:  # type: ignore[comparison-overlap]
                    return False
                conn.start_next_cycle()
    except h11.RemoteProtocolError:
        return True


@pytest.fixture(scope="module", params=["fast", "asgi"])
def hub(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    front = request.param
    log = Path(tmp_path_factory.mktemp(f"hostile-{front}")) / "serve.log"
    proc = ServeProcess(["--host", "127.0.0.1", "--port", "0", "--log-level", "info", "--front", front,
                         "--max-event-bytes", str(MAX_EVENT), "--max-header-bytes", str(MAX_HEADER)],
                        log, clean_env())
    proc.start_blocking()
    yield proc
    proc.stop_blocking()


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_hostile_request(hub: ServeProcess, row: Row) -> None:
    assert exchange(hub.port, row.data) == list(row.statuses)
    # and the hub keeps serving everyone else
    assert exchange(hub.port, post(b"ok", cl(b"ok"))) == [200]


@pytest.mark.parametrize("row", [r for r in ROWS if r.h11], ids=[r.name for r in ROWS if r.h11])
def test_h11_agrees_on_what_is_malformed(row: Row) -> None:
    assert h11_refuses(row.data) == row.malformed


ERRORS = [  # (body, Content-Type, the error message's start): the same words on both fronts
    (b'[{"topic":"","data":"x"}]', b"application/json", b'{"error":"item 0: topic must be'),
    (b'[{"topic":"a","data":"x"},{"topic":"a"}]', b"application/json", b'{"error":"item 1: missing field'),
    (b'{"topic":"","data":"x"}', b"application/json", b'{"error":"topic must be'),
]


@pytest.mark.parametrize(("body", "ctype", "start"), ERRORS)
def test_error_messages_name_the_batch_item(hub: ServeProcess, body: bytes, ctype: bytes,
                                            start: bytes) -> None:
    request = post(body, cl(body), b"Content-Type: " + ctype, target=b"/publish")
    with socket.create_connection(("127.0.0.1", hub.port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while b"}" not in received.partition(b"\r\n\r\n")[2]:
            piece = sock.recv(65536)
            assert piece, received
            received += piece
    head, _, answer = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), head
    assert answer.startswith(start), answer
