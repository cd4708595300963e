"""A raw asyncio HTTP/1.1 upstream (an OpenAI-compatible ``/v1/chat/completions`` made of a
script) whose every byte and every disconnect the test controls and sees."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RawResponse", "RawUpstream", "Script", "UpstreamRequest", "delta", "sse"]


@dataclass
class UpstreamRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    disconnected_at: float | None = None

    def json(self) -> Any:
        return json.loads(self.body)


Script = Callable[["RawResponse", UpstreamRequest], Awaitable[None]]


class RawResponse:
    """Write an HTTP/1.1 response by hand: headers, chunks, end — or just vanish."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer

    async def start(self, status: int = 200, content_type: str = "text/event-stream",
                    chunked: bool = True, extra: str = "") -> None:
        # one request per connection: the script owns it until the client leaves
        head = f"HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\nconnection: close\r\n{extra}"
        head += "transfer-encoding: chunked\r\n\r\n" if chunked else "\r\n"
        self.writer.write(head.encode())
        await self.writer.drain()

    async def chunk(self, data: bytes) -> None:
        if data:
            self.writer.write(b"%x\r\n%s\r\n" % (len(data), data))
            await self.writer.drain()

    async def end(self) -> None:
        self.writer.write(b"0\r\n\r\n")
        await self.writer.drain()

    async def whole(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.writer.write(f"HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\nconnection: close\r\n"
                          f"content-length: {len(body)}\r\n\r\n".encode() + body)
        await self.writer.drain()


class RawUpstream:
    """An OpenAI-compatible upstream made of a script; records requests and disconnects."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[UpstreamRequest] = []
        self.arrived = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"

    async def __aenter__(self) -> RawUpstream:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, v in
                       (line.split(":", 1) for line in lines[1:] if ":" in line)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            request = UpstreamRequest(method, path, headers, body)
            self.requests.append(request)
            self.arrived.set()
            watcher = asyncio.get_running_loop().create_task(self._watch(reader, request))
            try:
                await self.script(RawResponse(writer), request)
                await request.disconnected.wait()  # keep the connection until the client leaves
            finally:
                watcher.cancel()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)

    async def _watch(self, reader: asyncio.StreamReader, request: UpstreamRequest) -> None:
        with contextlib.suppress(ConnectionError):
            while await reader.read(1024):
                pass
        request.disconnected_at = asyncio.get_running_loop().time()
        request.disconnected.set()


def sse(*chunks: dict[str, Any] | str) -> bytes:
    """``data:`` frames for chunk objects (or raw strings such as "[DONE]")."""
    out = []
    for c in chunks:
        text = c if isinstance(c, str) else json.dumps(c, ensure_ascii=False)
        out.append(f"data: {text}\n\n")
    return "".join(out).encode()


def delta(**d: Any) -> dict[str, Any]:
    finish = d.pop("finish", None)
    return {"id": "x", "object": "chat.completion.chunk", "choices": [
        {"index": 0, "delta": d, "finish_reason": finish}]}
