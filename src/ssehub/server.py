"""Run the app under uvicorn, with a shutdown that never hangs on open SSE streams.

uvicorn waits for open connections to finish before it runs the lifespan shutdown; an SSE
stream never finishes by itself. So the server closes the hub *first*: every stream sends
its jittered ``retry:`` hint and ends, then uvicorn's own shutdown finds nothing to wait for.
"""

from __future__ import annotations

import importlib.util
import logging
import socket
from typing import Any

import uvicorn
import uvicorn.logging

from .asgi import create_app
from .asgi.hosts import describe_allowed_hosts
from .asgi.state import HubState
from .config import Settings
from .server_protocol import limits_for, protocol_class, raise_nofile_limit

__all__ = ["Server", "build_server", "run"]


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

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self.hub_state.close()
        await super().shutdown(sockets)


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
    log = _ssehub_log(settings)
    app = create_app(settings)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "access_log": settings.log_level == "debug",
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
        # request head size and time, and every connection counted (server_protocol.py)
        options["http"] = protocol_class(limits_for(settings, raise_nofile_limit()))
    else:  # pragma: no cover - uvicorn[standard] brings httptools; h11 has a head limit of its own
        options["h11_max_incomplete_event_size"] = settings.max_header_bytes
    options.update(uvicorn_options)
    config = uvicorn.Config(app, **options)  # configures logging
    logging.getLogger("uvicorn.error").addFilter(_QuietAbort())
    log.info("%s", describe_allowed_hosts(settings))
    return Server(config, app.state.ssehub)


def run(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM."""
    server = build_server(settings)
    server.run()
