"""State-changing requests a browser sends for another site are refused (no CORS preflight
protects form posts, text/plain fetches or navigations)."""

from __future__ import annotations

import json

import pytest

from ssehub import Settings, create_app

from .driver import Stream

PUBLISH = b'{"topic":"news","data":"x"}'


async def post(app, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    all_headers = {"content-type": "application/json", "host": "hub.local:8181", **headers}
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
        ({"sec-fetch-site": "cross-site"}, 403),
        ({"sec-fetch-site": "same-site"}, 403),
    ],
)
async def test_publish_refuses_cross_site_requests(headers: dict[str, str], status: int) -> None:
    app = create_app(Settings(heartbeat=3600, cors_origins=("https://allowed.example",)))
    got, body = await post(app, "/publish", PUBLISH, headers)
    assert got == status, body
    if status == 403:
        assert "refused" in body["error"]
    await app.state.ssehub.close()


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
