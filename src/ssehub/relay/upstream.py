"""The upstream call: one shared httpx client; response bytes → wire.Parser → ChunkMapper.

``Upstream.stream()`` is an async generator of *batches* (``list[Out]``: what one network read
produced, in order) that always ends with exactly one terminal event (``done`` or ``error``)
unless it is cancelled. Every
failure becomes an ``error`` event with a message safe to show (no stack trace, no key):
non-2xx answers (with the upstream's own message), connect and read time-outs, refused
connections, a body that stops early. Cancelling the consuming task leaves the ``async with``
and closes the HTTP connection at once (an unfinished HTTP/1.1 response is never pooled).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..config import Settings
from ..errors import EventTooLarge, LineTooLong
from ..wire import Parser
from .clients import PER_CLIENT, ClientPool
from .mapping import ChunkMapper, Out, error_from_response, map_completion
from .netback import use_asyncio_backend
from .providers import Provider

__all__ = ["ERROR_EXCERPT", "Upstream", "excerpt", "scrub"]

MAX_ERROR_BODY = 64 * 1024
ERROR_EXCERPT = 300  # characters of an upstream error message copied into an ``error`` event
MAX_LINE = 1 << 20  # one upstream SSE line (a chunk is one data line)
MAX_EVENT = 4 << 20
DRAIN_SECONDS = 1.0
_LOOPBACK = ("all://127.0.0.1", "all://localhost", "all://[::1]")


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Remove every secret from a message before anyone sees it — also the start of one that
    the message's clipping (a trailing "…") cut in two."""
    for secret in secrets:
        if not secret:
            continue
        if secret in text:
            text = text.replace(secret, "***")
        if text.endswith("…"):
            body = text[:-1]
            for k in range(min(len(secret), len(body)), 3, -1):
                if body.endswith(secret[:k]):
                    text = body[:-k] + "***…"
                    break
    return text


def excerpt(message: str, secrets: Iterable[str] = ()) -> str:
    """What of an upstream's error text may reach a reader: at most ERROR_EXCERPT characters,
    every secret (and a clipped start of one) scrubbed."""
    if len(message) > ERROR_EXCERPT:
        message = message[: ERROR_EXCERPT - 1] + "…"
    return scrub(message, secrets)


def _scrubbed(out: Out, secrets: Sequence[str]) -> Out:
    if out.event == "error":
        return Out("error", {**out.data, "message": excerpt(str(out.data["message"]), secrets)})
    return out


