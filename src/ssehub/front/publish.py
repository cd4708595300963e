"""POST /publish served by the fast front: llhttp callbacks in, one write out.

The checks that need only the head (Host, site, token, declared size) run as soon as the
head is in; the body is collected up to ``max_event_bytes``; when it is whole the publish
runs through the same ``PublishRequest`` as the ASGI route. On the memory broker a publish
of up to ``BATCH_SLICE`` events completes inside the parser callback (no task, no await);
otherwise one task awaits the broker, and requests pipelined behind it wait (uvicorn's own
pipeline queue), so answers keep their order.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from starlette.types import Scope

from ..asgi.publishing import PublishRequest, publish_gate
from ..asgi.query import Query
from ..errors import PayloadTooLarge, SSEHubError
from ..tokens import Grant
from .cycle import DirectCycle

if TYPE_CHECKING:
    from .protocol import FrontProtocol

__all__ = ["DirectPublish"]


class DirectPublish(DirectCycle):
    __slots__ = ("_body", "_continue", "_ctype", "_failed", "_grant", "_limit")

    def __init__(self, protocol: FrontProtocol, scope: Scope, keep_alive: bool,
                 expect_continue: bool) -> None:
        super().__init__(protocol, scope, keep_alive)
        self._body: bytes | bytearray = b""
        self._failed = False
        self._limit = protocol.hub_state.settings.max_event_bytes
        self._ctype = ""
        self._grant: Grant | None = None
        self._continue = expect_continue

    def begin(self) -> None:
        """The checks that need only the head: Host was checked by the protocol; here the
        site, the token and the declared size."""
        declared = ctype = None
        for name, value in self.scope["headers"]:  # (as Starlette's Headers.get: the first)
            if name == b"content-length":
                if declared is None:
                    declared = value
            elif name == b"content-type" and ctype is None:
                ctype = value
        self._ctype = "" if ctype is None else ctype.decode("latin-1")
        try:
            self._grant = publish_gate(self.protocol.hub_state, self.scope)
            if declared is not None and declared.isdigit() and int(declared) > self._limit:
                raise PayloadTooLarge(f"body larger than max_event_bytes ({self._limit} bytes)")
        except SSEHubError as exc:
            self._fail(exc)
            return
        if self._continue:
            self.protocol.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _fail(self, exc: SSEHubError) -> None:
        """Answer ``exc`` now; the rest of the body is read and dropped by the parser."""
        self._failed = True
        self.respond_error(exc, publish=True)

    def on_body(self, body: bytes) -> None:
        if self._failed:
            return
        if len(self._body) + len(body) > self._limit:
            self._fail(PayloadTooLarge(f"body larger than max_event_bytes ({self._limit} bytes)"))
            return
        if not self._body:  # (one piece is the rule: kept as it came, no copy)
            self._body = body
            return
        if isinstance(self._body, bytes):  # more pieces: a bytearray (no quadratic joining)
            self._body = bytearray(self._body)
        self._body += body

    def on_message_complete(self) -> None:
        if self._failed:
            return
        state = self.protocol.hub_state
        try:
            body = self._body
            request = PublishRequest(state, self._grant, body if isinstance(body, bytes) else bytes(body),
                                     self._ctype,
                                     Query(self.scope["query_string"]))
            self._body = b""
            answer = request.run_now()
        except SSEHubError as exc:
            self.respond_error(exc, publish=True)
            return
        except Exception as exc:  # a bug: answered like uvicorn answers an app's exception
            self.fail(exc)
            return
        if answer is not None:
            self.respond_json(answer)
            return
        task = asyncio.get_running_loop().create_task(self._run(request))
        tasks = self.protocol.tasks
        tasks.add(task)  # uvicorn's shutdown waits for it
        task.add_done_callback(tasks.discard)

    async def _run(self, request: PublishRequest) -> None:
        try:
            answer = await request.run()
        except SSEHubError as exc:
            self.respond_error(exc, publish=True)
        except Exception as exc:
            self.fail(exc)
        else:
            self.respond_json(answer)

    def connection_lost(self) -> None:
        self.disconnected = True
