"""The text the built-in demo provider streams: clearly a demo, and how to leave it."""

from __future__ import annotations

import re

__all__ = ["demo_answer", "demo_reasoning", "tokens"]

_TOKEN = re.compile(r"\S+\s*|\s+")

_REASONING = (
    "The user asked: “{q}”. I am the ssehub demo simulator, not a real language model, so I "
    "cannot really answer that. I should say so clearly, show what a streamed answer looks "
    "like — Markdown with a code block and a table — and explain how to configure a real "
    "provider with SSEHUB_LLM_BASE_URL, SSEHUB_LLM_API_KEY and SSEHUB_LLM_MODEL."
)

_ANSWER = """\
> **This is a demonstration answer from ssehub's built-in simulator.** No language model was called.

You asked: “{q}”

ssehub relayed this reply token by token from a simulated OpenAI-compatible endpoint, over \
real HTTP, exactly as it relays DeepSeek-R1 or GPT. The reasoning above arrived separately, \
as `reasoning` events.

### Connect a real model

Set three environment variables and restart the server:

```bash
export SSEHUB_LLM_BASE_URL=https://api.siliconflow.cn/v1
export SSEHUB_LLM_API_KEY=sk-...   # stays on the server
export SSEHUB_LLM_MODEL=deepseek-ai/DeepSeek-R1
ssehub serve
```

| Provider | `SSEHUB_LLM_BASE_URL` | Example model |
|---|---|---|
| SiliconFlow | `https://api.siliconflow.cn/v1` | `deepseek-ai/DeepSeek-R1` |
| DeepSeek | `https://api.deepseek.com` | `deepseek-reasoner` |
| OpenAI | `https://api.openai.com/v1` | `gpt-4o-mini` |
| Ollama | `http://localhost:11434/v1` | `qwen3:8b` |
| vLLM | `http://localhost:8000/v1` | the model you serve |

The API key is never sent to the browser and never logged. Several providers can be listed \
in the TOML file as `[[providers]]` tables (see `docs/llm.md`).

Press stop while this streams, or reload the page: the answer resumes where it was. 🙂
"""


def _question(prompt: str) -> str:
    prompt = " ".join(prompt.split())
    return prompt if len(prompt) <= 200 else prompt[:199] + "…"


def demo_reasoning(prompt: str) -> str:
    return _REASONING.format(q=_question(prompt) or "(nothing)")


def demo_answer(prompt: str) -> str:
    return _ANSWER.format(q=_question(prompt) or "(nothing)")


def tokens(text: str) -> list[str]:
    """Word-sized pieces (each word with the blanks after it); ``"".join`` gives ``text``."""
    return _TOKEN.findall(text)
