"""Settings: one frozen dataclass, filled from flag > SSEHUB_* environment > TOML file > default.

Every field is a setting: ``--history-size`` on the command line, ``SSEHUB_HISTORY_SIZE`` in the
environment, ``history_size`` in the TOML file. Lists in the environment are comma-separated.
Unknown keys in the file are an error (a typo must not be silently ignored).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = ["ConfigError", "Settings", "load_settings"]


@dataclass(frozen=True, slots=True)
class Settings:
    # server
    host: str = "127.0.0.1"
    port: int = 8181
    broker: str = "memory://"
    workers: int = 1  # processes serving one port (needs a shared broker: redis://)
    log_level: str = "info"
    log_format: str = "text"  # "text" | "json" (one JSON object per line, for log shippers)
    access_log: bool = False  # one line per request (query tokens are never written)
    trusted_proxies: tuple[str, ...] = ()  # proxies whose X-Forwarded-For names the client
    front: str = "fast"  # "fast": /publish and /subscribe served by the protocol | "asgi": all by the app
    # hub
    heartbeat: float = 15.0  # seconds between comment lines on an idle stream
    retry: int = 2000  # ms, the reconnection hint sent when a stream opens
    shutdown_retry: int = 5000  # ms, base of the jittered hint sent at shutdown
    history_size: int = 1000  # events retained per topic
    history_bytes: int = 4 * 1024 * 1024  # encoded bytes retained per topic
    max_topics: int = 100_000  # topics kept in memory; idle ones beyond are forgotten
    max_retained_bytes: int = 512 * 1024 * 1024  # history across all topics; idle LRU forgotten
    slow_consumer: str = "gap"  # "gap" | "disconnect"
    max_event_bytes: int = 1024 * 1024  # request body / event size limit
    max_chunk_bytes: int = 256 * 1024  # bytes handed to one send() at most
    max_topics_per_subscription: int = 64
    max_connections: int = 100_000
    max_subscriptions_per_client: int = 10_000
    max_header_bytes: int = 16 * 1024  # request line + headers; beyond → 431
    header_timeout: float = 10.0  # seconds a client may take to send its request head
    max_last_event_id: int = 256  # bytes of a Last-Event-ID / last_event_id; beyond → 400
    # redis broker
    namespace: str = "ssehub"  # the unit of ordering: every key of it shares one hash tag
    broker_timeout: float = 1.0  # seconds a broker call may take before 503
    generation_ttl: float = 3600.0  # seconds a finished generation's topic is kept in Redis
    generation_lease: float = 5.0  # seconds without a refresh before a generation is lost
    # security
    allowed_hosts: tuple[str, ...] = ()  # Host values served; empty: loopback names + bound address
    jwt_secret: str = field(default="", repr=False)  # HS256 key; auth is on when set
    jwt_public_key: str = field(default="", repr=False)  # PEM text or @path (RS256/ES256)
    jwt_audience: str = ""
    jwt_issuer: str = ""
    jwt_leeway: float = 30.0  # seconds of clock skew accepted for exp/nbf
    public_topics: tuple[str, ...] = ()  # topic patterns readable without a token
    metrics_token: str = field(default="", repr=False)  # lets non-loopback clients read /metrics
    # cors
    cors_origins: tuple[str, ...] = ()
    cors_credentials: bool = False
    # llm relay
    llm_base_url: str = ""
    llm_api_key: str = field(default="", repr=False)  # a secret: never in a repr or a log
    llm_model: str = ""
    llm_provider: str = "default"
    chat_grace: float = 20.0
    chat_history_size: int = 50_000  # events retained per generation topic (a whole answer)
    chat_history_bytes: int = 8 * 1024 * 1024
    max_generations: int = 256
    chat_rate_per_minute: int = 60
    max_generations_per_client: int = 8  # running generations per client address
    max_prompt_bytes: int = 256 * 1024  # UTF-8 bytes of all messages of one chat request
    max_tokens_limit: int = 32_768  # the largest max_tokens a client may ask for
    simulator_faults: bool = False  # demo fault models (ssehub-demo+stall, …): for tests only
    upstream_connect_timeout: float = 10.0
    upstream_read_timeout: float = 120.0
    demo_tokens_per_second: float = 40.0
    providers: tuple[Mapping[str, Any], ...] = field(default=())

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def __repr__(self) -> str:
        """Every field but the secrets; provider ``headers`` values (Azure's ``api-key``) redacted."""
        shown = []
        for f in fields(self):
            if not f.repr:
                continue
            value = getattr(self, f.name)
            if f.name == "providers":
                value = tuple({**p, "headers": dict.fromkeys(p["headers"], "***")} if "headers" in p
                              and isinstance(p["headers"], Mapping) else p for p in value)
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"


_FIELDS = {f.name: f for f in fields(Settings)}
_SECRET = {"llm_api_key", "jwt_secret", "jwt_public_key", "metrics_token"}


def _coerce(name: str, value: Any) -> Any:
    """Turn a value from the environment, the file or a flag into the field's type."""
    kind = _FIELDS[name].type
    try:
        if kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(value)
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "str":
            return str(value)
        if kind.startswith("tuple[str"):
            if isinstance(value, str):
                return tuple(v.strip() for v in value.split(",") if v.strip())
            return tuple(str(v) for v in value)
        if name == "providers":
            if not isinstance(value, list | tuple) or not all(isinstance(p, Mapping) for p in value):
                raise ValueError("providers must be a list of tables")
            return tuple(dict(p) for p in value)
    except (TypeError, ValueError):
        shown = "***" if name in _SECRET else repr(value)
        raise ConfigError(f"invalid value for {name}: {shown}") from None
    raise ConfigError(f"setting {name} cannot be set this way")


def _validate(s: Settings) -> Settings:
    if s.log_format not in ("text", "json"):
        raise ConfigError("log_format must be 'text' or 'json'")
    if not s.namespace or any(c in s.namespace for c in "{}") or len(s.namespace) > 64:
        raise ConfigError("namespace must be 1 to 64 characters without braces")
    if s.jwt_secret and s.jwt_public_key:
        raise ConfigError("set jwt_secret (HS256) or jwt_public_key (RS256/ES256), not both")
    if s.front not in ("fast", "asgi"):
        raise ConfigError("front must be 'fast' or 'asgi'")
    if s.slow_consumer not in ("gap", "disconnect"):
        raise ConfigError("slow_consumer must be 'gap' or 'disconnect'")
    for name in ("history_size", "history_bytes", "chat_history_size", "chat_history_bytes",
                 "max_event_bytes", "max_chunk_bytes", "max_topics", "max_retained_bytes",
                 "max_topics_per_subscription", "max_connections", "max_subscriptions_per_client",
                 "max_generations", "workers", "max_header_bytes", "max_last_event_id",
                 "max_generations_per_client", "max_prompt_bytes", "max_tokens_limit"):
        if getattr(s, name) < 1:
            raise ConfigError(f"{name} must be at least 1")
    if s.heartbeat <= 0 or s.retry < 0 or s.shutdown_retry < 0 or s.chat_grace < 0:
        raise ConfigError("heartbeat must be > 0; retry, shutdown_retry and chat_grace >= 0")
    if min(s.upstream_connect_timeout, s.upstream_read_timeout, s.demo_tokens_per_second) <= 0:
        raise ConfigError("upstream timeouts and demo_tokens_per_second must be > 0")
    if min(s.header_timeout, s.broker_timeout, s.generation_ttl, s.generation_lease) <= 0 or s.jwt_leeway < 0:
        raise ConfigError("header_timeout, broker_timeout, generation_ttl and generation_lease must be > 0")
    if s.cors_credentials and "*" in s.cors_origins:
        raise ConfigError("cors_credentials needs explicit origins, not '*'")
    return s


def load_settings(
    flags: Mapping[str, Any] | None = None,
    *,
    config_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build Settings: flags (None values ignored) > SSEHUB_* env > TOML file > defaults."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    path = config_file or env.get("SSEHUB_CONFIG")
    if path:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        for key, value in data.items():
            name = key.replace("-", "_")
            if name not in _FIELDS:
                raise ConfigError(f"unknown setting {key!r} in {path}")
            values[name] = _coerce(name, value)
    for name in _FIELDS:
        raw = env.get("SSEHUB_" + name.upper())
        if raw is not None and name != "providers":
            values[name] = _coerce(name, raw)
    for name, value in (flags or {}).items():
        if value is not None:
            if name not in _FIELDS:
                raise ConfigError(f"unknown setting {name!r}")
            values[name] = _coerce(name, value)
    return _validate(Settings(**values))
