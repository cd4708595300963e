"""Limits on the request head and on connections, enforced before the ASGI app sees a request.

httptools (uvicorn's fast HTTP parser) has no limit of its own on the size of a request head
and uvicorn has no head read timeout: an unfinished 300 MiB header is buffered whole, and a
socket that never finishes its head stays open forever. ``protocol_class(limits)`` returns a
subclass of uvicorn's ``HttpToolsProtocol`` that adds, per connection:

- **head size**: the request line and headers of each request may take ``max_header_bytes``;
  beyond, ``431`` and the connection is closed (never more than that is fed to the parser);
- **head time**: the head must be complete ``header_timeout`` seconds after the connection
  opened (or after the first byte of the next request on a kept-alive connection); else
  ``408`` and close. The idle time between two requests is uvicorn's keep-alive timeout;
- **connections**: every open connection counts (streams, publishes, half-sent heads alike).
  Past ``max_connections`` a new connection is answered ``503`` as soon as its head is in;
  past ``max_connections + overflow`` it is closed at once, so the process never reaches its
  open-file limit (``limits_for`` lowers ``max_connections`` to fit that limit).

Error answers are JSON ``{"error": "..."}`` with ``Connection: close``. The limit logic lives in
small functions and ``EdgeLimits``. Pipelining and keep-alive are uvicorn's; two of its
per-request costs are cut here for both fronts: its keep-alive timer and the head timer are
lazy (one timer per connection, not one armed and cancelled per request), and the local
address of a connection to a socket bound to one IP is looked up once. ``GuardedProtocol``
is the base of the fast front (``front/``), which overrides ``_dispatch``, ``_body`` and
``_complete`` to serve the hot routes itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import resource
from collections import deque
from dataclasses import dataclass
from typing import Any

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.protocols.utils import get_local_addr, get_remote_addr, is_ssl
from uvicorn.server import ServerState

from .config import Settings

__all__ = ["EdgeLimits", "GuardedProtocol", "admit", "error_head", "limits_for", "protocol_class",
           "raise_nofile_limit"]

log = logging.getLogger("ssehub")

RESERVED_FDS = 128  # files, log files, broker and upstream connections: never used by clients
LINGER = 1.0  # seconds a refused connection stays open (not reading) so its answer is read


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    max_header_bytes: int = 16 * 1024
    header_timeout: float = 10.0
    max_connections: int = 100_000
    overflow: int = 64  # connections past max_connections that still get a 503 (not a reset)


def _is_ip(host: str) -> bool:
    """A single IP address, not a wildcard (0.0.0.0, ::) nor a name."""
    try:
        return not ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def raise_nofile_limit() -> int:
    """Raise the soft open-file limit to the hard one (one log line); return the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):  # pragma: no cover - a sandbox that refuses
            log.warning("could not raise the open-file limit above %d", soft)
            return soft
        log.info("raised the open-file limit (RLIMIT_NOFILE) from %d to %d", soft, target)
        return target
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def limits_for(settings: Settings, nofile: int) -> EdgeLimits:
    """The edge limits of ``settings``, with ``max_connections`` lowered to fit ``nofile``."""
    overflow = 64
    fit = nofile - RESERVED_FDS - overflow
    connections = settings.max_connections
    if fit < connections:
        connections = max(1, fit)
        log.info("max_connections lowered from %d to %d to stay below the open-file limit (%d)",
                 settings.max_connections, connections, nofile)
    return EdgeLimits(settings.max_header_bytes, settings.header_timeout, connections, overflow)


def admit(open_connections: int, limits: EdgeLimits) -> str:
    """``"ok"``, ``"busy"`` (answer 503) or ``"drop"`` (close at once) for a new connection,
    ``open_connections`` counting it."""
    if open_connections <= limits.max_connections:
        return "ok"
    if open_connections <= limits.max_connections + limits.overflow:
        return "busy"
    return "drop"


def error_head(status: int, message: str) -> bytes:
    """A complete HTTP/1.1 error response with a JSON body, closing the connection."""
    body = json.dumps({"error": message}).encode()
    return b"".join([
        STATUS_LINE[status],
        b"content-type: application/json\r\ncontent-length: ", str(len(body)).encode(),
        b"\r\nconnection: close\r\n\r\n", body,
    ])


