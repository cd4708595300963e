"""The auth matrix over HTTP, against a real ``ssehub serve`` with auth on (SPEC §5)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import jwt

from ssehub.wire import Parser
from tests.support.sse import SSEStream, subscribe_target

from .conftest import SECRET, KeyPair, forge_hs256, make_token

INVALID = 'Bearer error="invalid_token"'
SCOPE = 'Bearer error="insufficient_scope"'


async def hs_server(serve: Any, *flags: str) -> Any:
    return await serve("--jwt-leeway", "0", "--public-topics", "pub/*,status", *flags,
                       env={"SSEHUB_JWT_SECRET": SECRET})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_401(response: httpx.Response, reason: str | tuple[str, ...]) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == INVALID
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"].startswith(reason), response.json()


def assert_403(response: httpx.Response, message: str) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["www-authenticate"] == SCOPE
    assert response.json() == {"error": message}


async def open_stream(port: int, topics: list[str], headers: dict[str, str] | None = None,
                      **params: str) -> SSEStream:
    return await SSEStream.open(port, subscribe_target(topics, last_event_id="earliest", **params), headers)


async def test_every_bad_token_is_a_401_naming_the_check(serve: Any, http: httpx.AsyncClient,
                                                        rsa_keys: KeyPair) -> None:
    server = await hs_server(serve)
    now = int(time.time())
    good = make_token({"ssehub.publish": ["*"], "ssehub.subscribe": ["*"]})
    cases: dict[str, tuple[str | None, str | tuple[str, ...]]] = {
        "no token": (None, "missing token"),
        "wrong signature": (make_token({"ssehub.publish": ["*"]}, key="x" * 40), "bad signature"),
        "expired": (make_token({"ssehub.publish": ["*"]}, exp=now - 10), "token expired"),
        "not yet valid": (make_token({"ssehub.publish": ["*"]}, nbf=now + 600), "token not yet valid"),
        "alg none": (jwt.encode({"ssehub.publish": ["*"]}, "", algorithm="none"), "algorithm not allowed"),
        "RS256 on an HS256 hub": (make_token({}, key=rsa_keys.private, algorithm="RS256"),
                                  "algorithm not allowed"),
        "garbage": ("garbage", "malformed token"),
        # a cut signature is "bad" or, when its base64 no longer decodes, "malformed"
        "truncated": (good[:-20], ("bad signature", "malformed token")),
        "truncated harder": (good[: len(good) // 3], "malformed token"),
    }
    for name, (token, reason) in cases.items():
        headers = bearer(token) if token else {}
        published = await http.post(server.url + "/publish", json={"topic": "news", "data": "x"},
                                     headers=headers)
        assert_401(published, reason)
        read = await http.get(server.url + "/subscribe", params={"topic": "news"}, headers=headers)
        assert_401(read, reason)
        if token:
            assert token not in published.text and token not in read.text, name
    # nothing was published by any of them
    topics = await http.get(server.url + "/topics", headers=bearer(good))
    assert topics.json()["topics"] == []
    assert token_free(server.log(), [t for t, _ in cases.values() if t])


def token_free(log: str, tokens: list[str]) -> bool:
    return not any(t in log for t in tokens)


async def test_the_token_may_come_from_header_query_or_cookie(serve: Any, http: httpx.AsyncClient,
                                                             sse_streams: list[SSEStream]) -> None:
    server = await hs_server(serve)
    token = make_token({"ssehub.subscribe": ["news"], "ssehub.publish": ["news"]})
    bad = make_token({"ssehub.subscribe": ["news"]}, key="y" * 40)
    ident = (await http.post(server.url + "/publish", data={"topic": "news", "data": "hi"},
                             headers=bearer(token))).json()["id"]
    ways: list[tuple[dict[str, str], dict[str, str]]] = [
        (bearer(token), {}),
        ({"Authorization": f"bearer   {token}"}, {}),  # the scheme is case-insensitive
        ({}, {"token": token}),
        ({"Cookie": f"theme=dark; ssehub_token={token}"}, {}),
        ({"Authorization": "Basic dXNlcjpwdw==", "Cookie": f"ssehub_token={token}"}, {}),  # not Bearer
    ]
    for headers, params in ways:
        stream = await open_stream(server.port, ["news"], headers, **params)
        sse_streams.append(stream)
        assert stream.status == 200, (headers, params, stream.body)
        event = await stream.next_event()
        assert (event.id, event.data) == (ident, "hi")
    # the first token found is the one checked: a bad header does not fall back to the cookie
    for headers, params in [(bearer(bad), {"token": token}),
                            ({**bearer(bad), "Cookie": f"ssehub_token={token}"}, {}),
                            ({"Cookie": f"ssehub_token={token}"}, {"token": bad})]:
        response = await http.get(server.url + "/subscribe", params={"topic": "news", **params},
                                  headers=headers)
        assert_401(response, "bad signature")
    # the cookie and the query token work for publish too (a page's form, a script)
    for kwargs in ({"cookies": {"ssehub_token": token}}, {"params": {"token": token}}):
        client = httpx.AsyncClient(timeout=10, **kwargs)  # type: ignore[arg-type]
        async with client:
            r = await client.post(server.url + "/publish", json={"topic": "news", "data": "again"})
            assert r.status_code == 200, r.text
    assert token_free(server.log(), [token, bad])


async def test_private_public_and_mixed_subscriptions(serve: Any, http: httpx.AsyncClient,
                                                     sse_streams: list[SSEStream]) -> None:
    server = await hs_server(serve)
    reader = make_token({"ssehub.subscribe": ["news/*"]})
    # public topics need no token; a token sent along is not even checked
    for headers in ({}, bearer("garbage")):
        stream = await open_stream(server.port, ["pub/a", "status"], headers)
        sse_streams.append(stream)
        assert stream.status == 200, stream.body
    # private: a token that allows the topic
    assert_401(await http.get(server.url + "/subscribe", params={"topic": "news/a"}), "missing token")
    stream = await open_stream(server.port, ["news/a", "news/b/c"], bearer(reader))
    sse_streams.append(stream)
    assert stream.status == 200
    # mixed: the public ones are free, every other one must be allowed
    assert_401(await http.get(server.url + "/subscribe", params=[("topic", "pub/a"), ("topic", "news/a")]),
               "missing token")
    stream = await open_stream(server.port, ["pub/a", "news/a"], bearer(reader))
    sse_streams.append(stream)
    assert stream.status == 200
    r = await http.get(server.url + "/subscribe", params=[("topic", "news/a"), ("topic", "pub/a"),
                                                         ("topic", "secret")], headers=bearer(reader))
    assert_403(r, "token does not allow subscribing to 'secret'")
    # a token without a subscribe claim reads nothing private
    r = await http.get(server.url + "/subscribe", params={"topic": "news/a"},
                       headers=bearer(make_token({"ssehub.publish": ["*"]})))
    assert_403(r, "token does not allow subscribing to 'news/a'")


async def test_a_publish_needs_every_topic_and_publishes_nothing_otherwise(
        serve: Any, http: httpx.AsyncClient) -> None:
    server = await hs_server(serve)
    writer = bearer(make_token({"ssehub.publish": ["news/*", "pub/*"]}))
    everything = bearer(make_token({"ssehub.subscribe": ["*"]}))
    url = server.url + "/publish"
    ok = await http.post(url, json={"topic": ["news/a", "pub/b"], "data": 1}, headers=writer)
    assert ok.status_code == 200, ok.text
    refused = [
        await http.post(url, json={"topic": ["news/a", "other"], "data": 2}, headers=writer),
        await http.post(server.url + "/publish", json=[{"topic": "news/a", "data": 3},
                                                       {"topic": "other", "data": 4}], headers=writer),
        await http.post(server.url + "/publish", data={"topic": ["news/a", "other"], "data": "5"},
                        headers=writer),
        await http.post(server.url + "/publish?topic=news/a&topic=other", content=b"6", headers=writer),
    ]
    for r in refused:
        assert_403(r, "token does not allow publishing to 'other'")
    # a public topic is readable by all, not writable by all
    assert_401(await http.post(server.url + "/publish", json={"topic": "pub/b", "data": 7}), "missing token")
    # a reader token cannot publish
    assert_403(await http.post(url, json={"topic": "news/a", "data": 8}, headers=everything),
               "token does not allow publishing to 'news/a'")
    # news/a holds the one accepted event only
    response = await http.get(server.url + "/topics", headers=everything)
    by_topic = {t["topic"]: t for t in response.json()["topics"]}
    assert by_topic["news/a"]["last_event_id"] == ok.json()["id"]
    assert by_topic["news/a"]["retained"] == 1
    assert "other" not in by_topic


async def test_topics_lists_what_the_request_may_read(serve: Any, http: httpx.AsyncClient) -> None:
    server = await hs_server(serve)
    writer = bearer(make_token({"ssehub.publish": ["*"]}))
    for topic in ("pub/a", "news/a", "secret"):
        assert (await http.post(server.url + "/publish", json={"topic": topic, "data": 1},
                                headers=writer)).status_code == 200

    async def listed(headers: dict[str, str]) -> set[str]:
        response = await http.get(server.url + "/topics", headers=headers)
        assert response.status_code == 200, response.text
        return {t["topic"] for t in response.json()["topics"]}

    assert await listed({}) == {"pub/a"}
    assert await listed(bearer(make_token({"ssehub.subscribe": ["news/*"]}))) == {"pub/a", "news/a"}
    assert await listed(bearer(make_token({"ssehub.subscribe": ["*"]}))) == {"pub/a", "news/a", "secret"}
    assert_401(await http.get(server.url + "/topics", headers=bearer(make_token({}, exp=1))), "token expired")
    assert (await http.get(server.url + "/healthz")).status_code == 200  # always open


def sse_events(body: bytes) -> list[tuple[str | None, Any]]:
    parser = Parser()
    events = parser.feed(body)
    return [(e.event, json.loads(e.data)) for e in events if e.data]


async def test_generations_need_a_token_to_start_or_stop_and_g_to_read(
        serve: Any, http: httpx.AsyncClient, sse_streams: list[SSEStream]) -> None:
    server = await hs_server(serve, "--demo-tokens-per-second", "20")
    token = make_token({})  # any valid token: no claim is needed to chat
    ask = {"messages": [{"role": "user", "content": "hi"}]}
    assert_401(await http.post(server.url + "/chat", json=ask), "missing token")
    assert_401(await http.post(server.url + "/chat", json=ask, headers=bearer("x.y.z")), "malformed token")
    assert_401(await http.get(server.url + "/chat/stream", params={"prompt": "hi"}), "missing token")
    started = await http.post(server.url + "/chat", json=ask, headers=bearer(token))
    assert started.status_code == 200, started.text
    info = started.json()
    # knowing G is what lets a client read the generation: no token
    stream = await SSEStream.open(server.port, info["events"])
    sse_streams.append(stream)
    assert stream.status == 200, stream.body
    first = await stream.next_event()
    assert first.event == "start" and json.loads(first.data)["id"] == info["id"]
    # stopping needs a token (and G)
    assert_401(await http.delete(f"{server.url}/chat/{info['id']}"), "missing token")
    stopped = await http.delete(f"{server.url}/chat/{info['id']}", headers=bearer(token))
    assert stopped.status_code == 200, stopped.text
    await stream.read_until(lambda s: any(e.event == "done" for e in s.events), what="done")
    done = next(e for e in stream.events if e.event == "done")
    assert json.loads(done.data) == {"finish_reason": "cancelled"}
    # the one-shot stream with the token in the query, as a plain EventSource would send it
    oneshot = await SSEStream.open(server.port, "/chat/stream?prompt=hi&token=" + token)
    sse_streams.append(oneshot)
    assert oneshot.status == 200, oneshot.body
    assert (await oneshot.next_event()).event == "start"
    assert token_free(server.log(), [token])


async def test_an_es256_hub_with_its_key_in_a_file(serve: Any, http: httpx.AsyncClient, ec_keys: KeyPair,
                                                  key_file: Any) -> None:
    path = key_file(ec_keys.public_pem)
    server = await serve("--jwt-public-key", f"@{path}")
    good = make_token({"ssehub.publish": ["*"]}, key=ec_keys.private, algorithm="ES256")
    r = await http.post(server.url + "/publish", json={"topic": "t", "data": 1}, headers=bearer(good))
    assert r.status_code == 200, r.text
    forged = forge_hs256({"ssehub.publish": ["*"], "exp": int(time.time()) + 60}, ec_keys.public_pem.encode())
    r = await http.post(server.url + "/publish", json={"topic": "t", "data": 1}, headers=bearer(forged))
    assert_401(r, "algorithm not allowed")


async def test_a_bad_key_stops_the_server_at_start(tmp_path: Any) -> None:
    import asyncio

    from tests.support.serve import SSEHUB, clean_env

    proc = await asyncio.create_subprocess_exec(
        SSEHUB, "serve", "--port", "0", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=clean_env(SSEHUB_JWT_PUBLIC_KEY="@" + str(tmp_path / "missing.pem")))
    _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 2
    assert "configuration error: cannot read jwt_public_key" in err.decode()
