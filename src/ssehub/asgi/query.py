"""Query strings: what Starlette's ``QueryParams`` gives, at a fraction of its cost.

``Query(raw)`` reads ``parse_qsl(raw.decode("latin-1"), keep_blank_values=True)`` exactly as
``QueryParams`` does (``get`` returns the last value of a repeated name); a query string with
nothing to unquote (no ``%``, no ``+``: ``topic=orders``) is split without ``parse_qsl``.
"""

from __future__ import annotations

from typing import overload
from urllib.parse import parse_qsl

__all__ = ["Query"]


class Query:
    __slots__ = ("items",)

    def __init__(self, raw: bytes | str) -> None:
        text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
        if "%" in text or "+" in text:
            self.items = parse_qsl(text, keep_blank_values=True)
        elif "&" not in text:  # one parameter (a publish's ``topic=T``)
            name, _, value = text.partition("=")
            self.items = [(name, value)] if text else []
        else:
            self.items = [(name, value) for name, _, value in
                          (part.partition("=") for part in text.split("&") if part)]

    def __contains__(self, name: object) -> bool:  # (a loop: any() with a generator costs more)
        for key, _ in self.items:  # noqa: SIM110
            if key == name:
                return True
        return False

    @overload
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: str) -> str: ...
    def get(self, name: str, default: str | None = None) -> str | None:
        """The last value given for ``name`` (as ``QueryParams.get``)."""
        for key, value in reversed(self.items):
            if key == name:
                return value
        return default

    def getlist(self, name: str) -> list[str]:
        return [value for key, value in self.items if key == name]
