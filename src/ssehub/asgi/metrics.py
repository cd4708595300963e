"""GET /metrics: Prometheus text format, read at scrape time from plain counters.

Nothing on the hot paths calls prometheus-client: the hub, the relay and the web layer keep
plain integers (``hub.stats``, ``relay.stats``, :class:`~ssehub.asgi.state.EdgeStats`) and
:class:`HubCollector` turns them into metric families when Prometheus asks. Each app has a
registry of its own (several apps may share a process). No metric has a per-topic label.

Access: loopback clients (127.0.0.0/8, ::1) may scrape; anyone presenting
``Authorization: Bearer <metrics_token>`` may too, when that setting is set. A wrong token
is a 401, a non-loopback client without one a 403. A request that came through a proxy
(``X-Forwarded-For``, ``Forwarded``, ``X-Real-IP``) is not taken for a loopback client unless
``trusted_proxies`` is set (then uvicorn has put the real client address in the scope): a
reverse proxy on the same machine would otherwise make every outsider look local.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..errors import Forbidden, SSEHubError, Unauthorized
from ..relay.manager import TTFT_BUCKETS
from .state import HubState, state_of

__all__ = ["HubCollector", "is_loopback", "metrics_routes", "registry_for"]

_PROXY_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


class HubCollector(Collector):
    """Reads the counters of one app's hub, relay and web layer when scraped."""

    def __init__(self, state: HubState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        yield from self._edge()
        yield from self._hub()
        yield from self._relay()

    def _edge(self) -> Iterator[Metric]:
        state, edge = self.state, self.state.stats
        yield GaugeMetricFamily("ssehub_connections", "Open SSE streams (/subscribe and /chat/stream).",
                                value=state.connections)
        yield GaugeMetricFamily("ssehub_subscriptions",
                                "Topics of the open /subscribe streams (a stream of 3 topics counts 3).",
                                value=edge.subscriptions)
        yield CounterMetricFamily("ssehub_stream_writes", "Body writes to /subscribe streams (each carries "
                                  "one or more events or gap notices, or a heartbeat).", value=edge.writes)
        yield CounterMetricFamily("ssehub_stream_bytes", "Body bytes written to /subscribe streams.",
                                  value=edge.bytes)
        errors = CounterMetricFamily("ssehub_publish_errors", "POST /publish requests answered with an "
                                     "error, by HTTP status (nothing was published).", labels=["status"])
        for status, count in sorted(edge.publish_errors.items()):
            errors.add_metric([str(status)], count)
        yield errors
        rejected = CounterMetricFamily(
            "ssehub_rejected_requests", "Requests answered with an error, by reason (auth, origin, host, "
            "forbidden, limit, bad_request, not_found, broker, unavailable, upstream, error).",
            labels=["reason"])
        for reason, count in sorted(edge.rejected.items()):
            rejected.add_metric([reason], count)
        yield rejected

    def _hub(self) -> Iterator[Metric]:
        hub = self.state.hub
        stats: dict[str, Any] = getattr(hub, "stats", None) or {}
        published = stats.get("published", self.state.stats.published)
        yield CounterMetricFamily("ssehub_events_published", "Events published (one per event, whatever "
                                  "the number of its topics).", value=published)
        gaps = CounterMetricFamily("ssehub_gaps", "Gap notices sent to subscribers, by reason.",
                                   labels=["reason"])
        for key in sorted(stats):
            if key.startswith("gaps_"):
                gaps.add_metric([key[5:].replace("_", "-")], stats[key])
        yield gaps
        yield CounterMetricFamily("ssehub_slow_consumer_cuts", "Streams ended because their client fell "
                                  "behind the retained history (slow_consumer = disconnect).",
                                  value=stats.get("slow_consumer_cuts", 0))
        yield GaugeMetricFamily("ssehub_retained_bytes", "Encoded event bytes retained across all topics.",
                                value=getattr(hub, "retained_bytes", 0))
        yield SummaryMetricFamily("ssehub_broker_round_trip_seconds", "Broker calls and their total time.",
                                  count_value=stats.get("broker_round_trips", 0),
                                  sum_value=stats.get("broker_rtt_seconds_sum", 0.0))
        yield CounterMetricFamily("ssehub_broker_outages", "Times the broker became unreachable.",
                                  value=stats.get("broker_outages", 0))
        yield GaugeMetricFamily("ssehub_broker_up", "1 while the broker answers, else 0.",
                                value=stats.get("broker_up", 0 if hub.closed else 1))

    def _relay(self) -> Iterator[Metric]:
        relay = self.state.relay
        if relay is None:
            return
        stats = relay.stats
        yield GaugeMetricFamily("ssehub_generations_running", "LLM generations running.", value=relay.running)
        gens = CounterMetricFamily("ssehub_generations", "LLM generations by outcome (started, then one of "
                                   "done, error, cancelled).", labels=["outcome"])
        for outcome in ("started", "done", "error", "cancelled"):
            gens.add_metric([outcome], stats[outcome])
        yield gens
        yield CounterMetricFamily("ssehub_generation_tokens", "Reasoning and content deltas relayed from "
                                  "upstreams (about one token each).", value=relay.tokens_streamed())
        buckets, total = [], 0
        for bound, count in zip((*TTFT_BUCKETS, float("inf")), relay.ttft_buckets, strict=True):
            total += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), total))
        yield HistogramMetricFamily("ssehub_upstream_ttft_seconds", "Time from a generation's start to its "
                                    "first reasoning or content token (observed when it ends).",
                                    buckets=buckets, sum_value=stats["ttft_sum"])
        errors = CounterMetricFamily("ssehub_upstream_errors", "Failed upstream calls by kind (http_4xx, "
                                     "http_5xx, connect, connect_timeout, read_timeout, dropped, "
                                     "stream_error, oversized, pool, other).", labels=["kind"])
        for kind, count in sorted(relay.upstream_errors.items()):
            errors.add_metric([kind], count)
        yield errors


def registry_for(state: HubState) -> CollectorRegistry:
    """The app's own registry: its collector plus the process metrics (memory, CPU, fds)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HubCollector(state))
    ProcessCollector(registry=registry)
    return registry


def is_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def check_access(state: HubState, headers: Headers, client_host: str) -> None:
    """Raise Unauthorized (wrong token) or Forbidden (not loopback, no token); else return."""
    token = state.settings.metrics_token
    authorization = headers.get("authorization")
    if authorization is not None and token:
        scheme, _, presented = authorization.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode()):
            return
        raise Unauthorized("wrong metrics token")
    proxied = not state.settings.trusted_proxies and any(h in headers for h in _PROXY_HEADERS)
    if is_loopback(client_host) and not proxied:
        return
    raise Forbidden("/metrics is served to loopback clients only"
                    + ("; or present the metrics token" if token else " (set metrics_token to allow others)"))


async def metrics(request: Request) -> Response:
    state = state_of(request.scope)
    client = request.client
    try:
        check_access(state, request.headers, client.host if client else "")
    except SSEHubError as exc:
        state.stats.count_error(exc)
        headers = {"WWW-Authenticate": 'Bearer realm="metrics"'} if exc.status == 401 else None
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=headers)
    registry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def metrics_routes() -> list[BaseRoute]:
    return [Route("/metrics", metrics, methods=["GET"])]
