"""The chat routes on the real app under uvicorn: POST /chat, DELETE, /chat/stream + resume,
/v1/models, limits, the built-in demo over real HTTP, and keys that never leak."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from ssehub.asgi import create_app
from ssehub.config import Settings
from ssehub.wire import Event
from tests.support.sse import EventReader, read_events, terminal
from tests.support.upstream import RawResponse, RawUpstream, UpstreamRequest, delta, sse
from tests.support.uvicorn import serve_app

KEY = "sk-live-0123456789abcdefSECRET"
OTHER_KEY = "sk-other-provider-SECRET-9876"


@contextlib.asynccontextmanager
async def running(**kw: Any) -> AsyncIterator[httpx.AsyncClient]:
    values: dict[str, Any] = {"demo_tokens_per_second": 0, "chat_grace": 5.0, "log_level": "debug"}
    values.update(kw)
    app = create_app(Settings(**values))
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        yield client


async def events_of(client: httpx.AsyncClient, url: str, **kw: Any) -> list[Event]:
    async with client.stream("GET", url, **kw) as resp:
        assert resp.status_code == 200
        return await read_events(resp.aiter_bytes(), until=terminal)


def payloads(events: list[Event], kind: str) -> list[Any]:
    return [json.loads(e.data) for e in events if e.event == kind]


async def test_post_chat_streams_the_demo_over_real_http() -> None:
    async with running() as client:
        r = await client.post("/chat", json={"messages": [{"role": "user", "content": "What is SSE? 你好"}]})
        assert r.status_code == 200
        info = r.json()
        gid = info["id"]
        assert info == {"id": gid, "topic": f"chat/{gid}",
                        "events": f"/subscribe?topic=chat/{gid}&last_event_id=earliest"}
        events = await events_of(client, info["events"])
        assert payloads(events, "start") == [{"id": gid, "model": "ssehub-demo", "provider": "demo"}]
        reasoning = "".join(p["text"] for p in payloads(events, "reasoning"))
        answer = "".join(p["text"] for p in payloads(events, "content"))
        assert "What is SSE? 你好" in reasoning and "demo" in reasoning
        for needle in ("demonstration", "SSEHUB_LLM_BASE_URL", "SSEHUB_LLM_API_KEY", "SSEHUB_LLM_MODEL",
                       "```bash", "| Provider |"):
            assert needle in answer
        assert payloads(events, "usage")[0]["completion_tokens"] > 100
        assert payloads(events, "done") == [{"finish_reason": "stop"}]
        r = await client.get("/v1/models")
        assert r.json()["data"] == [{"id": "ssehub-demo", "object": "model", "owned_by": "demo",
                                     "provider": "demo"}]


async def test_demo_fault_models_are_refused_unless_simulator_faults_is_on() -> None:
    async with running() as client:
        r = await client.post("/chat", json={"messages": [{"role": "user", "content": "x"}],
                                             "model": "ssehub-demo+stall"})
        assert r.status_code == 404 and "unknown model" in r.json()["error"]
        # nor through the demo endpoint itself: the fault header and model suffix are ignored
        body = {"messages": [{"role": "user", "content": "x"}], "model": "ssehub-demo+drop"}
        r = await client.post("/demo/v1/chat/completions", headers={"x-simulator-fault": "error-500"},
                              json=body)
        assert r.status_code == 200 and r.json()["choices"][0]["finish_reason"] == "stop"


async def test_demo_faults_are_selectable_by_model() -> None:
    async with running(simulator_faults=True) as client:
        r = await client.post("/chat", json={"messages": [{"role": "user", "content": "x"}],
                                             "model": "ssehub-demo+error-429"})
        events = await events_of(client, r.json()["events"])
        assert [e.event for e in events] == ["start", "error"]
        assert payloads(events, "error")[0]["status"] == 429
        r = await client.post("/chat", json={"messages": [{"role": "user", "content": "x"}],
                                             "model": "ssehub-demo+drop"})
        events = await events_of(client, r.json()["events"])
        assert events[-1].event == "error" and payloads(events, "error")[0]["status"] is None


@pytest.mark.parametrize(("body", "status"), [
    (b"not json", 400),
    (b"[]", 400),
    (b'{"messages": []}', 400),
    (b'{"messages": [{"role": "robot", "content": "x"}]}', 400),
    (b'{"messages": [{"role": "user", "content": "x"}], "temperature": 7}', 400),
    (b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}', 400),
    (b'{"messages": [{"role": "user", "content": "x"}], "provider": "nope"}', 404),
    (b'{"messages": [{"role": "user", "content": "x"}], "model": "gpt-9"}', 404),
])
async def test_bad_requests(body: bytes, status: int) -> None:
    async with running() as client:
        r = await client.post("/chat", content=body, headers={"content-type": "application/json"})
        assert r.status_code == status
        assert set(r.json()) == {"error"}


def slow_script(release: asyncio.Event | None = None) -> Any:
    async def script(resp: RawResponse, req: UpstreamRequest) -> None:
        await resp.start()
        await resp.chunk(sse(delta(role="assistant", content=None), delta(reasoning_content="a"),
                             delta(content="b")))
        if release is None:
            return
        await release.wait()
        await resp.chunk(sse(delta(content="c"), delta(finish="stop"), "[DONE]"))
        await resp.end()
    return script


async def test_delete_stops_the_generation() -> None:
    async with RawUpstream(slow_script()) as up, \
            running(llm_base_url=up.base_url, llm_model="m") as client:
        assert (await client.delete("/chat/unknown")).status_code == 404
        info = (await client.post("/chat", json={"messages": [{"role": "user", "content": "x"}]})).json()
        async with client.stream("GET", info["events"]) as resp:
            reader = EventReader(resp.aiter_bytes())
            events = await reader.until(lambda e: e.event == "content")
            t0 = asyncio.get_running_loop().time()
            r = await client.delete(f"/chat/{info['id']}")
            assert r.status_code == 200
            events += await reader.until(terminal)
        await asyncio.wait_for(up.requests[0].disconnected.wait(), 1)
        assert up.requests[0].disconnected_at is not None
        assert up.requests[0].disconnected_at - t0 < 0.1
        assert [e.event for e in events] == ["start", "reasoning", "content", "done"]
        assert payloads(events, "done") == [{"finish_reason": "cancelled"}]
        await asyncio.wait_for(up.requests[0].disconnected.wait(), 1)
        assert (await client.delete(f"/chat/{info['id']}")).status_code == 404


async def test_chat_stream_resumes_the_same_generation() -> None:
    release = asyncio.Event()
    async with RawUpstream(slow_script(release)) as up, \
            running(llm_base_url=up.base_url, llm_model="m") as client:
        async with client.stream("GET", "/chat/stream", params={"prompt": "hi"}) as resp:
            assert resp.headers["content-type"] == "text/event-stream; charset=utf-8"
            assert resp.headers["cache-control"] == "no-cache"
            assert "connection" not in resp.headers
            first = await read_events(resp.aiter_bytes(), until=lambda e: e.event == "content")
        gid = json.loads(first[0].data)["id"]
        assert all(e.id and e.id.startswith(gid + "/") for e in first)
        last = first[-1].id
        assert last is not None
        release.set()
        async with client.stream("GET", "/chat/stream", params={"prompt": "hi"},
                                 headers={"last-event-id": last}) as resp:
            rest = await read_events(resp.aiter_bytes())  # the response ends after the terminal event
        assert [e.event for e in rest] == ["content", "done"]
        assert payloads(rest, "content") == [{"text": "c"}]
        assert len(up.requests) == 1  # no second upstream request
        assert rest[-1].id is not None
        for resume in (rest[-1].id, f"{gid}/", "unknown/1-1", "garbage"):
            r = await client.get("/chat/stream", params={"prompt": "hi"}, headers={"last-event-id": resume})
            assert r.status_code == 204, resume
        assert len(up.requests) == 1


async def test_chat_stream_errors() -> None:
    async with running() as client:
        assert (await client.get("/chat/stream")).status_code == 400
        r = await client.get("/chat/stream", params={"prompt": "x", "model": "nope"})
        assert r.status_code == 404 and "error" in r.json()
        events = await events_of(client, "/chat/stream", params={"prompt": "x"})
        assert events[0].event == "start" and events[-1].event == "done"


async def test_limits_over_http() -> None:
    async with RawUpstream(slow_script()) as up:
        async with running(llm_base_url=up.base_url, llm_model="m", chat_rate_per_minute=1) as client:
            body = {"messages": [{"role": "user", "content": "x"}]}
            assert (await client.post("/chat", json=body)).status_code == 200
            r = await client.post("/chat", json=body)
            assert r.status_code == 429 and "error" in r.json()
        async with running(llm_base_url=up.base_url, llm_model="m", max_generations=1) as client:
            assert (await client.post("/chat", json=body)).status_code == 200
            r = await client.post("/chat", json=body)
            assert r.status_code == 503 and "error" in r.json()


async def test_api_keys_never_leave_the_server(monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("OTHER_LLM_KEY", OTHER_KEY)

    async def echo_key(resp: RawResponse, req: UpstreamRequest) -> None:
        message = f"Incorrect API key provided: {req.headers.get('authorization')}"
        await resp.whole(401, json.dumps({"error": {"message": message}}).encode())

    async with RawUpstream(echo_key) as up:
        providers = ({"name": "other", "base_url": up.base_url, "api_key_env": "OTHER_LLM_KEY",
                      "models": ["o1"], "headers": {"x-team": "blue"}},)
        async with running(llm_base_url=up.base_url, llm_api_key=KEY, llm_model="m",
                           providers=providers) as client:
            seen: list[str] = []
            for provider in ("default", "other"):
                r = await client.post("/chat", json={"messages": [{"role": "user", "content": "x"}],
                                                     "provider": provider})
                seen.append(r.text)
                async with client.stream("GET", r.json()["events"]) as resp:
                    raw = b""
                    async for piece in resp.aiter_bytes():
                        raw += piece
                        if b"event: error" in raw:
                            break
                seen.append(raw.decode())
                assert "***" in raw.decode()
            seen.append((await client.get("/v1/models")).text)
            seen.append((await client.get("/topics")).text)
            for page in ("/", "/console"):
                seen.append((await client.get(page)).text)
            seen.append((await client.get("/chat/stream", params={"prompt": "x", "provider": "other"})).text)
        assert up.requests[0].headers["authorization"] == f"Bearer {KEY}"
        assert up.requests[1].headers["authorization"] == f"Bearer {OTHER_KEY}"
        assert up.requests[1].headers["x-team"] == "blue"
        models = json.loads(seen[4])
        assert {p["name"] for p in models["providers"]} == {"default", "other"}
    everything = "\n".join(seen) + caplog.text
    for secret in (KEY, OTHER_KEY):
        assert secret not in everything
