"""What the relay needs of the hub (a Protocol: any hub-like object with these methods will
do, ``ssehub.core.Hub`` first), and the topics the relay owns.

Generation ``G`` publishes into topic ``chat/G``. The prefix is the relay's: the web layer
keeps it out of ``GET /topics`` and out of ``POST /publish`` with this constant, and the
shared generation record expires those topics' history with it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..core import Topic

__all__ = ["GENERATION_PREFIX", "RelayHub", "generation_topic"]

#: generation topics: ``chat/<G>``
GENERATION_PREFIX = "chat/"


def generation_topic(gid: str) -> str:
    """The topic of generation ``gid``."""
    return GENERATION_PREFIX + gid


class RelayHub(Protocol):
    """The hub as the relay uses it: publish into generation topics, follow their readers."""

    async def publish(self, topics: str | Sequence[str], data: object, *,
                      event: str | None = None, retry: int | None = None) -> str: ...

    def subscriber_count(self, name: str) -> int: ...

    def add_presence_listener(self, listener: Callable[[str, int], None]) -> None: ...

    def remove_presence_listener(self, listener: Callable[[str, int], None]) -> None: ...

    def topic(self, name: str, protect: Sequence[str] = ()) -> Topic: ...

    async def healthy(self) -> bool: ...
