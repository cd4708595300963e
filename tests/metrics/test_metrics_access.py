"""Who may read /metrics: loopback clients (127.0.0.0/8, ::1), or anyone presenting the
metrics token; a proxied request is not local unless proxies are trusted. Driven in-process
with the client address set in the ASGI scope, as a server would set it."""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from ssehub.asgi import create_app
from ssehub.asgi.metrics import is_loopback
from ssehub.asgi.state import reason_of
from ssehub.config import Settings
from ssehub.errors import (
    BadRequest,
    BrokerUnavailable,
    CapacityExceeded,
    CrossOriginRefused,
    Forbidden,
    HeaderTooLarge,
    HostNotAllowed,
    HubClosed,
    InvalidTopic,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    SSEHubError,
    Unauthorized,
    UpstreamError,
)

from ..asgi.driver import Stream
from .scrape import parse, value

TOKEN = "s3cret-metrics-token"


async def get(app: Any, client: str, headers: dict[str, str] | None = None,
              path: str = "/metrics") -> tuple[int, dict[str, str], bytes]:
    stream = Stream(app, path, headers=headers)
    stream.scope["client"] = (client, 40000)
    await stream.start()
    body = await stream.body_until_end()
    await stream.finished()
    assert stream.status is not None
    return stream.status, stream.headers, body


@pytest.mark.parametrize("client", ["127.0.0.1", "127.0.0.2", "127.255.255.254", "::1", "::ffff:127.0.0.1"])
async def test_loopback_clients_may_scrape(client: str) -> None:
    status, headers, body = await get(create_app(Settings()), client)
    assert status == 200, body
    assert headers["content-type"].startswith("text/plain; version=")
    assert ("ssehub_connections", ()) in parse(body.decode())


@pytest.mark.parametrize("client", ["10.1.2.3", "192.0.2.7", "2001:db8::1", "::ffff:192.0.2.7", "", "unix"])
async def test_other_clients_are_refused(client: str) -> None:
    status, _, body = await get(create_app(Settings()), client)
    assert status == 403
    assert "loopback" in body.decode()


async def test_a_proxied_request_is_not_local_unless_proxies_are_trusted() -> None:
    app = create_app(Settings())
    for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
        status, _, _ = await get(app, "127.0.0.1", {header: "203.0.113.9"})
        assert status == 403, header
    # behind a trusted proxy the server has put the real client in the scope already
    trusted = create_app(Settings(trusted_proxies=("127.0.0.1",)))
    assert (await get(trusted, "127.0.0.1", {"X-Forwarded-For": "127.0.0.1"}))[0] == 200
    assert (await get(trusted, "203.0.113.9", {"X-Forwarded-For": "203.0.113.9"}))[0] == 403


