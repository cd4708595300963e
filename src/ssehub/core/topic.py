"""A topic as the hub holds it: its log, its waiting subscribers, its subscriber count."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .log import TopicLog

__all__ = ["Topic", "Waker"]


class Waker:
    """A wake-up callback, lighter than a future with a done-callback, and reusable: armed
    (``Subscription.when_ready``), the next wake-up of any of its topics runs ``callback(None)``
    once, soon after (never inside the publish). The wakers a publish wakes on one topic run in
    one scheduled callback (``Topic.wake``), not one each."""

    __slots__ = ("_callback", "_loop", "armed")

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[object], None]) -> None:
        self._loop = loop
        self._callback = callback
        self.armed = False


def _run_wakers(wakers: list[Waker]) -> None:
    for waker in wakers:
        try:
            waker._callback(None)
        except Exception as exc:  # one failing subscriber never stops the others' wake-ups
            waker._loop.call_exception_handler({"message": "error in a wake-up callback", "exception": exc})


class Topic:
    """A topic's log, the futures of the subscribers waiting on it, its subscriber count.

    Each waiting subscriber has a future of its own (never one shared future: cancelling a
    task that awaits a shared future cancels it for every awaiter, so a crowd leaving one
    topic would cost a quadratic number of wake-ups). A publish wakes them all in one pass.

    With a shared broker the log is a cache of the tail of the topic's stream: ``warming``
    is the future of the load of its history (None once loaded, or with the memory broker),
    and ``live_from`` the feed position when the topic was cached: the feed appended every
    event after it, the history load supplies those up to it.
    """

    __slots__ = ("live_from", "log", "name", "subscribers", "waiters", "warming")

    def __init__(self, name: str, log: TopicLog, live_from: int = 0) -> None:
        self.name = name
        self.log = log
        self.subscribers = 0
        self.waiters: list[asyncio.Future[None] | Waker] = []
        self.live_from = live_from
        self.warming: asyncio.Future[None] | None = None

    def wake(self) -> None:
        waiters = self.waiters
        if waiters:
            self.waiters = []
            wakers: list[Waker] = []
            for waiter in waiters:
                if isinstance(waiter, Waker):
                    if waiter.armed:  # (listed on several topics: the first wake-up takes it)
                        waiter.armed = False
                        wakers.append(waiter)
                elif not waiter.done():  # cancelled by its own subscriber, or woken by another topic
                    waiter.set_result(None)
            if wakers:
                wakers[0]._loop.call_soon(_run_wakers, wakers)