class Upstream:
    """The pooled HTTP client(s) shared by every generation. ``async with Upstream(s) as u:``."""

    def __init__(self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None,
                 errors: dict[str, int] | None = None) -> None:
        #: failed upstream calls by kind (http_4xx, http_5xx, connect, connect_timeout,
        #: read_timeout, dropped, stream_error, oversized, pool, other): read by /metrics
        self.errors: dict[str, int] = {} if errors is None else errors
        self.connect_timeout = settings.upstream_connect_timeout
        self.read_timeout = settings.upstream_read_timeout
        timeout = httpx.Timeout(
            connect=self.connect_timeout,
            read=self.read_timeout,  # the longest silence between two reads
            write=self.connect_timeout,
            pool=self.connect_timeout,
        )
        limits = httpx.Limits(
            max_connections=PER_CLIENT + 16 if transport is None else settings.max_generations + 16,
            max_keepalive_connections=PER_CLIENT,
            keepalive_expiry=30.0,
        )
        # Loopback (the built-in demo) never goes through an environment proxy.
        mounts: Mapping[str, httpx.AsyncBaseTransport | None] = dict.fromkeys(_LOOPBACK)
        ssl = httpx.create_ssl_context()  # one for every client: building one costs ~30 ms

        def new_client() -> httpx.AsyncClient:
            client = httpx.AsyncClient(
                timeout=timeout, limits=limits, transport=transport, mounts=mounts, verify=ssl,
                follow_redirects=False,
                # compression makes proxies and servers buffer a stream: ask for none
                headers={"user-agent": "ssehub", "accept-encoding": "identity"},
            )
            use_asyncio_backend(client)  # (reads without anyio's per-read cost: netback.py)
            return client

        self._pool = ClientPool(new_client, settings.max_generations, single=transport is not None)

    async def __aenter__(self) -> Upstream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def stream(
        self,
        provider: Provider,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any] | None = None,
        *,
        base_url: str | None = None,
        secrets: Sequence[str] = (),
    ) -> AsyncGenerator[list[Out], None]:
        """POST ``{base_url}/chat/completions`` with ``stream: true``; yield batches of events."""
        body = {**provider.params, **(params or {}), "model": model, "messages": list(messages),
                "stream": True}
        url = provider.url(base_url)
        # aclosing: closing this generator while it waits at ``yield`` must close the inner one
        # (and so the HTTP connection) now, not whenever the inner generator is collected.
        async with contextlib.aclosing(self._stream(url, provider.request_headers(), body)) as batches:
            async for batch in batches:
                yield [_scrubbed(out, secrets) for out in batch]

    async def _stream(
        self, url: str, headers: dict[str, str], body: dict[str, Any]
    ) -> AsyncGenerator[list[Out], None]:
        mapper = ChunkMapper()
        host = urlsplit(url).hostname or "upstream"
        slot, client = self._pool.acquire()
        try:
            async with client.stream("POST", url, json=body, headers=headers) as resp:
                if resp.status_code >= 300:
                    raw = await _read_limited(resp, MAX_ERROR_BODY)
                    self._failed(f"http_{resp.status_code // 100}xx")
                    yield [error_from_response(resp.status_code, raw, resp.headers.get("content-type", ""))]
                    return
                ctype = resp.headers.get("content-type", "").lower()
                if "json" in ctype and "event-stream" not in ctype:
                    # The upstream ignored stream:true and answered one JSON document.
                    raw = await _read_limited(resp, MAX_EVENT)
                    try:
                        doc = json.loads(raw)
                    except ValueError:
                        doc = None
                    outs = map_completion(doc)
                    if outs and outs[-1].event == "error":
                        self._failed("stream_error")
                    yield outs
                    return
                parser = Parser(max_line_bytes=MAX_LINE, max_event_bytes=MAX_EVENT)
                encoded = resp.headers.get("content-encoding", "identity").lower() != "identity"
                pieces = resp.aiter_bytes() if encoded else resp.aiter_raw()
                async for piece in pieces:
                    batch: list[Out] = []
                    for event in parser.feed(piece):
                        batch += mapper.feed(event.data, event.event)
                        if mapper.finished:
                            break
                    if batch:
                        yield batch
                    if mapper.finished:
                        if batch[-1].event == "done":
                            await _drain(pieces)
                        else:
                            self._failed("stream_error")
                        return
                parser.close()
        except httpx.ConnectTimeout:
            kind = "connect_timeout"
            outs = mapper.fail(f"timed out connecting to {host} after {self.connect_timeout:g} s")
        except httpx.ReadTimeout:
            outs, kind = mapper.fail(f"{host} sent nothing for {self.read_timeout:g} s"), "read_timeout"
        except httpx.PoolTimeout:
            outs, kind = mapper.fail("too many upstream requests in flight"), "pool"
        except httpx.ConnectError:
            outs, kind = mapper.fail(f"could not connect to {host}"), "connect"
        except (httpx.RemoteProtocolError, httpx.ReadError):
            outs, kind = mapper.end(), "dropped"  # the connection dropped mid-stream
        except httpx.HTTPError as exc:
            outs, kind = mapper.fail(f"request to {host} failed ({type(exc).__name__})"), "other"
        except (LineTooLong, EventTooLarge):
            outs, kind = mapper.fail(f"{host} sent an oversized event"), "oversized"
        else:
            outs, kind = mapper.end(), "dropped"  # (an error only if the stream ended early)
        finally:
            self._pool.release(slot)
        if outs:
            if outs[-1].event == "error":
                self._failed(kind)
            yield outs

    def _failed(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


async def _drain(pieces: AsyncIterator[bytes]) -> None:
    """Read what follows ``[DONE]`` (the end of the chunked body) so the connection is pooled."""
    size = 0
    with contextlib.suppress(httpx.HTTPError, TimeoutError):
        async with asyncio.timeout(DRAIN_SECONDS):
            async for piece in pieces:
                size += len(piece)
                if size > MAX_ERROR_BODY:
                    return


async def _read_limited(resp: httpx.Response, limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    async for piece in resp.aiter_bytes():
        parts.append(piece)
        size += len(piece)
        if size >= limit:
            break
    return b"".join(parts)[:limit]
