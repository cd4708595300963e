"""One generation: a task that calls the upstream and publishes into hub topic ``chat/<G>``
(``hub_port.generation_topic``).

Order in the topic: ``start``; ``reasoning``/``content``…; ``usage`` if any; exactly one
terminal ``done`` or ``error``. Cancelling the task (stop, grace expiry, shutdown) leaves the
upstream ``async with`` — closing the HTTP connection — and then publishes
``done {"finish_reason": "cancelled"}``, unless a terminal event is already on its way.
The terminal publish is shielded, so a cancel arriving during it cannot produce a second one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from typing import Any, Protocol

from ..errors import BrokerUnavailable, SSEHubError
from ..wire import Event, encode
from .hub_port import RelayHub, generation_topic
from .mapping import Out, merge_texts
from .providers import Provider
from .request import ChatRequest
from .upstream import Upstream

__all__ = ["TERMINAL", "Generation", "Timer", "new_id", "publish_json"]

log = logging.getLogger("ssehub.relay")
TERMINAL = ("done", "error")
TEXT = ("reasoning", "content")


class Timer(Protocol):
    """A pending call (``asyncio.TimerHandle``, or a test's manual timer)."""

    def cancel(self) -> None: ...


def new_id() -> str:
    """32 URL-safe characters: 192 random bits. Knowing it is what lets a client read."""
    return secrets.token_urlsafe(24)


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def to_json(data: dict[str, Any]) -> str:
    """Compact JSON, not ASCII-escaped; the per-token ``{"text": …}`` takes a fast path."""
    if len(data) == 1 and type(data.get("text")) is str:
        return '{"text":' + encode_basestring(data["text"]) + "}"
    return _ENCODER.encode(data)


async def publish_json(hub: RelayHub, topic: str, event: str, data: dict[str, Any]) -> str:
    ident: str = await hub.publish(topic, to_json(data), event=event)
    return ident


@dataclass(eq=False)
class Generation:
    id: str
    provider: Provider
    model: str
    request: ChatRequest
    client: str = ""
    started: float = field(default_factory=time.monotonic)
    state: str = "running"  # running → ending (terminal being published) → finished
    outcome: str | None = None  # "done" | "error" | "cancelled"
    finish_reason: str | None = None
    cancel_reason: str | None = None  # "stop" | "grace" | "shutdown"
    terminal_id: str | None = None
    first_token: float | None = None  # seconds from start to the first reasoning/content
    tokens: int = 0  # reasoning + content deltas received from the upstream
    error_status: int | None = None  # the upstream HTTP status of an ``error`` end, if any
    error_message: str | None = None  # its (scrubbed) message, for the log
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    grace: Timer | None = field(default=None, repr=False)
    entered: bool = field(default=False, repr=False)  # the task body has begun
    #: seconds a publish keeps retrying while the broker is unreachable (a Redis blip must not
    #: end a generation); 0 = no retry
    publish_patience: float = field(default=0.0, repr=False)
    _last_sent: tuple[str, str] | None = field(default=None, repr=False)

    @property
    def topic(self) -> str:
        return generation_topic(self.id)

    @property
    def short(self) -> str:
        """For logs: the id is a read capability, so only a prefix is ever written down."""
        return self.id[:6]

    @property
    def running(self) -> bool:
        return self.state == "running"

    def cancel(self, reason: str) -> bool:
        """Ask the task to stop; False when a terminal event is already under way."""
        if not self.running or self.task is None:
            return False
        if self.cancel_reason is None:
            self.cancel_reason = reason
        if self.entered:
            self.task.cancel()
        # else: a task cancelled before its first step would never run its body (and never
        # publish an end); run() sees cancel_reason right after publishing ``start`` instead.
        return True

    async def _publish(self, hub: RelayHub, event: str, data: dict[str, Any]) -> str:
        """Publish into the generation's topic, riding out a short broker outage.

        A publish that timed out may still have been stored (Redis ran it late): before
        trying again, once the broker answers, the topic's newest event is compared with this
        one, so a retry never publishes a token twice. (Only an event identical to the one
        before it cannot be told apart: then it is published again, a duplicate rather than
        a loss.)
        """
        text = to_json(data)
        deadline = time.monotonic() + self.publish_patience
        delay = 0.05
        while True:
            try:
                ident = await hub.publish(self.topic, text, event=event)
            except BrokerUnavailable:
                if time.monotonic() + delay > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)
                landed = await self._landed(hub, event, text)
                if landed is None:
                    continue
                ident = landed
            self._last_sent = (event, text)
            return ident

    async def _landed(self, hub: RelayHub, event: str, text: str) -> str | None:
        """The id of this event if an attempt that timed out was stored after all."""
        if (event, text) == self._last_sent or not await hub.healthy():
            return None
        await asyncio.sleep(0.2)  # the feed delivers what Redis ran late
        log_ = hub.topic(self.topic).log
        frame = log_.frames[-1] if len(log_) else b""
        if not frame.startswith(b"id: ") or not frame.endswith(encode(Event(text, event))):
            return None
        return frame[4:frame.index(b"\n")].decode()

    async def run(
        self,
        hub: RelayHub,
        upstream: Upstream,
        *,
        base_url: str | None,
        secrets_: list[str],
        on_finished: Callable[[Generation], None],
    ) -> None:
        """The task body. Never raises; ends with exactly one terminal event published."""
        self.entered = True
        try:
            await self._publish(hub, "start", {"id": self.id, "model": self.model,
                                               "provider": self.provider.name})
            if self.cancel_reason is not None:
                raise asyncio.CancelledError  # stopped before it began: end like any cancel
            stream = upstream.stream(self.provider, self.model, self.request.messages,
                                     self.request.params, base_url=base_url, secrets=secrets_)
            async with contextlib.aclosing(stream) as batches:
                async for batch in batches:  # after the terminal event: let it drain (pooling)
                    if self.running:
                        await self._relay(hub, batch, on_finished)
            if self.running:
                await self._finish(hub, Out("error", {"message": "upstream stream ended unexpectedly",
                                                      "status": None}), on_finished)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            if self.running and self.cancel_reason == "lost":
                # another process declared it lost (its lease expired while this one was
                # stalled) and published its end: stop without a second terminal event
                self._mark(None, "cancelled", on_finished)
            elif self.running:
                self.cancel_reason = self.cancel_reason or "shutdown"
                with contextlib.suppress(asyncio.CancelledError):
                    await self._finish(hub, Out("done", {"finish_reason": "cancelled"}), on_finished)
        except SSEHubError as exc:  # the hub refused a publish (closing, broker down)
            log.warning("generation %s… cannot publish: %s", self.short, exc.message)
            self._mark(None, "error", on_finished)
        except Exception:
            log.exception("generation %s… failed", self.short)
            if self.running:
                with contextlib.suppress(Exception):
                    await self._finish(hub, Out("error", {"message": "internal error in the relay",
                                                          "status": None}), on_finished)
        finally:
            if self.state not in ("finished", "ending"):
                self._mark(None, "error", on_finished)

    async def _relay(self, hub: RelayHub, batch: list[Out],
                     on_finished: Callable[[Generation], None]) -> None:
        texts = sum(1 for out in batch if out.event in TEXT)
        if texts:
            self.tokens += texts
            if self.first_token is None:
                self.first_token = time.monotonic() - self.started
        for out in merge_texts(batch):
            if out.event in TERMINAL:
                await self._finish(hub, out, on_finished)
                return
            await self._publish(hub, out.event, out.data)

    async def _finish(self, hub: RelayHub, out: Out, on_finished: Callable[[Generation], None]) -> None:
        self.state = "ending"
        if out.event == "done":
            self.finish_reason = out.data.get("finish_reason")
        elif out.event == "error":
            self.error_status, self.error_message = out.data.get("status"), out.data.get("message")
        outcome = "cancelled" if self.finish_reason == "cancelled" and self.cancel_reason else out.event

        async def publish_terminal() -> None:
            ident: str | None = None
            try:
                ident = await self._publish(hub, out.event, out.data)
            except SSEHubError as exc:
                log.warning("generation %s… cannot publish its end: %s", self.short, exc.message)
            finally:
                self._mark(ident, outcome, on_finished)

        await asyncio.shield(publish_terminal())

    def _mark(self, terminal_id: str | None, outcome: str, on_finished: Callable[[Generation], None]) -> None:
        if self.state == "finished":
            return
        self.state, self.terminal_id, self.outcome = "finished", terminal_id, outcome
        if self.grace is not None:
            self.grace.cancel()
            self.grace = None
        on_finished(self)
