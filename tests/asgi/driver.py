"""A streaming ASGI test driver: Starlette's TestClient and httpx's ASGITransport buffer the
whole body, which never ends for SSE. This one hands out body chunks as they are sent and can
inject ``http.disconnect`` at any moment."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

from starlette.types import ASGIApp, Message


class Stream:
    def __init__(self, app: ASGIApp, path: str, query: list[tuple[str, str]] | None = None, *,
                 headers: dict[str, str] | None = None, method: str = "GET", body: bytes = b"") -> None:
        self.scope: dict[str, Any] = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
            "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
            "query_string": urlencode(query or []).encode(),
            "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8181),
        }
        self.app = app
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.inbox.put_nowait({"type": "http.request", "body": body, "more_body": False})
        self.outbox: asyncio.Queue[Message] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.ended = False

    async def _receive(self) -> Message:
        return await self.inbox.get()

    async def _send(self, message: Message) -> None:
        await self.outbox.put(message)

    async def _run(self) -> None:
        await self.app(self.scope, self._receive, self._send)

    async def start(self) -> Stream:
        self.task = asyncio.create_task(self._run())
        start = await asyncio.wait_for(self.outbox.get(), 5)
        assert start["type"] == "http.response.start", start
        self.status = start["status"]
        self.headers = {k.decode(): v.decode() for k, v in start["headers"]}
        return self

    async def chunk(self, timeout: float = 5) -> bytes:
        message = await asyncio.wait_for(self.outbox.get(), timeout)
        assert message["type"] == "http.response.body"
        if not message.get("more_body", False):
            self.ended = True
        return bytes(message.get("body", b""))

    async def body_until_end(self, timeout: float = 5) -> bytes:
        parts = []
        while not self.ended:
            parts.append(await self.chunk(timeout))
        return b"".join(parts)

    def disconnect(self) -> None:
        self.inbox.put_nowait({"type": "http.disconnect"})

    async def finished(self, timeout: float = 5) -> None:
        assert self.task is not None
        await asyncio.wait_for(self.task, timeout)
