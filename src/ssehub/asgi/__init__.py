"""The thin HTTP edge: a Starlette app over a Hub."""

from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
