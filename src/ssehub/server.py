"""Run the app under uvicorn, with a shutdown that never hangs on open SSE streams.

uvicorn waits for open connections to finish before it runs the lifespan shutdown; an SSE
stream never finishes by itself. So the server closes the hub *first*: every stream sends
its jittered ``retry:`` hint and ends, then uvicorn's own shutdown finds nothing to wait for.
"""

from __future__ import annotations

import gc
import importlib.util
import ipaddress
import logging
import logging.config
import re
import socket
import sys
from typing import Any, cast

import uvicorn
import uvicorn.logging

from .asgi import create_app
from .asgi.app import HubApp
from .asgi.hosts import describe_allowed_hosts
from .asgi.state import HubState
from .config import Settings
from .front import front_protocol_class, proxy_headers
from .logs import RedactTokens, log_config
from .server_protocol import limits_for, protocol_class, raise_nofile_limit

__all__ = ["Server", "build_server", "is_loopback", "run"]

log = logging.getLogger("ssehub")


class _QuietAbort(logging.Filter):
    """ssehub ends the stream of a client that stopped reading (slow-consumer policy
    ``disconnect``, or shutdown) by returning without completing the response, which makes
    uvicorn close the connection; it logs its own line for that, so uvicorn's is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "ASGI callable returned without completing response."


class Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, state: HubState) -> None:
        super().__init__(config)
        self.hub_state = state
        self.own_process = False  # the whole process is this server's (``run``): tune its GC

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and not self.should_exit and self.servers:
            if self.own_process:
                tune_gc()
            if self.hub_state.settings.log_format == "json":
                logging.getLogger("uvicorn.error").info(banner(self))
            else:
                print(banner(self), file=sys.stderr, flush=True)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self.hub_state.close()
        await super().shutdown(sockets)


def tune_gc() -> None:
    """Garbage collection for a process that holds many long-lived connections.

    CPython's collector is triggered by allocations and each collection of the oldest
    generation walks every tracked object: with thousands of open streams (a few dozen
    objects each) a burst of connects spent a third of its CPU in ``gc_collect_main``. The
    objects of the start-up (modules, app, settings) are frozen out of the collector and the
    youngest generation is collected every 20,000 allocations instead of 700; reference cycles
    are still collected, less often.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)


def is_loopback(host: str) -> bool:
    """True for a bind address only this machine can reach (``localhost``, 127.0.0.0/8, ::1)."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def warn_if_exposed(settings: Settings) -> bool:
    """Warn (at start) when a non-loopback bind has auth off; True when it warned."""
    if is_loopback(settings.host) or settings.jwt_secret or settings.jwt_public_key:
        return False
    log.warning(
        "auth is off and ssehub listens on %s, not loopback: anyone who can reach this port can "
        "publish, read every topic and start LLM generations. Set SSEHUB_JWT_SECRET (or "
        "jwt_public_key) to turn auth on (see docs/auth.md), or bind to 127.0.0.1.", settings.host)
    return True


def banner(server: Server) -> str:
    """One line telling where everything is, printed once the socket is bound."""
    from . import __version__

    settings = server.hub_state.settings
    host = settings.host if settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    port = server.servers[0].sockets[0].getsockname()[1]
    base = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    relay = server.hub_state.relay
    providers = getattr(relay, "providers", None)
    if providers is None or providers.demo_only:
        provider = ("demo (simulated; set SSEHUB_LLM_BASE_URL, SSEHUB_LLM_API_KEY and "
                    "SSEHUB_LLM_MODEL for a real model)")
    else:
        default = providers.default
        model = default.default_model
        provider = f"{default.name} ({model})" if model else default.name
    broker = re.sub(r"//[^@/]*@", "//", settings.broker)  # never a password
    return (f"ssehub {__version__} — chat {base}/ · console {base}/console · "
            f"provider {provider} · broker {broker}")


def _ssehub_log(settings: Settings) -> logging.Logger:
    """The "ssehub" logger, printing like uvicorn's when nothing else configured it."""
    logger = logging.getLogger("ssehub")
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(uvicorn.logging.DefaultFormatter("%(levelprefix)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(settings.log_level.upper())
    return logger


def build_server(settings: Settings, **uvicorn_options: Any) -> Server:
    # without a log_config (an embedding app or a test), print ssehub's lines like uvicorn's
    log = logging.getLogger("ssehub") if "log_config" in uvicorn_options else _ssehub_log(settings)
    app = create_app(settings)
    warn_if_exposed(settings)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "access_log": settings.access_log,
        "lifespan": "on",
        "timeout_graceful_shutdown": 2,
        "backlog": 4096,
        "server_header": False,
        # Only behind a trusted proxy does X-Forwarded-For name the client (for the
        # per-client limits); without one, no proxy-header middleware sits in every stream.
        "proxy_headers": bool(settings.trusted_proxies),
    }
    if settings.trusted_proxies:
        options["forwarded_allow_ips"] = ",".join(settings.trusted_proxies)
    if importlib.util.find_spec("httptools") is not None:
        # request head size and time, and every connection counted (server_protocol.py);
        # the fast front also serves /publish and /subscribe itself (front/)
        limits = limits_for(settings, raise_nofile_limit())
        if settings.front == "fast":
            proxy = proxy_headers(list(settings.trusted_proxies)) if settings.trusted_proxies else None
            options["http"] = front_protocol_class(limits, cast(HubApp, app), proxy)
        else:
            options["http"] = protocol_class(limits)
    else:  # pragma: no cover - uvicorn[standard] brings httptools; h11 has a head limit of its own
        options["h11_max_incomplete_event_size"] = settings.max_header_bytes
    options.update(uvicorn_options)
    config = uvicorn.Config(app, **options)  # configures logging
    logging.getLogger("uvicorn.error").addFilter(_QuietAbort())
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in access.filters):
        access.addFilter(RedactTokens())  # whatever handlers an embedding app gave it
    log.info("%s", describe_allowed_hosts(settings))
    if "*" in settings.trusted_proxies:
        log.warning("trusted_proxies is '*': any client that reaches this port directly can claim any "
                    "address in X-Forwarded-For (per-client limits, the /metrics loopback check). Use "
                    "it only behind a proxy that overwrites the header and is the only way in.")
    return Server(config, app.state.ssehub)


def run(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM.

    Logging is configured here, for the process: uvicorn's loggers and ssehub's own, text or
    JSON, query tokens redacted (``build_server`` alone keeps uvicorn's default, so an app or
    a test that embeds the server keeps its own logging setup).
    """
    # configured before the server is built, so that its start-up lines (open-file limit,
    # served Host names) are printed like every later one
    logging.config.dictConfig(log_config(settings.log_level, settings.log_format))
    server = build_server(settings, log_config=None)
    server.own_process = True
    server.run()
