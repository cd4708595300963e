"""Logging for ``ssehub serve``: uvicorn's loggers and ssehub's own, text or one JSON object
per line, and query-string tokens redacted. Standard library only.

uvicorn's own ``log_config`` sets up only the ``uvicorn.*`` loggers: without the ``ssehub``
logger configured here, the relay's info lines ("generation … started") would go to
Python's last-resort handler, which prints warnings and above only.

Tokens: EventSource cannot set headers, so a browser sends its JWT as ``?token=…``, and
uvicorn's access log writes the whole request line. :class:`RedactTokens` replaces the value
of every query parameter whose name ends in ``token`` (``token``, ``access_token``,
``ssehub_token``, percent-encoded names included) with ``***`` before any handler formats
the record.
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any
from urllib.parse import unquote_plus

__all__ = ["JsonFormatter", "RedactTokens", "log_config", "redact_query"]

# what a LogRecord carries by itself; anything else was passed as ``extra=``
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "color_message", "taskName",
}
_QUERY = re.compile(r"\?[^\s\"]*")


def _redact_match(match: re.Match[str]) -> str:
    parts = match.group(0)[1:].split("&")
    for i, part in enumerate(parts):
        name, eq, _ = part.partition("=")
        if eq and unquote_plus(name).strip().lower().endswith("token"):
            parts[i] = name + "=***"
    return "?" + "&".join(parts)


def redact_query(text: str) -> str:
    """``/subscribe?topic=a&token=abc`` → ``/subscribe?topic=a&token=***`` (every query in text)."""
    if "?" not in text:
        return text
    return _QUERY.sub(_redact_match, text)


class RedactTokens(logging.Filter):
    """Redacts token query parameters in a record's message and its string arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        # The arguments first, in place: uvicorn's access formatter reads them one by one.
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(redact_query(a) if isinstance(a, str) else a for a in args)
        elif isinstance(args, dict):
            record.args = {k: redact_query(v) if isinstance(v, str) else v for k, v in args.items()}
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not fit: logging reports it itself
            return True
        redacted = redact_query(message)
        if redacted != message:  # a token in the template, or put together by the formatting
            record.msg, record.args = redacted, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (UTC, ISO 8601 with milliseconds), ``level``,
    ``logger``, ``msg``, then any ``extra=`` fields, ``exc`` for a traceback. uvicorn's
    access lines also get ``client``, ``method``, ``path``, ``http_version`` and ``status``."""

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        out: dict[str, Any] = {
            "ts": f"{ts}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, version, status = record.args
            out.update(client=client, method=method, path=path, http_version=version, status=status)
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key not in out:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False, default=repr)


def log_config(level: str = "info", fmt: str = "text") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for uvicorn's ``log_config``: uvicorn's loggers as
    uvicorn sets them up, plus the ``ssehub`` logger tree, with tokens redacted everywhere;
    ``fmt="json"`` gives every logger the JSON formatter."""
    upper = level.upper()
    if fmt == "json":
        formatters: dict[str, Any] = {name: {"()": "ssehub.logs.JsonFormatter"}
                                      for name in ("default", "access", "ssehub")}
    else:
        formatters = {
            "default": {"()": "uvicorn.logging.DefaultFormatter", "fmt": "%(levelprefix)s %(message)s",
                        "use_colors": None},
            "access": {"()": "uvicorn.logging.AccessFormatter",
                       "fmt": '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s'},
            "ssehub": {"()": "uvicorn.logging.DefaultFormatter",
                       "fmt": "%(levelprefix)s %(name)s: %(message)s", "use_colors": None},
        }

    def handler(formatter: str, stream: str) -> dict[str, Any]:
        return {"class": "logging.StreamHandler", "formatter": formatter, "stream": stream,
                "filters": ["redact_tokens"]}

    return {
        "version": 1,
        "disable_existing_loggers": False,  # ssehub's loggers exist already (module level)
        "filters": {"redact_tokens": {"()": "ssehub.logs.RedactTokens"}},
        "formatters": formatters,
        "handlers": {
            "default": handler("default", "ext://sys.stderr"),
            "access": handler("access", "ext://sys.stdout"),
            "ssehub": handler("ssehub", "ext://sys.stderr"),
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
            "ssehub": {"handlers": ["ssehub"], "level": upper, "propagate": False},
        },
    }
