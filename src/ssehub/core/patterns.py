"""Topic patterns, as written in token claims and ``public_topics``.

``*`` matches any run of characters, ``/`` included (``news/*`` matches ``news/a/b``; ``*``
matches every topic). Every other character is literal: no ``?``, no ``[...]``, no escapes,
so a topic name can never be misread as a pattern. Matching is linear in the topic length
(no backtracking regex): patterns without ``*`` are a set lookup, ``prefix*`` a
``startswith``, and the general form checks its first and last pieces at the ends and finds
the middle pieces left to right, which is exact for ``*``-only globs.

``compile_patterns`` caches the compiled matcher per tuple of patterns: a token's claims are
compiled once, however many requests present it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

__all__ = ["TopicPatterns", "compile_patterns"]

_STARS = re.compile(r"\*\*+")  # a run of stars means the same as one


def _glob(parts: tuple[str, ...], topic: str) -> bool:
    """``topic`` matches the pattern ``"*".join(parts)`` (at least two parts)."""
    first, last = parts[0], parts[-1]
    end = len(topic) - len(last)
    if end < len(first) or not topic.startswith(first) or not topic.endswith(last):
        return False
    pos = len(first)
    for piece in parts[1:-1]:
        if piece:
            at = topic.find(piece, pos, end)
            if at < 0:
                return False
            pos = at + len(piece)
    return True


class TopicPatterns:
    """A set of patterns; ``matches(topic)`` is true when any of them matches."""

    __slots__ = ("_any", "_exact", "_globs", "_prefixes", "patterns")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(dict.fromkeys(patterns))
        exact: set[str] = set()
        prefixes: list[str] = []
        globs: list[tuple[str, ...]] = []
        for pattern in self.patterns:
            parts = tuple(_STARS.sub("*", pattern).split("*"))
            if len(parts) == 1:
                exact.add(pattern)
            elif len(parts) == 2 and not parts[1]:
                prefixes.append(parts[0])
            else:
                globs.append(parts)
        self._any = "" in prefixes  # "*" matches everything
        self._exact = frozenset(exact)
        self._prefixes = tuple(prefixes)
        self._globs = tuple(globs)

    def matches(self, topic: str) -> bool:
        if self._any or topic in self._exact:
            return True
        if self._prefixes and topic.startswith(self._prefixes):
            return True
        return any(_glob(parts, topic) for parts in self._globs)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def __repr__(self) -> str:
        return f"TopicPatterns({list(self.patterns)!r})"


@lru_cache(maxsize=1024)
def compile_patterns(patterns: tuple[str, ...]) -> TopicPatterns:
    return TopicPatterns(patterns)
