"""SPEC §8: the ASGI app mounted under a prefix in a FastAPI app, served by uvicorn. Starlette
does not run a mounted app's lifespan, so the hub must start lazily on first use."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from ssehub.asgi import create_app
from ssehub.config import Settings
from tests.support.sse import SSEStream, subscribe_target
from tests.support.uvicorn import start_uvicorn


@pytest.fixture(params=["plain", "with-http-middleware"])
async def mounted(request: pytest.FixtureRequest) -> AsyncIterator[tuple[FastAPI, Any, int]]:
    outer = FastAPI()
    if request.param == "with-http-middleware":
        # Starlette's BaseHTTPMiddleware wraps receive() in a task group: the stream's
        # disconnect watch must still work (it runs receive() in a task of its own then)
        @outer.middleware("http")
        async def tag(request, call_next):  # type: ignore[no-untyped-def]
            response = await call_next(request)
            response.headers["x-outer"] = "1"
            return response

    @outer.get("/")
    async def root() -> dict[str, str]:
        return {"app": "outer"}

    hub_app = create_app(Settings(heartbeat=0.2, retry=1500))
    outer.mount("/hub", hub_app)
    config = uvicorn.Config(outer, host="127.0.0.1", port=0, log_level="warning", lifespan="on",
                            timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    task = await start_uvicorn(server)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield outer, hub_app, port
    finally:
        await hub_app.state.hub.close()
        server.should_exit = True
        await task


async def test_publish_and_subscribe_through_prefix(
    mounted: tuple[FastAPI, Any, int], http: httpx.AsyncClient, sse_streams: list[SSEStream]
) -> None:
    _, hub_app, port = mounted
    base = f"http://127.0.0.1:{port}"
    assert (await http.get(base + "/")).json() == {"app": "outer"}
    assert (await http.get(base + "/hub/healthz")).status_code == 200

    stream = await SSEStream.open(port, subscribe_target("m", path="/hub/subscribe"))
    sse_streams.append(stream)
    assert stream.status == 200
    assert stream.header("content-type") == "text/event-stream; charset=utf-8"
    ident = (await http.post(base + "/hub/publish", json={"topic": "m", "data": "via prefix"})).json()["id"]
    event = await stream.next_event()
    assert (event.id, event.data) == (ident, "via prefix")
    assert stream.parser.retry == 1500  # the mounted app's own settings
    topics = (await http.get(base + "/hub/topics")).json()["topics"]
    assert topics == [{"topic": "m", "subscribers": 1, "last_event_id": ident, "retained": 1}]
    # the lazily started hub also runs its heartbeat ticker
    await stream.read_until(lambda s: any(f.startswith(b":") for f in s.frames()), timeout=5,
                            what="a heartbeat")

    # errors keep the hub's JSON format under the prefix; routes exist only under it
    bad = await http.post(base + "/hub/publish", json={"topic": "m", "data": "x", "event": "a\nb"})
    assert bad.status_code == 400 and "error" in bad.json()
    assert (await http.post(base + "/publish", json={"topic": "m", "data": "x"})).status_code == 404

    # resume through the prefix
    later = (await http.post(base + "/hub/publish", data={"topic": "m", "data": "later"})).json()["id"]
    target = subscribe_target("m", path="/hub/subscribe")
    resumed = await SSEStream.open(port, target, {"Last-Event-ID": ident})
    sse_streams.append(resumed)
    assert [(e.id, e.data) for e in await resumed.read_events(1)] == [(later, "later")]

    # closing the hub (what the embedding app does on shutdown) ends the streams cleanly
    await hub_app.state.hub.close()
    await stream.read_to_eof(timeout=5)
    assert stream.complete and stream.frames()[-1].startswith(b"retry: ")
