"""The body of ``POST /chat`` (SPEC §3), validated into a ChatRequest. Pure.

Cost controls from the settings: all message contents together may take ``max_prompt_bytes``
UTF-8 bytes (else 413), ``max_tokens`` at most ``max_tokens_limit`` (else 400). Which models
may be asked for is the providers' business (``providers.py``: only configured ones).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..config import Settings
from ..errors import MalformedBody, PayloadTooLarge

__all__ = ["ROLES", "ChatRequest", "parse_chat_request"]

ROLES = ("system", "user", "assistant")
MAX_MESSAGES = 1000
_DEFAULTS = Settings()


@dataclass(frozen=True, slots=True)
class ChatRequest:
    messages: tuple[dict[str, str], ...]
    model: str | None = None
    provider: str | None = None
    params: dict[str, Any] = field(default_factory=dict)  # temperature, max_tokens

    @classmethod
    def from_prompt(cls, prompt: str, model: str | None = None, provider: str | None = None, *,
                    limits: Settings = _DEFAULTS) -> ChatRequest:
        return parse_chat_request({"messages": [{"role": "user", "content": prompt}], "model": model,
                                   "provider": provider}, limits=limits)


def _name(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 256 or any(ord(c) < 32 for c in value):
        raise MalformedBody(f"{key} must be a name (a short string)")
    return value


def parse_chat_request(body: Any, *, limits: Settings = _DEFAULTS) -> ChatRequest:
    """Validate a decoded JSON body; MalformedBody (400) or PayloadTooLarge (413) says what is
    wrong. ``limits``: the settings whose ``max_prompt_bytes`` and ``max_tokens_limit`` apply."""
    if not isinstance(body, dict):
        raise MalformedBody("the body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise MalformedBody("messages must be a non-empty list")
    if len(messages) > MAX_MESSAGES:
        raise MalformedBody(f"at most {MAX_MESSAGES} messages")
    clean: list[dict[str, str]] = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise MalformedBody(f"messages[{i}] must be {{role: system|user|assistant, content: string}}")
        clean.append({"role": m["role"], "content": m["content"]})
    if not any(m["role"] == "user" and m["content"].strip() for m in clean):
        raise MalformedBody("messages must hold a non-empty user message")
    size = sum(len(m["content"].encode("utf-8", "surrogatepass")) for m in clean)
    if size > limits.max_prompt_bytes:
        raise PayloadTooLarge(f"messages take {size} bytes, more than max_prompt_bytes "
                              f"({limits.max_prompt_bytes})")
    params: dict[str, Any] = {}
    temperature = body.get("temperature")
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, int | float) \
                or not math.isfinite(temperature) or not 0 <= temperature <= 2:
            raise MalformedBody("temperature must be a number from 0 to 2")
        params["temperature"] = temperature
    max_tokens = body.get("max_tokens")
    if max_tokens is not None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise MalformedBody("max_tokens must be a positive integer")
        if max_tokens > limits.max_tokens_limit:
            raise MalformedBody(f"max_tokens must be at most {limits.max_tokens_limit} (max_tokens_limit)")
        params["max_tokens"] = max_tokens
    return ChatRequest(tuple(clean), _name(body, "model"), _name(body, "provider"), params)
