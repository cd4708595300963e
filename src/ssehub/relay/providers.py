"""LLM providers from Settings: which OpenAI-compatible endpoints exist, their models and keys.

Sources, in order (names must be unique):

1. ``SSEHUB_LLM_BASE_URL`` / ``SSEHUB_LLM_API_KEY`` / ``SSEHUB_LLM_MODEL`` (Settings
   ``llm_base_url``, ``llm_api_key``, ``llm_model``): one provider named ``llm_provider``
   (default ``"default"``);
2. TOML ``[[providers]]`` tables: ``name``, ``base_url``, ``api_key_env`` (the *name* of the
   environment variable holding the key — keys never live in the file), ``models``,
   ``headers``, ``params`` (default request parameters, e.g. ``{temperature = 0.6}`` or
   ``{stream_options = {include_usage = true}}`` for OpenAI usage);
3. none of the above: the built-in ``demo`` provider (the simulator, called over HTTP).

The default provider is ``llm_provider`` when it names one, else the first. A key is only
ever put into the ``Authorization`` header of the upstream request: ``Provider.public()`` is
what browsers see, and ``repr()`` hides it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..config import ConfigError, Settings
from ..errors import BadRequest, NotFound

__all__ = ["DEMO_MODEL", "DEMO_PROVIDER", "Provider", "Providers"]

DEMO_PROVIDER = "demo"
DEMO_MODEL = "ssehub-demo"
_KEYS = {"name", "base_url", "api_key_env", "models", "headers", "params"}
_RESERVED_PARAMS = {"model", "messages", "stream"}


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    base_url: str  # "" for the demo provider: resolved from the listening socket per request
    api_key: str = field(default="", repr=False)
    models: tuple[str, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    params: Mapping[str, Any] = field(default_factory=dict)
    demo: bool = False

    @property
    def default_model(self) -> str | None:
        return self.models[0] if self.models else None

    def accepts(self, model: str, faults: bool = False) -> bool:
        """Only the configured models (a paid upstream is never asked for another one); the demo
        also takes ``ssehub-demo+<fault>`` when ``faults`` (setting ``simulator_faults``)."""
        if model in self.models:
            return True
        return faults and self.demo and model.split("+", 1)[0] in self.models

    def url(self, base_url: str | None = None) -> str:
        return (base_url or self.base_url).rstrip("/") + "/chat/completions"

    def request_headers(self) -> dict[str, str]:
        headers = {"accept": "text/event-stream", **dict(self.headers)}
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key}"
        return headers

    def public(self) -> dict[str, Any]:
        """What a browser may see: never the key, the headers or the base URL."""
        return {"name": self.name, "models": list(self.models), "default_model": self.default_model,
                "demo": self.demo}


def _check_url(name: str, url: Any) -> str:
    if not isinstance(url, str) or not url:
        raise ConfigError(f"provider {name!r}: base_url is required")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"provider {name!r}: base_url must be an http(s) URL")
    return url


def _from_table(table: Mapping[str, Any], environ: Mapping[str, str]) -> Provider:
    name = table.get("name")
    if not isinstance(name, str) or not name or "/" in name:
        raise ConfigError("every [[providers]] table needs a name (without '/')")
    unknown = set(table) - _KEYS
    if unknown:
        hint = " (keys come from the environment: use api_key_env)" if "api_key" in unknown else ""
        raise ConfigError(f"provider {name!r}: unknown keys {sorted(unknown)}{hint}")
    base_url = _check_url(name, table.get("base_url"))
    key_env = table.get("api_key_env", "")
    if not isinstance(key_env, str):
        raise ConfigError(f"provider {name!r}: api_key_env must be the name of an environment variable")
    models = table.get("models", ())
    if isinstance(models, str):
        models = (models,)
    if not isinstance(models, Sequence) or not all(isinstance(m, str) and m for m in models):
        raise ConfigError(f"provider {name!r}: models must be a list of names")
    headers = table.get("headers", {})
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise ConfigError(f"provider {name!r}: headers must be a table of strings")
    params = table.get("params", {})
    if not isinstance(params, Mapping) or set(params) & _RESERVED_PARAMS:
        raise ConfigError(f"provider {name!r}: params must be a table without model/messages/stream")
    return Provider(
        name=name,
        base_url=base_url,
        api_key=environ.get(key_env, "") if key_env else "",
        models=tuple(models),
        headers=dict(headers),
        params=dict(params),
    )


def demo_provider() -> Provider:
    return Provider(name=DEMO_PROVIDER, base_url="", models=(DEMO_MODEL,), demo=True)


class Providers:
    """The configured providers, by name, and the default one."""

    def __init__(self, providers: Sequence[Provider], default: str | None = None, *,
                 faults: bool = False) -> None:
        self.faults = faults  # the demo's fault models (ssehub-demo+stall, …) are accepted
        if not providers:
            providers = [demo_provider()]
        self._by_name: dict[str, Provider] = {}
        for p in providers:
            if p.name in self._by_name:
                raise ConfigError(f"two providers are named {p.name!r}")
            self._by_name[p.name] = p
        self.default = self._by_name[default] if default in self._by_name else providers[0]

    @classmethod
    def from_settings(cls, settings: Settings, environ: Mapping[str, str] | None = None) -> Providers:
        env = os.environ if environ is None else environ
        found: list[Provider] = []
        if settings.llm_base_url:
            found.append(Provider(
                name=settings.llm_provider or "default",
                base_url=_check_url(settings.llm_provider, settings.llm_base_url),
                api_key=settings.llm_api_key,
                models=(settings.llm_model,) if settings.llm_model else (),
            ))
        found += [_from_table(t, env) for t in settings.providers]
        return cls(found, settings.llm_provider, faults=settings.simulator_faults)

    @property
    def demo_only(self) -> bool:
        return self.default.demo

    def __iter__(self) -> Iterator[Provider]:
        return iter(self._by_name.values())

    def secrets(self) -> list[str]:
        """Every key and header value: scrubbed from anything shown to a client or logged."""
        out = [p.api_key for p in self if p.api_key]
        out += [v for p in self for v in p.headers.values() if len(v) >= 8]
        return out

    def resolve(self, provider: str | None, model: str | None) -> tuple[Provider, str]:
        """(provider, model) for a request; NotFound for an unknown name or model."""
        if provider:
            p = self._by_name.get(provider)
            if p is None:
                raise NotFound(f"unknown provider {provider!r}")
        else:
            p = self.default
        if not model:
            model = p.default_model
            if model is None:
                raise BadRequest(f"provider {p.name!r} has no default model: pass a model "
                                 "(or set SSEHUB_LLM_MODEL)")
        elif not p.accepts(model, self.faults):
            if not p.models:
                raise NotFound(f"provider {p.name!r} has no models configured: list them "
                               "(models, or SSEHUB_LLM_MODEL)")
            shown = model if len(model) <= 64 else model[:63] + "…"
            raise NotFound(f"unknown model {shown!r} for provider {p.name!r} "
                           f"(configured: {', '.join(p.models)})")
        return p, model

    def public(self) -> dict[str, Any]:
        """GET /v1/models: providers and their models, without keys."""
        data = [
            {"id": m, "object": "model", "owned_by": p.name, "provider": p.name}
            for p in self for m in p.models
        ]
        return {"object": "list", "data": data, "default_provider": self.default.name,
                "providers": [p.public() for p in self]}
