"""``ssehub chat`` against a real server; ``ssehub simulate-llm`` argument handling."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator
from typing import Any

from ssehub.asgi import create_app
from ssehub.cli import build_parser
from ssehub.cli_llm import DIM, RESET, run_chat
from ssehub.config import Settings
from tests.support.upstream import RawResponse, RawUpstream, UpstreamRequest, delta, sse
from tests.support.uvicorn import serve_app
from tests.support.wait import wait_until


@contextlib.asynccontextmanager
async def server(**kw: Any) -> AsyncIterator[str]:
    async with serve_app(create_app(Settings(demo_tokens_per_second=0, **kw))) as url:
        yield url


async def test_chat_prints_the_answer_and_keeps_reasoning_off_stdout_when_piped() -> None:
    out, err = io.StringIO(), io.StringIO()
    async with server() as url:
        code = await run_chat(url, "What is 2+2?", out=out, err=err, tty=False)
    assert code == 0
    assert "demonstration answer" in out.getvalue() and "\x1b" not in out.getvalue()
    assert "What is 2+2?" in err.getvalue()  # the reasoning, on stderr
    assert "What is 2+2?" in out.getvalue()  # quoted in the answer too


async def test_chat_on_a_terminal_dims_the_reasoning() -> None:
    out, err = io.StringIO(), io.StringIO()
    async with server() as url:
        assert await run_chat(url, "hi", out=out, err=err, tty=True) == 0
    text = out.getvalue()
    assert text.startswith(DIM) and RESET + "\n\n" in text
    assert text.index("simulator") < text.index(RESET) < text.index("demonstration answer")
    assert err.getvalue() == ""


async def test_chat_errors() -> None:
    out, err = io.StringIO(), io.StringIO()
    async with server(simulator_faults=True) as url:
        assert await run_chat(url, "x", model="nope", out=out, err=err) == 1
        assert "unknown model" in err.getvalue()
        assert await run_chat(url, "x", model="ssehub-demo+error-429", out=out, err=err) == 1
        assert "upstream error: Rate limit" in err.getvalue()
    assert await run_chat(url, "x", out=out, err=err) == 1  # the server is gone
    assert "cannot reach" in err.getvalue()


async def test_ctrl_c_stops_the_generation_on_the_server() -> None:
    async def script(resp: RawResponse, req: UpstreamRequest) -> None:
        await resp.start()
        await resp.chunk(sse(delta(content="partial")))

    out, err = io.StringIO(), io.StringIO()
    async with RawUpstream(script) as up, server(llm_base_url=up.base_url, llm_model="m") as url:
        task = asyncio.get_running_loop().create_task(run_chat(url, "x", out=out, err=err, tty=False))
        await wait_until(lambda: "partial" in out.getvalue(), timeout=5, interval=0.01, what="partial")
        task.cancel()  # what asyncio.run does on the first Ctrl-C
        assert await task == 130
        await asyncio.wait_for(up.requests[0].disconnected.wait(), 1)


def test_parser_registers_chat_and_simulate_llm() -> None:
    parser = build_parser()
    args = parser.parse_args(["chat", "hello there", "--model", "m", "--provider", "p", "--url", "http://h:1"])
    assert (args.question, args.model, args.provider, args.url) == ("hello there", "m", "p", "http://h:1")
    assert callable(args.func)
    args = parser.parse_args(["simulate-llm", "--port", "9000", "--tokens-per-second", "500",
                              "--fault", "bad"])
    assert (args.port, args.tokens_per_second) == (9000, 500.0)
    assert args.func(args) == 2  # unknown fault: refused before serving
