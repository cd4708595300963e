"""Peer: a minimal, idiomatic SSE broadcast hub on sse-starlette + Starlette + uvicorn.

Same routes as ssehub's hub API (the subset the benchmarks use):
  GET  /subscribe?topic=T[&topic=T2]   text/event-stream, events published after subscribing
  POST /publish  {"topic": T | [T...], "data": ...}     -> 200 {"id": "<n>"}
  POST /publish?topic=T  <raw body = data>              -> 200 {"id": "<n>"}

One asyncio.Queue per subscriber; publish puts the event into every queue of the topic.
No history, no resume: this is the "hand-written script" ssehub replaces.

Run: python bench/peers/sse_starlette_server.py --port 8201
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

subscribers: dict[str, set[asyncio.Queue[Any]]] = {}
ids = itertools.count(1)


async def subscribe(request: Request) -> Response:
    topics = request.query_params.getlist("topic")
    if not topics:
        return JSONResponse({"error": "missing topic"}, status_code=400)
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for t in topics:  # registered before the response starts: nothing published after is missed
        subscribers.setdefault(t, set()).add(queue)

    async def events() -> AsyncIterator[Any]:
        try:
            while True:
                yield await queue.get()
        finally:
            for t in topics:
                subs = subscribers.get(t)
                if subs is not None:
                    subs.discard(queue)
                    if not subs:
                        del subscribers[t]

    response: Response = EventSourceResponse(events(), ping=15)
    return response


async def publish(request: Request) -> Response:
    topics = request.query_params.getlist("topic")
    body = await request.body()
    if topics:
        data = body.decode("utf-8")
    else:
        try:
            doc = json.loads(body)
            topic = doc["topic"]
            topics = [topic] if isinstance(topic, str) else list(topic)
            data = doc.get("data", "")
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "malformed body"}, status_code=400)
        if not isinstance(data, str):
            data = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    event_id = str(next(ids))
    message = {"id": event_id, "data": data}
    seen: set[int] = set()
    for t in topics:
        for q in subscribers.get(t, ()):
            if id(q) not in seen:
                seen.add(id(q))
                q.put_nowait(message)
    return JSONResponse({"id": event_id})


app = Starlette(routes=[
    Route("/subscribe", subscribe),
    Route("/publish", publish, methods=["POST"]),
])

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8201)
    args = ap.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False,
                backlog=4096)
