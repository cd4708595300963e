"""Issue 8 §2 findings 1, 2, 4b, 6, 8, 10, 12 and 13, each against a real ``ssehub serve``:
DNS rebinding, the demo endpoint's body and origin, batch publishes that yield, per-client
generation slots, cross-site GET /chat/stream, model and cost controls, secrets in upstream
errors, and forged ``gap`` events."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from ssehub.config import Settings
from tests.support.fixtures import Serve
from tests.support.serve import ServeProcess
from tests.support.sse import SSEStream, subscribe_target
from tests.support.wait import TIMEOUT, wait_until

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


async def generations(http: httpx.AsyncClient, url: str) -> int:
    return int((await http.get(url + "/topics")).json()["generations"])


async def test_dns_rebinding_host_is_refused_before_anything_happens(
    serve: Serve, http: httpx.AsyncClient
) -> None:
    hub: ServeProcess = await serve()
    evil = {"Host": f"evil.example:{hub.port}", "Origin": f"http://evil.example:{hub.port}"}
    r = await http.post(hub.url + "/publish", json={"topic": "t", "data": "x"}, headers=evil)
    assert r.status_code == 400 and "evil.example" in r.json()["error"]
    r = await http.post(hub.url + "/chat", json=CHAT, headers=evil)
    assert r.status_code == 400
    r = await http.get(hub.url + "/topics", headers=evil)
    assert r.status_code == 400
    assert (await http.get(hub.url + "/topics")).json() == {"topics": [], "generations": 0}
    # the same origin check with an allowed name passes; another port of that name does not
    ok = {"Origin": f"http://127.0.0.1:{hub.port}"}
    r = await http.post(hub.url + "/publish", json={"topic": "t", "data": "x"}, headers=ok)
    assert r.status_code == 200
    other = {"Origin": f"http://localhost:{hub.port + 1}"}
    assert (await http.post(hub.url + "/publish", json={"topic": "t", "data": "x"},
                            headers=other)).status_code == 403
    assert "loopback names" in hub.log() or "serving Host names" in hub.log()


async def test_demo_endpoint_limits_its_body_and_refuses_cross_site_posts(
    serve: Serve, http: httpx.AsyncClient
) -> None:
    hub: ServeProcess = await serve("--max-event-bytes", "65536")
    demo = hub.url + "/demo/v1/chat/completions"
    r = await http.post(demo, content=b"x" * 200_000, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "error" in r.json()

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        for _ in range(64):
            yield b"y" * 65536

    r = await http.post(demo, content=chunked(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    r = await http.post(demo, content=json.dumps(CHAT), headers={
        "content-type": "text/plain", "origin": "https://evil.example"})
    assert r.status_code == 403 and "refused" in r.json()["error"]
    r = await http.post(demo, json={**CHAT, "model": "ssehub-demo"})
    assert r.status_code == 200  # the relay's own call still works


async def test_batch_publish_yields_to_other_requests(serve: Serve, http: httpx.AsyncClient) -> None:
    """40,000 events in one request: other requests are served while it runs (a single
    publish sent meanwhile gets an id inside the batch's range)."""
    hub: ServeProcess = await serve("--history-size", "50000", "--max-event-bytes", str(4 << 20))
    batch = [{"topic": "b", "data": i} for i in range(40_000)]

    def seq(ident: str) -> int:
        return int(ident.rsplit("-", 1)[1])

    async with httpx.AsyncClient(timeout=TIMEOUT) as other:
        await other.get(hub.url + "/healthz")  # connect before
        task = asyncio.get_running_loop().create_task(http.post(hub.url + "/publish", json=batch))
        singles: list[str] = []
        while not task.done():
            r = await other.post(hub.url + "/publish", json={"topic": "s", "data": "x"})
            singles.append(r.json()["id"])
        ids = (await task).json()["ids"]
    assert len(ids) == 40_000
    first, last = seq(ids[0]), seq(ids[-1])
    assert any(first < seq(s) < last for s in singles), (first, last, singles[:5])


async def test_one_client_cannot_hold_every_generation_slot(serve: Serve, http: httpx.AsyncClient) -> None:
    hub: ServeProcess = await serve("--max-generations-per-client", "2")
    stall = {**CHAT, "model": "ssehub-demo+stall"}
    r = await http.post(hub.url + "/chat", json=stall)
    assert r.status_code == 404  # fault models only with simulator_faults
    await hub.stop()

    hub = await serve("--max-generations-per-client", "2", "--simulator-faults",
                      "--chat-grace", "60")
    ids = []
    for _ in range(2):
        r = await http.post(hub.url + "/chat", json=stall)
        assert r.status_code == 200, r.text
        ids.append(r.json()["id"])
    r = await http.post(hub.url + "/chat", json=stall)
    assert r.status_code == 429 and "max_generations_per_client" in r.json()["error"]
    # another client address still gets a slot
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(transport=transport, timeout=TIMEOUT) as neighbour:
        assert (await neighbour.post(hub.url + "/chat", json=stall)).status_code == 200
    # a stopped generation frees its slot
    assert (await http.delete(f"{hub.url}/chat/{ids[0]}")).status_code == 200

    async def slot_free() -> bool:
        return (await http.post(hub.url + "/chat", json=stall)).status_code == 200

    await wait_until(slot_free, what="the freed generation slot")


async def test_get_chat_stream_needs_proof_it_is_not_cross_site(
    serve: Serve, http: httpx.AsyncClient
) -> None:
    hub: ServeProcess = await serve("--allowed-hosts", "hub.lan, localhost, 127.0.0.1")
    target = "/chat/stream?prompt=hi"
    lan = f"hub.lan:{hub.port}"

    async def status(headers: dict[str, str]) -> int:
        r = await http.get(hub.url + target, headers=headers)
        return r.status_code

    # <img src=http://hub.lan:PORT/chat/stream?…> from a plain-HTTP page: no Origin, no Sec-Fetch-*,
    # and with referrerpolicy=no-referrer no Referer either — indistinguishable from curl
    assert await status({"Host": lan}) == 403
    assert await status({"Host": lan, "Referer": "http://evil.example/page"}) == 403
    assert await status({"Host": lan, "Sec-Fetch-Site": "cross-site"}) == 403
    assert await generations(http, hub.url) == 0
    # proofs: a same-origin Sec-Fetch-Site (no page can forge Sec- headers), a same-origin Referer
    assert await status({"Host": lan, "Sec-Fetch-Site": "same-origin"}) == 200
    assert await status({"Host": lan, "Referer": f"http://{lan}/"}) == 200
    # a program on the machine itself (loopback Host, no browser header at all)
    assert await status({}) == 200


async def _paid_upstream(seen: list[dict[str, Any]], secret: str) -> tuple[asyncio.Server, int]:
    """A stand-in paid upstream: records each request, answers 400 with a long error that
    echoes the secret header value (as some gateways do)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        seen.append(json.loads(await reader.readexactly(length)))
        body = json.dumps({"error": {"message": f"invalid api-key {secret}; " + "detail " * 2000}}).encode()
        writer.write(b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: "
                     + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_models_cost_controls_and_secrets_with_a_configured_provider(
    serve: Serve, http: httpx.AsyncClient, tmp_path: Path, sse_streams: list[SSEStream]
) -> None:
    secret = "azure-SECRET-key-0123456789"
    seen: list[dict[str, Any]] = []
    upstream, port = await _paid_upstream(seen, secret)
    config = tmp_path / "ssehub.toml"
    config.write_text(f"""
[[providers]]
name = "paid"
base_url = "http://127.0.0.1:{port}/v1"
models = ["cheap-model"]
headers = {{ "api-key" = "{secret}" }}
""", encoding="utf-8")
    try:
        hub: ServeProcess = await serve("--config", str(config), "--max-prompt-bytes", "1000",
                                        "--max-tokens-limit", "400", "--log-level", "debug")
        r = await http.post(hub.url + "/chat", json={**CHAT, "model": "gpt-4.5-preview-most-expensive"})
        assert r.status_code == 404 and "unknown model" in r.json()["error"]
        r = await http.post(hub.url + "/chat", json={**CHAT, "max_tokens": 1_000_000})
        assert r.status_code == 400 and "max_tokens" in r.json()["error"]
        r = await http.post(hub.url + "/chat", json={"messages": [{"role": "user", "content": "é" * 600}]})
        assert r.status_code == 413 and "max_prompt_bytes" in r.json()["error"]
        assert seen == []  # nothing reached the paid upstream
        # the demo endpoint is not mounted when a provider is configured
        assert (await http.post(hub.url + "/demo/v1/chat/completions", json=CHAT)).status_code == 404
        # an upstream error reaches the reader as a short, scrubbed excerpt
        r = await http.post(hub.url + "/chat", json={**CHAT, "max_tokens": 400})
        assert r.status_code == 200, r.text
        stream = await SSEStream.open(hub.port, r.json()["events"])
        sse_streams.append(stream)
        await stream.read_until(lambda s: any(e.event == "error" for e in s.events), what="the error event")
        error = json.loads(next(e for e in stream.events if e.event == "error").data)
        assert error["status"] == 400
        assert len(error["message"]) <= 300 and secret not in error["message"]
        assert "invalid api-key" in error["message"]
        assert [b["model"] for b in seen] == ["cheap-model"]
        await wait_until(lambda: "generation" in hub.log(), what="the relay's log lines")
        assert secret not in hub.log()
    finally:
        upstream.close()
        with contextlib.suppress(Exception):
            await upstream.wait_closed()


def test_settings_repr_redacts_provider_header_values() -> None:
    table = {"name": "az", "base_url": "https://x", "headers": {"api-key": "k-SECRET-1234"}}
    s = Settings(providers=(table,))
    assert "k-SECRET-1234" not in repr(s) and "api-key" in repr(s)


async def test_gap_is_a_reserved_event_name(
    serve: Serve, http: httpx.AsyncClient, sse_streams: list[SSEStream]
) -> None:
    hub: ServeProcess = await serve()
    stream = await SSEStream.open(hub.port, subscribe_target("news"))
    sse_streams.append(stream)
    forged = [
        http.post(hub.url + "/publish", json={"topic": "news", "data": "{}", "event": "gap"}),
        http.post(hub.url + "/publish", data={"topic": "news", "data": "{}", "event": "gap"}),
        http.post(hub.url + "/publish?topic=news&event=gap", content=b"{}"),
        http.post(hub.url + "/publish", json=[{"topic": "news", "data": "ok"},
                                              {"topic": "news", "data": "x", "event": "gap"}]),
    ]
    for request in forged:
        r = await request
        assert r.status_code == 400 and "reserved" in r.json()["error"]
    ident = (await http.post(hub.url + "/publish", json={"topic": "news", "data": "real"})).json()["id"]
    event = await stream.next_event()
    assert (event.id, event.data, event.event) == (ident, "real", None)  # nothing forged came first
