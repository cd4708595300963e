"""Refuse requests that a browser sends on behalf of another site.

**State-changing requests** (``POST /publish``, ``POST /chat``, the demo upstream). A form post,
a text/plain fetch or a navigation are "simple" requests: a browser sends them cross-origin
without asking (no CORS preflight), so CORS alone would let any web page a user visits publish
into their hub or start paid LLM generations. A request that carries an ``Origin`` must come
from an allowed host (``hosts.py``: loopback names, the bound address, ``allowed_hosts``) on
the port the request was sent to, or be listed in ``cors_origins`` — an ``Origin`` whose name
merely equals the request's own ``Host`` is not enough (a DNS-rebinding page controls both).
One that carries only ``Sec-Fetch-Site`` must not be cross-site.
Requests from programs (curl, backends) carry neither and are unaffected.

**A GET that starts a generation** (``GET /chat/stream?prompt=…``) needs more. Browsers send
no ``Origin`` on a plain GET from ``<img>``, ``<script>``, a link or a no-cors ``fetch``, and send
``Sec-Fetch-*`` only to potentially trustworthy URLs (HTTPS, localhost): on a plain-HTTP LAN
deployment ``<img src="http://10.0.0.5:8181/chat/stream?prompt=…">`` arrives with neither, and
with ``referrerpolicy="no-referrer"`` without a ``Referer`` too — exactly like curl. Absence of
browser headers therefore proves nothing there. So such a GET proceeds only when the request
*proves* it is not a cross-site browser request:

1. it is authenticated (a valid token: the auth check passes ``authenticated=True``);
2. ``Sec-Fetch-Site`` is ``same-origin`` or ``none`` (typed in the address bar). ``Sec-``
   headers are forbidden header names: no page script can set or fake them, so a program may
   send ``Sec-Fetch-Site: same-origin`` itself (``curl -H 'Sec-Fetch-Site: same-origin' …``);
3. its ``Origin`` is allowed (as above), or its ``Referer`` names an allowed host or a
   ``cors_origins`` origin (a page cannot forge another page's ``Referer``);
4. the request is addressed to a loopback name (``Host: localhost``/``127.0.0.1``/``[::1]``) and
   carries no browser header at all (no ``Origin``, ``Referer``, ``Sec-Fetch-*``): every current
   browser sends ``Sec-Fetch-Site`` to loopback addresses, so this is a local program.

Anything else is 403. A resume (``Last-Event-ID``) starts nothing and is not checked here.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers

from ..config import Settings
from ..errors import CrossOriginRefused
from .hosts import LOOPBACK_NAMES, AllowedHosts, host_name

__all__ = ["refuse_cross_site", "refuse_cross_site_start"]


def _origin_trusted(origin: str, headers: Headers, settings: Settings, hosts: AllowedHosts) -> bool:
    allowed = settings.cors_origins
    return origin in allowed or "*" in allowed or hosts.origin_allowed(origin, headers.get("host"))


def refuse_cross_site(headers: Headers, settings: Settings, hosts: AllowedHosts) -> None:
    """Forbidden (403) for a state-changing request from another site's page."""
    origin = headers.get("origin")
    if origin is not None:
        if _origin_trusted(origin, headers, settings, hosts):
            return
        raise CrossOriginRefused(f"cross-origin request from {origin} refused (allow it with cors_origins)")
    if headers.get("sec-fetch-site") in ("cross-site", "same-site"):
        raise CrossOriginRefused("cross-site request refused (allow its origin with cors_origins)")


def refuse_cross_site_start(
    headers: Headers, settings: Settings, hosts: AllowedHosts, *, authenticated: bool = False
) -> None:
    """Forbidden (403) unless a GET that starts a generation proves it is not cross-site."""
    refuse_cross_site(headers, settings, hosts)
    if authenticated:
        return
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site in ("same-origin", "none"):
        return
    origin = headers.get("origin")
    if origin is not None:
        return  # checked above: an allowed origin
    referer = headers.get("referer")
    if referer:
        parts = urlsplit(referer)
        if _origin_trusted(f"{parts.scheme}://{parts.netloc}", headers, settings, hosts):
            return
        raise CrossOriginRefused("a GET from another site's page cannot start a generation (use POST /chat)")
    if fetch_site is None and host_name(headers.get("host", "")) in LOOPBACK_NAMES:
        return  # no browser header, addressed to loopback: a local program
    raise CrossOriginRefused(
        "GET /chat/stream starts a generation only for a same-origin request: use POST /chat, a "
        "token, or send 'Sec-Fetch-Site: same-origin' from a program")
