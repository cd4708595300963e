"""An open stream ends when its token expires (SPEC §5); the client comes back with a fresh one.
The short-lived token is minted by ``ssehub token --ttl 2s``: its TTL is honoured end to end."""

from __future__ import annotations

import asyncio
import subprocess
from typing import Any

import httpx
import pytest

import ssehub.client
from ssehub.errors import ClientError
from tests.support import hub
from tests.support.serve import SSEHUB, clean_env
from tests.support.sse import SSEStream, subscribe_target
from tests.support.wait import wait_until

from .conftest import SECRET, make_token

pytestmark = pytest.mark.both_fronts  # the serve fixture: front=fast and front=asgi

READ_ALL = make_token({"ssehub.subscribe": ["*"]}, ttl=3600)


async def wait_subscribers(http: httpx.AsyncClient, url: str, topic: str, count: int) -> None:
    """GET /topics lists private topics only to a token that may read them."""
    await hub.wait_subscribers(http, url, topic, count, headers={"Authorization": f"Bearer {READ_ALL}"})


async def cli_token(*args: str, **env: str) -> str:
    proc = await asyncio.create_subprocess_exec(SSEHUB, "token", *args, stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE, env=clean_env(**env))
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err.decode()
    return out.decode().strip()


async def test_a_stream_ends_when_its_token_expires(serve: Any, http: httpx.AsyncClient,
                                                   sse_streams: list[SSEStream]) -> None:
    server = await serve("--jwt-leeway", "0", "--public-topics", "pub", "--retry", "1500",
                         env={"SSEHUB_JWT_SECRET": SECRET})
    short = await cli_token("--subscribe", "news", "--ttl", "2s", SSEHUB_JWT_SECRET=SECRET)
    long = make_token({"ssehub.subscribe": ["news"], "ssehub.publish": ["*"]}, ttl=3600)
    writer = {"Authorization": f"Bearer {long}"}
    news = subscribe_target("news")
    expiring = await SSEStream.open(server.port, news, {"Authorization": f"Bearer {short}"})
    lasting = await SSEStream.open(server.port, news, {"Authorization": f"Bearer {long}"})
    # a token sent to read a public topic is not needed, so its expiry does not end that stream
    public = await SSEStream.open(server.port, subscribe_target("pub"), {"Authorization": f"Bearer {short}"})
    sse_streams += [expiring, lasting, public]
    assert (expiring.status, lasting.status, public.status) == (200, 200, 200)
    await wait_subscribers(http, server.url, "news", 2)
    first = (await http.post(server.url + "/publish", json={"topic": "news", "data": "before"},
                             headers=writer)).json()["id"]
    assert (await expiring.next_event()).id == first
    # the expiring stream ends by itself, properly (the last chunk), with a retry hint
    await expiring.read_to_eof(timeout=20)
    assert expiring.complete
    assert bytes(expiring.raw).endswith(b"\nretry: 1500\n")  # a line: no empty event
    # the other streams are still open and delivering
    second = (await http.post(server.url + "/publish", json=[{"topic": "news", "data": "after"},
                                                             {"topic": "pub", "data": "after"}],
                              headers=writer)).json()["ids"]
    assert (await lasting.next_event()).id == first
    assert (await lasting.next_event()).id == second[0]
    assert (await public.next_event()).id == second[1]
    await wait_subscribers(http, server.url, "news", 1)
    # coming back with the same token: refused, with the reason
    again = await http.get(server.url + "/subscribe", params={"topic": "news"},
                           headers={"Authorization": f"Bearer {short}"})
    assert again.status_code == 401 and again.json() == {"error": "token expired"}


async def test_the_client_reconnects_with_a_fresh_token_from_a_function(serve: Any,
                                                                       http: httpx.AsyncClient) -> None:
    server = await serve("--jwt-leeway", "0", "--retry", "100", env={"SSEHUB_JWT_SECRET": SECRET})
    minted: list[str] = []

    async def fresh() -> str:  # each connection gets a token that expires 2 s later
        minted.append(make_token({"ssehub.subscribe": ["news"]}, ttl=2))
        return minted[-1]

    writer = make_token({"ssehub.publish": ["news"]})
    received: list[str] = []

    async def consume() -> None:
        async for event in ssehub.client.subscribe(server.url, "news", token=fresh, max_failures=5):
            received.append(event.data)

    task = asyncio.create_task(consume())
    try:
        await wait_subscribers(http, server.url, "news", 1)
        await ssehub.client.publish(server.url, "news", "one", token=writer)
        # wait for at least one reconnect (a second token), then publish again: nothing lost
        await wait_until(lambda: len(minted) >= 2, timeout=20, interval=0.1, what="a second token")
        assert len(minted) >= 2, "the stream did not end at the token's expiry"
        await wait_subscribers(http, server.url, "news", 1)
        await ssehub.client.publish(server.url, "news", "two", token=writer)
        await wait_until(lambda: received == ["one", "two"], timeout=10, interval=0.05, what="both events")
        assert received == ["one", "two"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    # a static token that expired: the client stops with the server's reason
    with_static = make_token({"ssehub.subscribe": ["news"]}, exp=1)
    try:
        async for _ in ssehub.client.subscribe(server.url, "news", token=with_static):
            raise AssertionError("no event expected")
    except ClientError as exc:
        assert (exc.status, exc.message) == (401, "token expired")
