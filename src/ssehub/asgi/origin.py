"""Refuse state-changing requests that a browser sends on behalf of another site.

A form post, a text/plain fetch or a navigation are "simple" requests: a browser sends them
cross-origin without asking (no CORS preflight), so CORS alone would let any web page a user
visits publish into their local hub or start paid LLM generations. A request that carries an
``Origin`` must come from this server's own origin or one listed in ``cors_origins``; one
that carries only ``Sec-Fetch-Site`` must not be cross-site. Requests from programs (curl,
backends) carry neither and are unaffected.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers

from ..config import Settings
from ..errors import CrossOriginRefused

__all__ = ["refuse_cross_site"]


def refuse_cross_site(headers: Headers, settings: Settings) -> None:
    origin = headers.get("origin")
    if origin is not None:
        allowed = settings.cors_origins
        if origin in allowed or "*" in allowed:
            return
        if origin != "null" and urlsplit(origin).netloc == headers.get("host", ""):
            return
        raise CrossOriginRefused(f"cross-origin request from {origin} refused (allow it with cors_origins)")
    if headers.get("sec-fetch-site") in ("cross-site", "same-site"):
        raise CrossOriginRefused("cross-site request refused (allow its origin with cors_origins)")
