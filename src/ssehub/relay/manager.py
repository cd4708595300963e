"""The Relay: starts, stops and reaps generations; limits; presence-driven grace; shutdown.

``Relay(hub, settings)`` is an async context manager (the app stores it as
``app.state.relay``). Limits: ``max_generations`` running at once (else CapacityExceeded,
503), ``max_generations_per_client`` running per client address (else RateLimited, 429: one
client cannot hold every slot) and ``chat_rate_per_minute`` starts per client address (a
token bucket; else RateLimited, 429).

Grace: a generation whose topic has no reader is cancelled after ``chat_grace`` seconds —
armed when it starts (the client has that long to subscribe after ``POST /chat``) and
whenever the last reader leaves; disarmed when a reader arrives. Readers are the hub's local
subscribers of the topic plus, when several processes share a broker, those of the other
processes (``coordination``): they report their counts, and the owner checks them again
before it cancels.

Across processes (``Coordination.shared``): a generation is claimed in the shared record when
it starts and its lease is refreshed every ``generation_lease / 3`` seconds; stop and status
requests for a generation that runs elsewhere go through the record; and a process whose
readers follow a generation whose owner stopped refreshing its lease (it died) publishes one
terminal ``error`` ("generation lost") for it.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from ..config import Settings
from ..errors import CapacityExceeded, NotFound, RateLimited
from .coordination import Coordination, LocalCoordination, Status
from .generation import Generation, Timer, new_id
from .hub_port import GENERATION_PREFIX, RelayHub
from .providers import Providers
from .ratelimit import RateLimiter
from .request import ChatRequest
from .shared import SharedGenerations
from .upstream import Upstream

__all__ = ["TTFT_BUCKETS", "CallLater", "RateLimiter", "Relay"]

log = logging.getLogger("ssehub.relay")
FINISHED_MEMORY = 10_000  # recently finished generations remembered (id → terminal event id)
STOP_WAIT = 5.0
LOST = {"message": "generation lost: the process running it stopped", "status": None}
#: upper bounds (seconds) of the time-to-first-token histogram buckets (+Inf is implied)
TTFT_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


#: schedules ``callback(gen)`` after ``delay`` seconds: the running loop's ``call_later`` by
#: default; tests pass a manual timer and drive time themselves
CallLater = Callable[[float, Callable[[Generation], None], Generation], Timer]


class Relay(SharedGenerations):
    """Generations of one app. ``async with Relay(hub, settings) as relay:``."""

    def __init__(
        self,
        hub: RelayHub,
        settings: Settings | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        coordination: Coordination | None = None,
        call_later: CallLater | None = None,
    ) -> None:
        self.hub = hub
        self._call_later = call_later  # the grace timers'; None: the running loop's
        self.coord: Coordination = coordination or LocalCoordination()
        #: generations running elsewhere that have readers here: gid → local reader count
        self._followed: dict[str, int] = {}
        #: generations that ended without a terminal event in their topic (broker outage)
        self._unended: dict[str, Generation] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._keeper: asyncio.Task[None] | None = None
        self.settings = settings or Settings()
        self.providers = Providers.from_settings(self.settings, os.environ if environ is None else environ)
        self.demo_base_url: str | None = None  # where the in-process demo provider listens
        self._secrets = self.providers.secrets()
        self._transport = transport
        self._upstream: Upstream | None = None
        self._running: dict[str, Generation] = {}
        self._per_client: dict[str, int] = {}  # running generations by client address
        self._tasks: set[asyncio.Task[None]] = set()  # also those still draining after their end
        self._finished: OrderedDict[str, str | None] = OrderedDict()
        self._limiter = RateLimiter(self.settings.chat_rate_per_minute, clock)
        self._closed = False
        self.stats = {"started": 0, "done": 0, "error": 0, "cancelled": 0, "tokens": 0,
                      "ttft_sum": 0.0, "ttft_count": 0}
        #: generations per time-to-first-token bucket (TTFT_BUCKETS, then +Inf; not cumulative)
        self.ttft_buckets = [0] * (len(TTFT_BUCKETS) + 1)
        #: failed upstream calls by kind (kept by the Upstream): read by /metrics
        self.upstream_errors: dict[str, int] = {}

    # -- lifecycle ------------------------------------------------------------------
    async def __aenter__(self) -> Relay:
        if self._upstream is None:
            self._upstream = Upstream(self.settings, transport=self._transport, errors=self.upstream_errors)
            self.hub.add_presence_listener(self._on_presence)
            self._closed = False
            if self.coord.shared:
                await self.coord.start(self._remote_stop, self._remote_readers_changed)
                loop = asyncio.get_running_loop()
                self._keeper = loop.create_task(self._keep(), name="ssehub-relay-keeper")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Cancel every running generation (each ends its topic), then close the client."""
        if self._closed:
            return
        self._closed = True
        for gen in list(self._running.values()):
            gen.cancel("shutdown")
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=STOP_WAIT)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=1.0)
        if self._keeper is not None:
            self._keeper.cancel()
            self._keeper = None
        if self._background:
            await asyncio.wait(set(self._background), timeout=1.0)
        if self.coord.shared:
            await self.coord.close()
        if self._upstream is not None:
            with contextlib.suppress(ValueError):
                self.hub.remove_presence_listener(self._on_presence)
            await self._upstream.aclose()
            self._upstream = None

    # -- generations ----------------------------------------------------------------
    async def start(
        self,
        request: ChatRequest,
        *,
        client: str = "",
        demo_base_url: str | None = None,
    ) -> Generation:
        """Start a generation (its ``start`` event may not be published yet when this returns)."""
        provider, model = self.providers.resolve(request.provider, request.model)
        if self._closed or self._upstream is None:
            raise CapacityExceeded("the relay is not running")
        if len(self._running) >= self.settings.max_generations:
            raise CapacityExceeded("too many generations running; try again later")
        if self._per_client.get(client, 0) >= self.settings.max_generations_per_client:
            raise RateLimited(f"at most {self.settings.max_generations_per_client} generations may run "
                              "at once per client (max_generations_per_client)")
        if not self._limiter.allow(client):
            raise RateLimited(f"at most {self.settings.chat_rate_per_minute} chats per minute")
        base_url = None
        if provider.demo:
            base_url = demo_base_url or self.demo_base_url
            if not base_url:
                raise CapacityExceeded("the demo provider is not reachable (no listening address known)")
        gen = Generation(new_id(), provider, model, request, client,
                         publish_patience=self.settings.generation_lease)
        if self.coord.shared:
            await self.coord.claim(gen.id)  # BrokerUnavailable (503) when the record cannot be written
        self._running[gen.id] = gen
        self._per_client[client] = self._per_client.get(client, 0) + 1
        self.stats["started"] += 1
        gen.task = asyncio.get_running_loop().create_task(
            gen.run(self.hub, self._upstream, base_url=base_url, secrets_=self._secrets,
                    on_finished=self._finished_cb),
            name=f"ssehub-generation-{gen.short}",
        )
        self._tasks.add(gen.task)
        gen.task.add_done_callback(self._tasks.discard)
        if self.hub.subscriber_count(gen.topic) == 0:
            self._arm(gen)
        log.info("generation %s… started: provider=%s model=%s", gen.short, provider.name, model)
        return gen

    async def stop(self, gid: str) -> str:
        """Cancel a running generation (here or, through the shared record, on the process
        that runs it); returns once its topic ended. NotFound otherwise."""
        gen = self._running.get(gid)
        if gen is None and self.coord.shared and await self.coord.request_stop(gid):
            deadline = time.monotonic() + STOP_WAIT
            while time.monotonic() < deadline:
                status = await self.coord.status(gid)
                if status is None or status[0] != "running":
                    break
                await asyncio.sleep(0.05)
            return gid
        if gen is None or not gen.cancel("stop"):
            raise NotFound("no running generation with that id")
        if gen.task is not None:
            await asyncio.wait([gen.task], timeout=STOP_WAIT)
        return gid

    def get(self, gid: str) -> Generation | None:
        """The running generation with that id, else None."""
        return self._running.get(gid)

    def status(self, gid: str) -> Status | None:
        """("running", None), ("finished", terminal event id) or None when unknown here."""
        if gid in self._running:
            return ("running", None)
        if gid in self._finished:
            return ("finished", self._finished[gid])
        return None

    async def find(self, gid: str) -> Status | None:
        """``status`` here, else what the shared record says (another process runs it, or
        ran it: ("finished", id), ("lost", None))."""
        status = self.status(gid)
        if status is None and self.coord.shared:
            status = await self.coord.status(gid)
        return status

    def models(self) -> dict[str, Any]:
        return self.providers.public()

    @property
    def running(self) -> int:
        return len(self._running)

    def tokens_streamed(self) -> int:
        """Reasoning and content deltas relayed so far, running generations included."""
        return int(self.stats["tokens"]) + sum(gen.tokens for gen in self._running.values())

    def _finished_cb(self, gen: Generation) -> None:
        if self._running.pop(gen.id, None) is not None:
            left = self._per_client.get(gen.client, 1) - 1
            if left > 0:
                self._per_client[gen.client] = left
            else:
                self._per_client.pop(gen.client, None)
        self._finished[gen.id] = gen.terminal_id
        while len(self._finished) > FINISHED_MEMORY:
            self._finished.popitem(last=False)
        if gen.cancel_reason == "lost":
            pass  # another process ended it (its lease expired while this one stalled)
        elif gen.terminal_id is None and not self._closed:
            # no terminal event could be published (the broker stayed unreachable): keep
            # trying, and keep its lease meanwhile, so its readers never wait forever
            self._unended[gen.id] = gen
            self._spawn(self._late_terminal(gen))
        elif self.coord.shared:
            self._spawn(self._record_end(gen.id, gen.terminal_id))
        s = self.stats
        s[gen.outcome or "error"] += 1
        s["tokens"] += gen.tokens
        if gen.first_token is not None:
            s["ttft_sum"] += gen.first_token
            s["ttft_count"] += 1
            self.ttft_buckets[bisect.bisect_left(TTFT_BUCKETS, gen.first_token)] += 1
        took = time.monotonic() - gen.started
        if gen.outcome == "error":
            log.warning("generation %s… failed: upstream status %s: %s (%d tokens in %.2f s)", gen.short,
                        gen.error_status if gen.error_status is not None else "none",
                        gen.error_message or "no terminal event", gen.tokens, took)
        else:
            log.info("generation %s… %s%s: %d tokens in %.2f s", gen.short, gen.outcome,
                     f" ({gen.cancel_reason})" if gen.outcome == "cancelled" else "", gen.tokens, took)

    # -- presence and grace ---------------------------------------------------------
    def _on_presence(self, topic: str, count: int) -> None:
        if not topic.startswith(GENERATION_PREFIX):
            return
        gid = topic[len(GENERATION_PREFIX):]
        gen = self._running.get(gid)
        if gen is None:
            if self.coord.shared and gid not in self._finished:
                self._follow(gid, count)
            return
        if not gen.running:
            return
        if count > 0:
            if gen.grace is not None:
                gen.grace.cancel()
                gen.grace = None
        elif gen.grace is None:
            self._arm(gen)

    def _arm(self, gen: Generation) -> None:
        call_later = self._call_later or asyncio.get_running_loop().call_later
        gen.grace = call_later(self.settings.chat_grace, self._expire, gen)

    def _expire(self, gen: Generation) -> None:
        gen.grace = None
        if not gen.running or self.hub.subscriber_count(gen.topic) > 0:
            return
        if not self.coord.shared:
            gen.cancel("grace")
            return

        async def check_elsewhere() -> None:
            try:
                elsewhere = await self.coord.remote_readers(gen.id)
            except Exception as exc:  # the record is unreachable: nobody can prove a reader
                log.warning("generation %s…: cannot count remote readers (%s)", gen.short, exc)
                elsewhere = 0
            # a reader elsewhere keeps it; its process reports when the last one leaves
            if gen.running and gen.grace is None and not elsewhere and \
                    self.hub.subscriber_count(gen.topic) == 0:
                gen.cancel("grace")

        self._spawn(check_elsewhere())
