"""Peer: a minimal, idiomatic SSE broadcast hub on aiohttp + aiohttp-sse.

Same routes as ssehub's hub API (the subset the benchmarks use):
  GET  /subscribe?topic=T[&topic=T2]   text/event-stream, events published after subscribing
  POST /publish  {"topic": T | [T...], "data": ...}     -> 200 {"id": "<n>"}
  POST /publish?topic=T  <raw body = data>              -> 200 {"id": "<n>"}

One asyncio.Queue per subscriber; publish puts the event into every queue of the topic.

Run: python bench/peers/aiohttp_sse_server.py --port 8202
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
from typing import Any

from aiohttp import web
from aiohttp_sse import sse_response

subscribers: dict[str, set[asyncio.Queue[Any]]] = {}
ids = itertools.count(1)


async def subscribe(request: web.Request) -> web.StreamResponse:
    topics = request.query.getall("topic", [])
    if not topics:
        return web.json_response({"error": "missing topic"}, status=400)
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for t in topics:  # registered before the headers go out: nothing published after is missed
        subscribers.setdefault(t, set()).add(queue)
    try:
        async with sse_response(request) as resp:
            while resp.is_connected():
                event_id, data = await queue.get()
                await resp.send(data, id=event_id)
        return resp
    finally:
        for t in topics:
            subs = subscribers.get(t)
            if subs is not None:
                subs.discard(queue)
                if not subs:
                    del subscribers[t]


async def publish(request: web.Request) -> web.Response:
    topics = request.query.getall("topic", [])
    body = await request.read()
    if topics:
        data = body.decode("utf-8")
    else:
        try:
            doc = json.loads(body)
            topic = doc["topic"]
            topics = [topic] if isinstance(topic, str) else list(topic)
            data = doc.get("data", "")
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "malformed body"}, status=400)
        if not isinstance(data, str):
            data = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    event_id = str(next(ids))
    seen: set[int] = set()
    for t in topics:
        for q in subscribers.get(t, ()):
            if id(q) not in seen:
                seen.add(id(q))
                q.put_nowait((event_id, data))
    return web.json_response({"id": event_id})


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/subscribe", subscribe)
    app.router.add_post("/publish", publish)
    return app


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8202)
    ap.add_argument("--no-uvloop", action="store_true")
    args = ap.parse_args()
    if not args.no_uvloop:
        try:  # same event loop as uvicorn's default, for a fair comparison
            import uvloop
            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        except ImportError:
            pass
    web.run_app(make_app(), host=args.host, port=args.port, access_log=None, print=None,
                backlog=4096, shutdown_timeout=1)