def _ip_port(address: object) -> tuple[str, int] | None:
    """``(host, port)`` of a transport's ``peername``/``sockname`` (None for a Unix socket)."""
    if isinstance(address, tuple) and len(address) >= 2:
        return str(address[0]), int(address[1])
    return None


class GuardedProtocol(HttpToolsProtocol):
    limits: EdgeLimits = EdgeLimits()

    # What uvicorn's __init__ sets on every protocol — config, loggers, the server's shared
    # state, empty per-connection slots — becomes class attributes at the first connection
    # of a server (a class is made per server: ``protocol_class``, ``front_protocol_class``).
    # A new connection's protocol then costs a parser and a deque, not uvicorn's whole set-up.
    # (A protocol of another server or loop sharing the class gets uvicorn's own __init__,
    # whose instance attributes shadow the class's.)
    _shared_by: tuple[object, object, object, object] | None = None
    _PER_CONNECTION = frozenset({"parser", "pipeline", "access_log"})

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        loop = _loop or asyncio.get_event_loop()
        cls = type(self)
        shared_by = cls._shared_by
        if (shared_by is not None and shared_by[0] is config and shared_by[1] is server_state
                and shared_by[2] is app_state and shared_by[3] is loop):
            self.access_log = self.access_logger.hasHandlers()  # (as uvicorn: per connection)
            self.parser = parser = httptools.HttpRequestParser(self)
            with contextlib.suppress(AttributeError):  # (httptools < 0.6.3)
                parser.set_dangerous_leniencies(lenient_data_after_close=True)
            self.pipeline = deque()
            return
        super().__init__(config, server_state, app_state, loop)
        self._own_init()
        if shared_by is None:
            for name, value in self.__dict__.items():
                if name not in self._PER_CONNECTION:
                    setattr(cls, name, value)
            cls._shared_by = (config, server_state, app_state, loop)

    def _own_init(self) -> None:
        self._head_open = True  # the next bytes belong to a request head
        self._head_bytes = 0
        self._heads = 0  # request heads completed on this connection
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_since: float | None = None  # loop time the current head began (None: none open)
        self._idle_since: float | None = None  # loop time the last response ended (None: busy)
        self._busy = False
        self._refused = False

    # connection
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # uvicorn's, less one getsockname() per connection: on a socket bound to one address
        # every connection has the same local address (scope["server"])
        self.connections.add(self)
        self.transport = transport
        self.flow = FlowControl(transport)
        self.server = self._local_address(transport)
        # the peer's address as the transport holds it (uvicorn asks a socket object for it:
        # on uvloop that builds one per connection, 4 µs against 0.5); likewise the local one
        self.client = _ip_port(transport.get_extra_info("peername")) or get_remote_addr(transport)
        self.scheme = "https" if is_ssl(transport) else "http"
        verdict = admit(len(self.connections), self.limits)
        if verdict == "drop":
            self._refused = True
            transport.abort()
            return
        self._busy = verdict == "busy"
        self._arm()

    _local: tuple[str, int | None] | None = None

    def _local_address(self, transport: asyncio.Transport) -> tuple[str, int | None] | None:
        cls = type(self)
        if cls._local is not None:
            return cls._local
        local = _ip_port(transport.get_extra_info("sockname")) or get_local_addr(transport)
        config = self.config
        if local is not None and _is_ip(config.host) and config.uds is None and config.fd is None:
            cls._local = local  # (a name such as localhost may be bound on several addresses)
        return local

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self.timeout_keep_alive_task is not None:
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None
        super().connection_lost(exc)

    # Both per-request timers (the head deadline, uvicorn's keep-alive) are lazy: one timer per
    # connection, left running across requests, which on firing checks the time of the head
    # or idle period it guards and re-arms for what is left. Arming and cancelling two timers
    # per request was a measurable share of a small publish.
    def _arm(self) -> None:
        self._head_since = self.loop.time()
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_late)

    def _disarm(self) -> None:
        self._head_since = None
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_late(self) -> None:
        self._head_timer = None
        since = self._head_since
        if since is None or self.transport.is_closing():
            return  # no head under way: the next one arms the timer again
        left = since + self.limits.header_timeout - self.loop.time()
        if left > 0:
            self._head_timer = self.loop.call_later(left, self._head_late)
            return
        self._refuse(408, f"request head not received within {self.limits.header_timeout:g} s")

    def _unset_keepalive_if_required(self) -> None:  # uvicorn calls it on every read
        self._idle_since = None

    def on_response_complete(self) -> None:
        """uvicorn's, with its keep-alive timer made lazy (see ``_arm``)."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._idle_since = None
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        self._idle_since = self.loop.time()
        if self.timeout_keep_alive_task is None:
            self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive,
                                                                self.timeout_keep_alive_handler)

    def timeout_keep_alive_handler(self) -> None:
        self.timeout_keep_alive_task = None
        since = self._idle_since
        if since is None or self.transport.is_closing():
            return  # a request is under way: the next response arms the timer again
        left = since + self.timeout_keep_alive - self.loop.time()
        if left > 0:
            self.timeout_keep_alive_task = self.loop.call_later(left, self.timeout_keep_alive_handler)
            return
        self.transport.close()

    # bytes in
    def data_received(self, data: bytes) -> None:
        if self._refused:  # lingering (reading is paused; a read already under way lands here)
            return
        if self._head_open:
            room = self.limits.max_header_bytes - self._head_bytes
            if len(data) > room:
                first, rest = data[:room], data[room:]
                self._head_bytes += len(first)
                heads = self._heads
                if first:
                    super().data_received(first)
                if self._refused or self.transport.is_closing():
                    return
                if self._head_open and self._heads == heads:
                    self._refuse(431, f"request line and headers exceed max_header_bytes "
                                      f"({self.limits.max_header_bytes} bytes)")
                    return
                # a head ended within ``first``: count the next one anew (pipelining)
                self.data_received(rest)
                return
            self._head_bytes += len(data)
        super().data_received(data)

    # parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_open = True
        self._idle_since = None  # a request is under way (even one pipelined behind an answer)
        if self._head_since is None:  # (the first head's deadline runs from the connect)
            self._arm()

    def on_headers_complete(self) -> None:
        self._head_open = False
        self._heads += 1
        self._head_since = None  # (the timer stays: see _arm)
        if self._busy:
            self._refuse(503, "too many open connections; try again later")
            return
        self._dispatch()

    def _dispatch(self) -> None:
        """Serve the request whose head is complete (a front serving some routes itself
        overrides this): uvicorn's ASGI request cycle."""
        super().on_headers_complete()

    def _body(self, body: bytes) -> None:
        """A piece of the request body (see ``_dispatch``)."""
        super().on_body(body)

    def _complete(self) -> None:
        """The request is whole (see ``_dispatch``)."""
        super().on_message_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            self._body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._complete()
        self._head_open = True  # whatever comes next is the head of the next request
        self._head_bytes = 0

    # answers
    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` (unless a response is already under way) and close the connection;
        after a 431, whose client may still be sending its head, only after a short linger (a
        close with unread data would reset the connection and lose the answer)."""
        self._refused = True
        self._disarm()
        transport = self.transport
        if self.cycle is None or self.cycle.response_complete:
            transport.write(error_head(status, message))
        if status != 431:  # the head was read (503) or nothing is arriving (408): close now
            transport.close()
        elif transport.can_write_eof():
            # FIN after the answer, then stop reading: a client still sending blocks on its full
            # window (nothing more is buffered here) while it reads the answer; closed after LINGER
            transport.write_eof()
            transport.pause_reading()
            self.loop.call_later(LINGER, transport.abort)
        else:  # pragma: no cover - TLS transports
            transport.close()


def protocol_class(limits: EdgeLimits) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with ``limits`` (pass it as ``uvicorn.Config(http=...)``)."""
    return type("SSEHubHttpProtocol", (GuardedProtocol,), {"limits": limits})
