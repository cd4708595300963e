"""The OpenAI Python SDK against ``ssehub simulate-llm`` (a real subprocess): the simulator is
the demo provider and the benchmarks' upstream, so it must look like the real API to the
client everyone uses — streaming with ``reasoning_content`` and a usage-only last chunk,
non-streaming, ``/v1/models``, and an HTTP error as the SDK's own exception."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.support.serve import SSEHUB, uvicorn_process

_RUNNING = re.compile(rb"Uvicorn running on https?://[^:\s]+:(\d+)")


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    cmd = [SSEHUB, "simulate-llm", "--host", "127.0.0.1", "--port", "0", "--tokens-per-second", "0"]
    with uvicorn_process(cmd, tmp_path_factory.mktemp("sim") / "sim.log") as port:
        yield f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def client(simulator: str) -> Iterator[Any]:
    with openai.OpenAI(base_url=simulator, api_key="sk-test", timeout=20, max_retries=0) as c:
        yield c


def test_streaming_with_reasoning_and_usage(client: Any) -> None:
    stream = client.chat.completions.create(
        model="ssehub-demo", messages=[{"role": "user", "content": "hello"}], stream=True,
        stream_options={"include_usage": True})
    reasoning, content, finish, usage = [], [], [], []
    for chunk in stream:
        if chunk.usage is not None:
            usage.append(chunk.usage)
        for choice in chunk.choices:
            delta: Any = choice.delta
            if getattr(delta, "reasoning_content", None):  # an extra field: kept by the SDK
                reasoning.append(delta.reasoning_content)
            if delta.content:
                content.append(delta.content)
            if choice.finish_reason:
                finish.append(choice.finish_reason)
    assert reasoning and content, (reasoning, content)
    assert finish == ["stop"]
    assert len(usage) == 1 and usage[0].completion_tokens == len(reasoning) + len(content)
    assert usage[0].completion_tokens_details.reasoning_tokens == len(reasoning)


def test_non_streaming(client: Any) -> None:
    done = client.chat.completions.create(model="ssehub-demo", messages=[{"role": "user", "content": "hi"}])
    assert done.object == "chat.completion"
    message: Any = done.choices[0].message
    assert message.role == "assistant" and message.content
    assert message.reasoning_content
    assert done.choices[0].finish_reason == "stop"
    assert done.usage is not None and done.usage.total_tokens > done.usage.prompt_tokens


def test_models(client: Any) -> None:
    assert [m.id for m in client.models.list()] == ["ssehub-demo"]


def test_error_status_is_the_sdks_exception(client: Any) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="ssehub-demo", messages=[{"role": "user", "content": "x"}],
                                       stream=True, extra_headers={"X-Simulator-Fault": "error-429"})
    assert info.value.status_code == 429
