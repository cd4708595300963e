"""The simulated OpenAI-compatible server, read through the real upstream client."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from ssehub.config import Settings
from ssehub.relay import Out, Provider, Upstream
from ssehub.relay.mapping import merge_texts
from ssehub.relay.simulator import create_simulator
from tests.support.uvicorn import serve_app

ASK = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "Explain SSE 🙂"}]


async def run(base: str, *, headers: dict[str, str] | None = None, model: str = "ssehub-demo",
              read_timeout: float = 5.0, **params: Any) -> list[Out]:
    provider = Provider("sim", base + "/v1", headers=headers or {})
    out: list[Out] = []
    async with Upstream(Settings(upstream_read_timeout=read_timeout)) as client:
        async for batch in client.stream(provider, model, ASK, params):
            out += batch
    return merge_texts(out)


def text(outs: list[Out], kind: str) -> str:
    return "".join(o.data["text"] for o in outs if o.event == kind)


async def test_stream_shape() -> None:
    async with serve_app(create_simulator(0)) as base:
        out = await run(base)
        assert [o.event for o in out] == ["reasoning", "content", "usage", "done"]
        assert "Explain SSE 🙂" in text(out, "reasoning")
        answer = text(out, "content")
        assert answer.startswith("> **This is a demonstration answer")
        assert "```bash" in answer and "| Provider |" in answer and "SSEHUB_LLM_MODEL" in answer
        usage = out[2].data
        assert usage["completion_tokens"] == usage["total_tokens"] - usage["prompt_tokens"] > 100
        assert out[-1] == Out("done", {"finish_reason": "stop"})


async def test_not_streamed_and_models() -> None:
    async with serve_app(create_simulator(0)) as base, httpx.AsyncClient(base_url=base) as client:
        r = await client.post("/v1/chat/completions", json={"model": "ssehub-demo", "messages": ASK})
        doc = r.json()
        assert doc["object"] == "chat.completion"
        message = doc["choices"][0]["message"]
        assert "demonstration" in message["content"] and "SSEHUB_LLM_BASE_URL" in message["reasoning_content"]
        assert (await client.get("/v1/models")).json()["data"][0]["id"] == "ssehub-demo"
        r = await client.post("/v1/chat/completions", json={"messages": "nope"})
        assert r.status_code == 400 and "error" in r.json()
        r = await client.post("/v1/chat/completions", json={"messages": ASK},
                              headers={"x-simulator-fault": "explode"})
        assert r.status_code == 400


async def test_faults() -> None:
    async with serve_app(create_simulator(0)) as base:
        normal = await run(base)
        for fault in ("think", "reasoning-field"):
            out = await run(base, headers={"x-simulator-fault": fault})
            assert text(out, "reasoning").strip() == text(normal, "reasoning").strip(), fault
            assert text(out, "content") == text(normal, "content"), fault
        out = await run(base, model="ssehub-demo+error-401")
        assert out == [Out("error", {"message": "Incorrect API key provided (simulated).", "status": 401})]
        out = await run(base, headers={"x-simulator-fault": "drop"})
        assert out[-1].event == "error" and "closed the connection" in out[-1].data["message"]
        out = await run(base, headers={"x-simulator-fault": "midstream-error"})
        assert out[-1] == Out("error", {"message": "Simulated upstream failure mid-stream.", "status": 502})
        out = await run(base, headers={"x-simulator-fault": "stall"}, read_timeout=0.3)
        assert out[-1].event == "error" and "sent nothing for 0.3 s" in out[-1].data["message"]
        out = await run(base, max_tokens=5)  # reasoning and answer together, as DeepSeek counts
        assert out[-1] == Out("done", {"finish_reason": "length"})
        assert text(out, "content") == "" and len(text(out, "reasoning").split()) == 5
        out = await run(base, max_tokens=70)
        assert out[-1] == Out("done", {"finish_reason": "length"})
        assert out[-2].data["completion_tokens"] == 70 and text(out, "content")


async def test_server_wide_fault() -> None:
    async with serve_app(create_simulator(0, fault="error-503")) as base:
        out = await run(base)
        assert out[0].data["status"] == 503
    with pytest.raises(ValueError, match="unknown simulator fault"):
        create_simulator(fault="error-99")


async def test_tokens_per_second_paces_the_stream() -> None:
    async with serve_app(create_simulator(400)) as base:
        t0 = time.perf_counter()
        out = await run(base, max_tokens=80)
        elapsed = time.perf_counter() - t0
        tokens = out[-2].data["completion_tokens"]
        assert (tokens - 1) / 400 * 0.9 <= elapsed < 3
