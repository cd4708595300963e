"""The cross-process half of the Relay (a mixin): reports readers to owners, answers stop
requests from other processes, keeps leases, ends generations whose owner died, and makes
sure every generation gets its one terminal event even through a broker outage.

With one process (``LocalCoordination``) none of this runs but ``_spawn``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ..config import Settings
from ..errors import BrokerUnavailable, SSEHubError
from .coordination import Coordination
from .generation import Generation, publish_json
from .hub_port import RelayHub, generation_topic

__all__ = ["LOST", "SharedGenerations"]

log = logging.getLogger("ssehub.relay")
LOST = {"message": "generation lost: the process running it stopped", "status": None}


class SharedGenerations:
    """Mixed into Relay; the attributes are the Relay's."""

    hub: RelayHub
    settings: Settings
    coord: Coordination
    _running: dict[str, Generation]
    _finished: OrderedDict[str, str | None]
    _followed: dict[str, int]
    _unended: dict[str, Generation]
    _background: set[asyncio.Task[Any]]
    _arm: Callable[[Generation], None]  # Relay's: (re)start a generation's grace timer

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("relay coordination failed: %s", task.exception())

    def _follow(self, gid: str, count: int) -> None:
        """Readers here of a generation that runs elsewhere: report them to its owner."""
        if count > 0:
            self._followed[gid] = count
        else:
            self._followed.pop(gid, None)
        self._spawn(self.coord.set_readers(gid, count))

    def _remote_stop(self, gid: str) -> None:
        gen = self._running.get(gid)
        if gen is not None:
            gen.cancel("stop")

    def _remote_readers_changed(self, gid: str) -> None:
        gen = self._running.get(gid)
        if gen is None or not gen.running or self.hub.subscriber_count(gen.topic) > 0:
            return
        # the count elsewhere changed: the grace period starts again from now; at its end
        # the owner cancels only if nobody anywhere reads
        if gen.grace is not None:
            gen.grace.cancel()
        self._arm(gen)

    def _ended_in_topic(self, topic: str) -> str | None:
        """The id of the terminal event already at the end of ``topic``, if there is one."""
        log_ = self.hub.topic(topic).log
        last = log_.frames[-1] if len(log_) else b""
        if last.startswith(b"id: ") and (b"\nevent: done\n" in last or b"\nevent: error\n" in last):
            return last[4:last.index(b"\n")].decode()
        return None

    async def _publish_end(self, topic: str, message: dict[str, Any], *, patience: float) -> str | None:
        """Publish a terminal ``error`` into ``topic`` unless its end is already there (an
        attempt that timed out but was stored); retries through a broker outage for up to
        ``patience`` seconds. None when the hub is closing or the broker never came back."""
        delay, waited = 0.2, 0.0
        while True:
            if await self.hub.healthy():
                await asyncio.sleep(0.2)  # the feed delivers what Redis ran late
                ended = self._ended_in_topic(topic)
                if ended is not None:
                    return ended
                try:
                    return await publish_json(self.hub, topic, "error", message)
                except BrokerUnavailable:
                    pass
                except SSEHubError:  # the hub is closing
                    return None
            if waited >= patience:
                return None
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, 10.0)

    async def _end_lost(self, gid: str) -> None:
        """Publish the one terminal event of a generation whose process died, unless its end
        is already in the topic (it died between publishing it and recording it)."""
        log.warning("generation %s… lost: its process stopped refreshing its lease", gid[:6])
        topic = generation_topic(gid)
        terminal = await self._publish_end(topic, LOST, patience=120.0)
        await self._record_end(gid, terminal)

    async def _record_end(self, gid: str, terminal: str | None) -> None:
        """Write the end into the shared record, retrying through a broker outage."""
        for delay in (0.0, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0):
            await asyncio.sleep(delay)
            try:
                await self.coord.finish(gid, terminal, self.settings.generation_ttl,
                                        topic=generation_topic(gid))
                return
            except BrokerUnavailable:
                continue

    async def _late_terminal(self, gen: Generation) -> None:
        """A terminal ``error`` for a generation that ended while the broker was unreachable."""
        message = {"message": "generation failed: the broker was unreachable", "status": None}
        try:
            terminal = await self._publish_end(gen.topic, message, patience=120.0)
            if terminal is not None:
                gen.terminal_id = self._finished[gen.id] = terminal
                if self.coord.shared:
                    await self._record_end(gen.id, terminal)
        finally:
            # given up (or done): its lease now expires; if it never got its end, a process
            # with readers declares it lost
            self._unended.pop(gen.id, None)

    async def _keep(self) -> None:
        """Refresh the leases of generations running here; find the lost ones followed here."""
        period = self.settings.generation_lease / 3
        while True:
            await asyncio.sleep(period)
            try:
                running = [g for g in self._running.values() if g.running]
                for gid in await self.coord.refresh([g.id for g in running] + list(self._unended)):
                    # declared lost elsewhere (this process stalled past its lease): stop
                    # without a second terminal event
                    gen = self._running.get(gid)
                    if gen is not None:
                        gen.cancel("lost")
                for gen in running:  # readers elsewhere that vanished without a word (died)
                    if gen.grace is None and self.hub.subscriber_count(gen.topic) == 0 \
                            and not await self.coord.remote_readers(gen.id) and gen.grace is None:
                        self._arm(gen)
                for gid in list(self._followed):
                    if gid not in self._running and await self.coord.claim_lost(gid):
                        self._followed.pop(gid, None)
                        await self._end_lost(gid)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("relay coordination: %s", exc)
