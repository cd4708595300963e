"""State-changing requests a browser sends for another site are refused (no CORS preflight
protects form posts, text/plain fetches or navigations)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ssehub import Settings, create_app

from .driver import Stream

PUBLISH = b'{"topic":"news","data":"x"}'


async def post(app, path: str, body: bytes, headers: dict[str, str],  # type: ignore[no-untyped-def]
               host: str = "localhost:8181") -> tuple[int, dict[str, Any]]:
    all_headers = {"content-type": "application/json", "host": host, **headers}
    s = await Stream(app, path, method="POST", body=body, headers=all_headers).start()
    return s.status or 0, json.loads(await s.body_until_end())


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 200),  # a program: no Origin, no Sec-Fetch-Site
        ({"origin": "http://hub.local:8181", "sec-fetch-site": "same-origin"}, 200),
        ({"origin": "https://allowed.example"}, 200),  # listed in cors_origins
        ({"origin": "https://evil.example"}, 403),
        ({"origin": "null"}, 403),  # sandboxed frame, file:// page
        ({"origin": "http://hub.local:9999"}, 403),  # an allowed host on another port
        ({"origin": "http://localhost:8181"}, 403),  # allowed_hosts set: loopback names are not added
        ({"sec-fetch-site": "cross-site"}, 403),
        ({"sec-fetch-site": "same-site"}, 403),
    ],
)
async def test_publish_refuses_cross_site_requests(headers: dict[str, str], status: int) -> None:
    app = create_app(Settings(heartbeat=3600, cors_origins=("https://allowed.example",),
                              allowed_hosts=("hub.local",)))
    got, body = await post(app, "/publish", PUBLISH, headers, host="hub.local:8181")
    assert got == status, body
    if status == 403:
        assert "refused" in body["error"]
    await app.state.ssehub.close()


@pytest.mark.parametrize("path", ["/publish", "/subscribe?topic=x", "/healthz", "/"])
async def test_dns_rebinding_host_is_refused_before_routing(path: str) -> None:
    """The page's own origin matches its Host: both name the attacker's domain, so the origin
    check alone would pass. The Host guard refuses it, on the direct path too."""
    app = create_app(Settings(heartbeat=3600))
    s = await Stream(app, path.split("?", maxsplit=1)[0], [("topic", "x")] if "?" in path else [],
                     method="POST" if path == "/publish" else "GET", body=PUBLISH,
                     headers={"host": "evil.example:8181", "origin": "http://evil.example:8181",
                              "content-type": "application/json"}).start()
    assert s.status == 400
    assert "evil.example" in json.loads(await s.body_until_end())["error"]
    assert app.state.hub.topics() == []
    await app.state.ssehub.close()


@pytest.mark.parametrize(("host", "status"), [
    ("localhost:8181", 200), ("127.0.0.1", 200), ("[::1]:8181", 200), ("LOCALHOST.", 200),
    ("evil.example", 400), ("127.0.0.1.evil.example", 400), ("10.0.0.5:8181", 400),
])
async def test_default_allowed_hosts_are_the_loopback_names(host: str, status: int) -> None:
    app = create_app(Settings(heartbeat=3600))
    s = await Stream(app, "/healthz", headers={"host": host}).start()
    assert s.status == status
    await app.state.ssehub.close()


async def test_explicit_bind_address_and_the_connections_own_ip_literal_are_allowed() -> None:
    app = create_app(Settings(heartbeat=3600, host="10.0.0.5"))
    assert (await Stream(app, "/healthz", headers={"host": "10.0.0.5:8181"}).start()).status == 200
    # the driver's socket address is 127.0.0.1; a wildcard bind accepts its own IP literal only
    app2 = create_app(Settings(heartbeat=3600, host="0.0.0.0"))
    assert (await Stream(app2, "/healthz", headers={"host": "127.0.0.1:8181"}).start()).status == 200
    assert (await Stream(app2, "/healthz", headers={"host": "10.0.0.7:8181"}).start()).status == 400
    assert (await Stream(app2, "/healthz", headers={"host": "anything", "origin": "x"}).start()).status == 400
    app3 = create_app(Settings(heartbeat=3600, allowed_hosts=("*",)))
    assert (await Stream(app3, "/healthz", headers={"host": "anything"}).start()).status == 200
    for a in (app, app2, app3):
        await a.state.ssehub.close()


async def test_chat_refuses_cross_site_requests_and_starts_nothing() -> None:
    app = create_app(Settings(heartbeat=3600))
    body = b'{"messages":[{"role":"user","content":"hi"}]}'
    got, answer = await post(app, "/chat", body, {"origin": "https://evil.example"})
    assert got == 403 and "refused" in answer["error"]
    assert app.state.relay.running == 0
    s = await Stream(app, "/chat/stream", [("prompt", "hi")],
                     headers={"sec-fetch-site": "cross-site"}).start()
    assert s.status == 403
    assert app.state.relay.running == 0
    await app.state.ssehub.close()


async def test_generation_topics_cannot_be_published_over_http() -> None:
    app = create_app(Settings(heartbeat=3600))
    got, answer = await post(app, "/publish", b'{"topic":["news","chat/abc"],"data":"spoof"}', {})
    assert got == 403 and "relay only" in answer["error"]
    await app.state.ssehub.close()


async def test_head_subscribe_answers_headers_without_a_stream() -> None:
    app = create_app(Settings(heartbeat=3600))
    await app.state.ssehub.ensure_started()
    s = await Stream(app, "/subscribe", [("topic", "t")], method="HEAD").start()
    assert s.status == 200 and s.headers["content-type"].startswith("text/event-stream")
    assert await s.body_until_end() == b""
    await app.state.ssehub.close()


def test_unknown_broker_url_is_a_configuration_error() -> None:
    from ssehub.errors import BadRequest

    with pytest.raises(BadRequest, match="broker"):
        create_app(Settings(broker="nonsense://x"))