async def test_the_metrics_token_opens_it_to_others_and_a_wrong_one_is_401() -> None:
    app = create_app(Settings(metrics_token=TOKEN))
    assert (await get(app, "192.0.2.7", {"Authorization": f"Bearer {TOKEN}"}))[0] == 200
    assert (await get(app, "192.0.2.7", {"Authorization": f"bearer  {TOKEN}"}))[0] == 200
    assert (await get(app, "192.0.2.7"))[0] == 403
    for wrong in (f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer ", f"Basic {TOKEN}", TOKEN):
        for client in ("192.0.2.7", "127.0.0.1"):
            status, headers, body = await get(app, client, {"Authorization": wrong})
            assert status == 401, (wrong, client)
            assert headers["www-authenticate"].startswith("Bearer")
            assert TOKEN not in body.decode()
    assert (await get(app, "127.0.0.1"))[0] == 200  # loopback needs no token
    # without a configured token, a bearer header opens nothing
    plain = create_app(Settings())
    assert (await get(plain, "192.0.2.7", {"Authorization": "Bearer "}))[0] == 403


async def test_refusals_are_counted_and_each_app_has_its_own_registry() -> None:
    one, two = create_app(Settings(metrics_token=TOKEN)), create_app(Settings())
    await get(one, "192.0.2.7")
    await get(one, "192.0.2.7", {"Authorization": "Bearer nope"})
    samples = parse((await get(one, "127.0.0.1"))[2].decode())
    assert value(samples, "ssehub_rejected_requests_total", reason="forbidden") == 1
    assert value(samples, "ssehub_rejected_requests_total", reason="auth") == 1
    others = parse((await get(two, "127.0.0.1"))[2].decode())
    assert not [k for k in others if k[0] == "ssehub_rejected_requests_total"]


@pytest.mark.parametrize(("error", "reason"), [
    (Unauthorized("x"), "auth"),
    (CrossOriginRefused("x"), "origin"),
    (HostNotAllowed("x"), "host"),
    (Forbidden("x"), "forbidden"),
    (HeaderTooLarge("x"), "limit"),
    (PayloadTooLarge("x"), "limit"),
    (RateLimited("x"), "limit"),
    (BrokerUnavailable("x"), "broker"),
    (CapacityExceeded("x"), "unavailable"),
    (HubClosed("x"), "unavailable"),
    (UpstreamError("x", 502), "upstream"),
    (NotFound("x"), "not_found"),
    (InvalidTopic("x"), "bad_request"),
    (BadRequest("x"), "bad_request"),
    (SSEHubError("x"), "error"),
])
def test_rejection_reasons(error: SSEHubError, reason: str) -> None:
    assert reason_of(error) == reason


def test_is_loopback() -> None:
    assert is_loopback("127.3.4.5") and is_loopback("::1") and is_loopback("::ffff:127.0.0.1")
    assert not is_loopback("128.0.0.1") and not is_loopback("localhost") and not is_loopback("::")


async def test_the_console_metrics_link_works_also_when_mounted() -> None:
    for prefix in ("", "/hub"):
        hub_app = create_app(Settings())
        app: Any = Starlette(routes=[Mount(prefix, app=hub_app)]) if prefix else hub_app
        status, _, page = await get(app, "127.0.0.1", path=f"{prefix}/console")
        assert status == 200
        href = page.decode().split('>Metrics</a>')[0].rsplit('href="', 1)[1].split('"')[0]
        target = urljoin(f"http://127.0.0.1{prefix}/console", href)
        path = target.removeprefix("http://127.0.0.1")
        assert path == f"{prefix}/metrics"
        status, headers, body = await get(app, "127.0.0.1", path=path)
        assert status == 200 and headers["content-type"].startswith("text/plain")
        assert b"ssehub_connections" in body


async def test_hub_stats_are_read_at_scrape_time() -> None:
    """The hub's own counters (``hub.stats``, kept by the core) become metric families."""
    app = create_app(Settings())
    hub = app.state.hub
    stats = getattr(hub, "stats", None)
    if stats is None:
        hub.stats = stats = {}
    stats.update({"published": 7, "gaps_slow_consumer": 2, "gaps_unknown-id": 1, "slow_consumer_cuts": 3,
                  "broker_round_trips": 10, "broker_rtt_seconds_sum": 0.25, "broker_outages": 1,
                  "broker_up": 0})
    samples = parse((await get(app, "127.0.0.1"))[2].decode())
    assert value(samples, "ssehub_events_published_total") == 7
    assert value(samples, "ssehub_gaps_total", reason="slow-consumer") == 2
    assert value(samples, "ssehub_gaps_total", reason="unknown-id") == 1
    assert value(samples, "ssehub_slow_consumer_cuts_total") == 3
    assert value(samples, "ssehub_broker_round_trip_seconds_count") == 10
    assert value(samples, "ssehub_broker_round_trip_seconds_sum") == 0.25
    assert value(samples, "ssehub_broker_outages_total") == 1
    assert ("ssehub_broker_up", ()) in samples and value(samples, "ssehub_broker_up") == 0
    stats["published"] = 9  # read again at the next scrape, nothing cached
    samples = parse((await get(app, "127.0.0.1"))[2].decode())
    assert value(samples, "ssehub_events_published_total") == 9
