"""One request the fast front serves itself: the part of uvicorn's request cycle it keeps.

uvicorn's ``HttpToolsProtocol`` reads a few attributes of its current request cycle
(``response_complete``, ``keep_alive``, ``disconnected``, ``message_event``) to pipeline
requests, shut down and notice a lost peer. A ``DirectCycle`` has exactly those, so a
request served by the front sits in the protocol's ``cycle`` slot like any ASGI request and
uvicorn's keep-alive, pipelining and shutdown logic go on working unchanged. Responses are
written with one ``transport.write`` (head and body together).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from starlette.types import Scope
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

from ..errors import SSEHubError

if TYPE_CHECKING:
    from .protocol import FrontProtocol

__all__ = ["DirectCycle", "error_body", "head"]

access_log = logging.getLogger("uvicorn.access")
log = logging.getLogger("ssehub")


def head(status: int, headers: list[tuple[bytes, bytes]], default_headers: list[tuple[bytes, bytes]],
         *, keep_alive: bool) -> list[bytes]:
    """The status line and header lines of a response, as parts to join."""
    from uvicorn.protocols.http.httptools_impl import STATUS_LINE

    parts = [STATUS_LINE[status]]
    for name, value in default_headers:
        parts += [name, b": ", value, b"\r\n"]
    for name, value in headers:
        parts += [name, b": ", value, b"\r\n"]
    if not keep_alive:
        parts.append(b"connection: close\r\n")
    parts.append(b"\r\n")
    return parts


class _OkJSON:
    """The head of ``200 application/json`` up to the content length's value, for the current
    ``default_headers`` list (uvicorn makes a new one, with a new ``date``, each second)."""

    source: object = None
    heads: tuple[bytes, bytes] = (b"", b"")

    @classmethod
    def head(cls, default_headers: list[tuple[bytes, bytes]], keep_alive: bool) -> bytes:
        if default_headers is not cls.source:
            cls.heads = tuple(  # type: ignore[assignment]
                b"".join(head(200, [(b"content-type", b"application/json")], default_headers,
                              keep_alive=keep)[:-1]) + b"content-length: "
                for keep in (False, True))
            cls.source = default_headers
        return cls.heads[keep_alive]


def error_body(exc: SSEHubError) -> bytes:
    """The JSON body of an error answer, byte for byte what the ASGI app's ``JSONResponse`` sends."""
    return json.dumps({"error": exc.message}, ensure_ascii=False, allow_nan=False,
                      separators=(",", ":")).encode()


class _Event:
    """What uvicorn calls on a cycle's ``message_event`` (``set``), with nothing waiting on it."""

    __slots__ = ()

    def set(self) -> None:
        return None


_EVENT = _Event()


class DirectCycle:
    __slots__ = ("disconnected", "keep_alive", "protocol", "response_complete", "scope", "status")

    message_event = _EVENT  # connection_lost "wakes" it

    def __init__(self, protocol: FrontProtocol, scope: Scope, keep_alive: bool) -> None:
        self.protocol = protocol
        self.scope = scope
        self.keep_alive = keep_alive
        self.disconnected = False
        self.response_complete = False
        self.status = 0

    def begin(self) -> None:
        """Start serving, once this cycle is the protocol's current one (any write may pause
        the transport, and the protocol must know whom to tell)."""

    # what uvicorn's protocol calls
    def on_body(self, body: bytes) -> None:
        """A piece of the request body (ignored unless a route reads it)."""

    def on_message_complete(self) -> None:
        """The request is whole."""

    def connection_lost(self) -> None:
        """The peer went away (or the server closed the connection)."""

    def resume_writing(self) -> None:
        """The transport's write buffer drained below its low-water mark."""

    def fail(self, exc: BaseException) -> None:
        """An unexpected error while serving (a bug): logged with its traceback, answered like
        uvicorn answers an app's exception (500, or the connection closed once a response
        started) — never a silent parser error."""
        log.error("error serving %s %s", self.scope.get("method"), self.scope.get("path"), exc_info=exc)
        transport = self.protocol.transport
        if self.status or self.response_complete:
            transport.abort()
            return
        self.keep_alive = False
        self.respond(500, [(b"content-type", b"text/plain; charset=utf-8")], b"Internal Server Error")

    # answering
    def respond(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        """Write a whole response in one write and complete this cycle."""
        protocol = self.protocol
        transport = protocol.transport
        if self.disconnected or transport.is_closing():
            self.response_complete = True
            return
        headers = [*headers, (b"content-length", b"%d" % len(body))]
        parts = head(status, headers, protocol.server_state.default_headers, keep_alive=self.keep_alive)
        parts.append(body)
        transport.write(b"".join(parts))
        self.started(status)
        self.complete()

    def respond_json(self, body: bytes) -> None:
        """``respond(200, application/json, body)`` from a cached head: the publish answer."""
        protocol = self.protocol
        transport = protocol.transport
        if self.disconnected or transport.is_closing():
            self.response_complete = True
            return
        prefix = _OkJSON.head(protocol.server_state.default_headers, self.keep_alive)
        transport.write(b"%s%d\r\n\r\n%s" % (prefix, len(body), body))
        self.started(200)
        self.complete()

    def respond_error(self, exc: SSEHubError, *, publish: bool = False) -> None:
        """The one error → response mapping of the ASGI app (``asgi/app.py``), counted alike."""
        self.protocol.hub_state.stats.count_error(exc, publish=publish)
        headers = [(b"content-type", b"application/json")]
        headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()]
        self.respond(exc.status, headers, error_body(exc))

    def started(self, status: int) -> None:
        """The response head is written: the access log line, as uvicorn writes it then."""
        self.status = status
        if self.protocol.access_log:
            scope = self.scope
            access_log.info('%s - "%s %s HTTP/%s" %d', get_client_addr(scope),  # type: ignore[arg-type]
                            scope["method"], get_path_with_query_string(scope),  # type: ignore[arg-type]
                            scope["http_version"], status)

    def complete(self) -> None:
        """The response is sent: let uvicorn go on (next pipelined request, keep-alive
        timer) or close the connection."""
        self.response_complete = True
        protocol = self.protocol
        if not self.keep_alive:
            protocol.transport.close()
        protocol.on_response_complete()
