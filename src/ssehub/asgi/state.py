"""Per-app state: the hub, the relay, the settings, connection counts; lazy start."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Scope

from ..config import Settings
from ..core import Hub
from .signals import SignalChain

__all__ = ["HubState", "state_of"]


class HubState:
    """What the routes share. Starts the hub (and relay) on first use when no lifespan ran,
    as happens when the app is mounted inside another Starlette/FastAPI app."""

    def __init__(self, settings: Settings, hub: Hub, relay: Any = None) -> None:
        self.settings = settings
        self.hub = hub
        self.relay = relay
        self.connections = 0
        self.per_client: dict[str, int] = {}
        self.started = False
        self._lock = asyncio.Lock()
        self._signals = SignalChain()
        self._closing: asyncio.Task[None] | None = None

    def opened(self, addr: str) -> None:
        self.connections += 1
        self.per_client[addr] = self.per_client.get(addr, 0) + 1

    def closed(self, addr: str) -> None:
        self.connections -= 1
        left = self.per_client[addr] - 1
        if left:
            self.per_client[addr] = left
        else:
            del self.per_client[addr]

    async def ensure_started(self) -> None:
        if self.started:
            return
        async with self._lock:
            if not self.started:
                await self.hub.start()
                if self.relay is not None:
                    await self.relay.__aenter__()
                self.started = True
                # under a server we do not control (plain `uvicorn app:app` with the hub
                # mounted in FastAPI), SIGTERM/SIGINT close the hub first: see signals.py
                self._signals.install(self._close_soon)

    def _close_soon(self) -> None:
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close())

    async def close(self) -> None:
        """Stop generations first (their topics get a terminal event), then the hub. Every
        caller (a signal, the server's shutdown, the lifespan) waits for the same closing."""
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        self._signals.uninstall()
        if self.relay is not None and self.started:
            await self.relay.__aexit__(None, None, None)
        await self.hub.close()


def state_of(scope: Scope) -> HubState:
    state: HubState = scope["app"].state.ssehub
    return state
