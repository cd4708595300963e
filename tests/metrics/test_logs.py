"""Logs: query tokens never written (access log of a real ``ssehub serve``), JSON lines that
parse for every logger (uvicorn's too), and the formatter and filter on their own."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import sys
from collections.abc import Iterator

import httpx
import pytest

from ssehub.logs import JsonFormatter, RedactTokens, log_config, redact_query
from tests.support.fixtures import Serve
from tests.support.serve import ServeProcess
from tests.support.wait import wait_until

SECRETS = ("secret123", "secret456", "secret789", "secretABC")


async def token_requests(http: httpx.AsyncClient, server: ServeProcess) -> None:
    """Requests that carry tokens in their query strings, in several spellings."""
    for target in ("/healthz?token=secret123", "/topics?a=1&access_token=secret456&b=2",
                   "/metrics?tok%65n=secret789", "/healthz?x=1&ssehub_token=secretABC"):
        assert (await http.get(server.url + target)).status_code == 200
    async with http.stream("GET", server.url + "/subscribe",
                           params={"topic": "t", "token": "secret123"}) as resp:
        assert resp.status_code == 200


async def test_access_log_never_shows_a_query_token(serve: Serve, http: httpx.AsyncClient) -> None:
    server = await serve("--access-log")
    await token_requests(http, server)
    await wait_until(lambda: server.log().count("GET /") >= 5, what="five access log lines")
    await server.stop()
    log = server.log()
    for secret in SECRETS:
        assert secret not in log
    assert '"GET /healthz?token=*** HTTP/1.1" 200' in log
    assert "/topics?a=1&access_token=***&b=2" in log
    assert "/metrics?tok%65n=***" in log
    assert "/subscribe?topic=t&token=***" in log


async def test_no_access_log_by_default(serve: Serve, http: httpx.AsyncClient) -> None:
    server = await serve()
    assert (await http.get(server.url + "/healthz")).status_code == 200
    await server.stop()
    assert "GET /healthz" not in server.log()


async def test_json_logs_one_object_per_line_for_every_logger(serve: Serve, http: httpx.AsyncClient) -> None:
    server = await serve("--log-format", "json", "--access-log", "--demo-tokens-per-second", "2000")
    await token_requests(http, server)
    async with http.stream("GET", server.url + "/chat/stream", params={"prompt": "hi"}) as resp:
        async for piece in resp.aiter_text():
            if "event: done" in piece:
                break
    await wait_until(lambda: " done: " in server.log(), what="the generation's end line")
    await server.stop()
    records = []
    for line in server.log().splitlines():
        if line.strip():
            records.append(json.loads(line))  # every line is one JSON object
    for record in records:
        assert {"ts", "level", "logger", "msg"} <= set(record), record
        assert record["ts"].endswith("Z") and "T" in record["ts"]
        assert "color_message" not in record
    loggers = {r["logger"] for r in records}
    assert {"uvicorn.error", "uvicorn.access", "ssehub.relay"} <= loggers
    started = [r for r in records if r["logger"] == "ssehub.relay" and " started: " in r["msg"]]
    assert started and started[0]["level"] == "info"
    access = [r for r in records if r["logger"] == "uvicorn.access"]
    assert {"client", "method", "path", "status"} <= set(access[0])
    assert any(r["path"] == "/healthz?token=***" and r["status"] == 200 for r in access)
    text = server.log()
    for secret in SECRETS:
        assert secret not in text


# -- the pieces on their own ---------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("/s?token=abc", "/s?token=***"),
    ("/s?topic=a&token=abc&x=1", "/s?topic=a&token=***&x=1"),
    ("/s?TOKEN=abc", "/s?TOKEN=***"),
    ("/s?access_token=a.b.c", "/s?access_token=***"),
    ("/s?tok%65n=abc", "/s?tok%65n=***"),
    ("/s?token=", "/s?token=***"),
    ('GET /s?token=abc HTTP/1.1" 200', 'GET /s?token=*** HTTP/1.1" 200'),
    ("/s?tokens_left=3", "/s?tokens_left=3"),
    ("/s?topic=token", "/s?topic=token"),
    ("no query here?", "no query here?"),
    ("/a?token=1 and /b?token=2", "/a?token=*** and /b?token=***"),
])
def test_redact_query(text: str, expected: str) -> None:
    assert redact_query(text) == expected


def access_record(path: str) -> logging.LogRecord:
    return logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                             ("127.0.0.1:5000", "GET", path, "1.1", 200), None)


def test_json_formatter_fields_extras_and_exceptions() -> None:
    fmt = JsonFormatter()
    out = json.loads(fmt.format(access_record("/x?token=t")))
    assert out["logger"] == "uvicorn.access" and out["level"] == "info"
    assert out["msg"] == '127.0.0.1:5000 - "GET /x?token=t HTTP/1.1" 200'  # (the filter redacts)
    fields = (out["client"], out["method"], out["path"], out["status"])
    assert fields == ("127.0.0.1:5000", "GET", "/x?token=t", 200)
    record = logging.LogRecord("ssehub.relay", logging.WARNING, __file__, 1, "a %s", ("b",), None)
    record.generation = "abc123"
    record.weird = object()
    out = json.loads(fmt.format(record))
    assert out["msg"] == "a b" and out["generation"] == "abc123" and out["weird"].startswith("<object")
    try:
        raise ValueError("boom\nline two")
    except ValueError:
        record = logging.LogRecord("ssehub", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    line = fmt.format(record)
    assert "\n" not in line
    assert "ValueError: boom" in json.loads(line)["exc"]


def test_redact_filter_changes_the_record_before_any_formatter() -> None:
    record = access_record("/x?a=1&token=t0ps3cret")
    assert RedactTokens().filter(record)
    assert "t0ps3cret" not in record.getMessage()
    assert record.args is not None and record.args[2] == "/x?a=1&token=***"  # type: ignore[index]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    names = ("uvicorn", "uvicorn.error", "uvicorn.access", "ssehub")
    saved = {n: (lg.handlers[:], lg.level, lg.propagate, lg.filters[:])
             for n in names for lg in [logging.getLogger(n)]}
    yield
    for n, (handlers, level, propagate, filters) in saved.items():
        lg = logging.getLogger(n)
        lg.handlers, lg.level, lg.propagate, lg.filters = handlers, level, propagate, filters


@pytest.mark.usefixtures("restore_logging")
def test_log_config_sets_up_ssehub_loggers_at_the_level_given() -> None:
    logging.config.dictConfig(log_config("warning", "json"))
    relay = logging.getLogger("ssehub.relay")
    assert not relay.isEnabledFor(logging.INFO) and relay.isEnabledFor(logging.WARNING)
    (handler,) = logging.getLogger("ssehub").handlers
    stream = io.StringIO()
    handler.setStream(stream)  # type: ignore[attr-defined]
    relay.warning("see /x?token=%s", "zzz")
    assert json.loads(stream.getvalue())["msg"] == "see /x?token=***"
