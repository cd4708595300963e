"""LLM relay: OpenAI-compatible streaming upstreams → generation topics ``chat/<G>``.

- ``providers``: which endpoints, models and keys exist (Settings, TOML ``[[providers]]``);
- ``upstream``: the shared httpx client; bytes → ``wire.Parser`` → ``mapping`` (pure);
- ``generation`` / ``manager``: one task per generation publishing into the hub; stop,
  grace after the last reader leaves, limits, shutdown;
- ``simulator``: the built-in demo provider and test/bench upstream (a Starlette app; import
  ``ssehub.relay.simulator`` explicitly).
"""

from __future__ import annotations

from .generation import Generation
from .hub_port import GENERATION_PREFIX, RelayHub, generation_topic
from .manager import Relay
from .mapping import ChunkMapper, Out, ThinkSplitter, error_from_response
from .providers import DEMO_MODEL, DEMO_PROVIDER, Provider, Providers
from .ratelimit import RateLimiter
from .request import ChatRequest, parse_chat_request
from .upstream import Upstream

__all__ = [
    "DEMO_MODEL",
    "DEMO_PROVIDER",
    "GENERATION_PREFIX",
    "ChatRequest",
    "ChunkMapper",
    "Generation",
    "Out",
    "Provider",
    "Providers",
    "RateLimiter",
    "Relay",
    "RelayHub",
    "ThinkSplitter",
    "Upstream",
    "error_from_response",
    "generation_topic",
    "parse_chat_request",
]
