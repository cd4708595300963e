"""Close the hub on SIGTERM/SIGINT under any server, without patching the server.

uvicorn (and servers like it) wait for open connections to finish before they run the
lifespan shutdown, and an SSE stream never finishes by itself: with plain
``uvicorn app:app`` and a mounted hub, SIGTERM hangs at "Waiting for connections to close".
``ssehub serve`` avoids that with its own ``Server.shutdown``; an app mounted elsewhere
cannot. What it can do, with public APIs only: uvicorn installs its handlers with
``signal.signal`` (so that it can restore the previous ones) before it starts serving, and
the hub starts inside that window. So when the hub starts on the main thread and finds a
Python-level handler for a signal, it puts its own in front: close the hub (every stream
gets its jittered ``retry:`` hint and ends), then call the previous handler, which lets the
server proceed exactly as it would have. When the hub closes, the previous handlers are put
back (if nobody replaced ours meanwhile); uvicorn restores its own originals on exit anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["SignalChain"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)

_Handler = Callable[[int, FrameType | None], Any]


class SignalChain:
    """``install(on_signal)``: run ``on_signal()`` in the event loop, then the previous
    handler, for each signal that already had a Python handler. ``uninstall()`` undoes it."""

    def __init__(self) -> None:
        self._previous: dict[int, _Handler] = {}
        self._mine: _Handler | None = None

    def install(self, on_signal: Callable[[], Any]) -> None:
        if self._mine is not None or threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set on the main thread
        loop = asyncio.get_running_loop()

        def handler(sig: int, frame: FrameType | None) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to close
                loop.call_soon_threadsafe(on_signal)
            previous = self._previous.get(sig)
            if previous is not None:
                previous(sig, frame)

        for sig in SIGNALS:
            current = signal.getsignal(sig)
            # SIG_DFL/SIG_IGN/None: nobody waits on connections there (the default
            # action ends the process), so there is nothing to chain to
            if callable(current):
                self._previous[sig] = current
                signal.signal(sig, handler)
        self._mine = handler

    def uninstall(self) -> None:
        mine, self._mine = self._mine, None
        if mine is None or threading.current_thread() is not threading.main_thread():
            return
        for sig, previous in self._previous.items():
            if signal.getsignal(sig) is mine:
                signal.signal(sig, previous)
        self._previous.clear()
