"""Which ``Host`` values the server answers (DNS-rebinding defence) and which origins it trusts.

A page on ``http://evil.example:8181`` whose name the attacker re-points to 127.0.0.1 (DNS
rebinding) talks to a local hub as "same origin": its requests carry ``Host: evil.example:8181``.
So every request whose ``Host`` is not allowed is refused with 400 before routing, and the
origin check (``origin.py``) compares an ``Origin`` with the allowed hosts and ``cors_origins``,
never with the request's own ``Host``.

Allowed hosts (any port): ``allowed_hosts`` when set (``*`` allows every host: only behind a
proxy that checks it); otherwise the loopback names ``localhost``, ``127.0.0.1`` and ``::1``,
plus the bound address when it is an explicit one (``--host 10.0.0.5``). A wildcard bind
(``0.0.0.0``/``::``) adds no name. In every case the address the connection came in on, written
as an IP literal (``Host: 10.0.0.5:8181`` on a socket bound to 10.0.0.5), is accepted: no
attacker can make a browser send another site's request with that ``Host``. A request without
``Host`` (HTTP/1.0, in-process tests) has nothing to rebind and passes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import Scope

from ..config import Settings

__all__ = ["AllowedHosts", "describe_allowed_hosts", "host_name", "hosts_of"]

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARDS = ("", "0.0.0.0", "::")


def host_name(value: str) -> str:
    """The name part of a ``Host`` value or netloc, lower-case: ``"[::1]:8181"`` → ``"::1"``."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[1:end] if end > 0 else value
    if value.count(":") == 1:
        value = value.partition(":")[0]
    return value.rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _defaults(settings: Settings) -> tuple[str, ...]:
    bound = host_name(settings.host)
    extra = () if bound in WILDCARDS or bound in LOOPBACK_NAMES else (bound,)
    return LOOPBACK_NAMES + extra


class AllowedHosts:
    """The allowed ``Host`` names of one app; ``allows(scope)`` for requests, ``origin_allowed``."""

    __slots__ = ("_seen", "any", "names")

    #: how many allowed ``Host`` header values ``allows_value`` remembers
    SEEN_MAX = 64

    def __init__(self, settings: Settings) -> None:
        configured: Iterable[str] = settings.allowed_hosts or _defaults(settings)
        self.names = frozenset(host_name(h) for h in configured)
        self.any = "*" in settings.allowed_hosts
        self._seen: set[bytes] = set()  # Host values allowed by name (not by the socket's IP)

    def allows_value(self, value: bytes) -> bool:
        """Whether a ``Host`` header value names an allowed host, whatever socket it came in
        on; the values allowed so far are remembered (a few: the names clients use)."""
        if self.any or value in self._seen:
            return True
        if host_name(value.decode("latin-1")) not in self.names:
            return False
        if len(self._seen) < self.SEEN_MAX:
            self._seen.add(value)
        return True

    def allows_name(self, name: str) -> bool:
        return self.any or name in self.names

    def allows(self, scope: Scope) -> str | None:
        """None when the request may be served, else the refused host name."""
        if self.any:
            return None
        for key, value in scope["headers"]:
            if key == b"host":
                name = host_name(value.decode("latin-1"))
                if name in self.names:
                    return None
                server = scope.get("server")
                if server and server[0] == name and _is_ip(name):
                    return None  # the IP literal of the socket the request came in on
                return name
        return None

    def origin_allowed(self, origin: str, host: str | None) -> bool:
        """An ``Origin`` (``scheme://host[:port]``) names an allowed host, on the port the request
        was sent to (``host``: its ``Host`` header, already checked; a page on another port of
        the same machine is another origin)."""
        if origin == "null":
            return False
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not self.allows_name(host_name(parts.netloc)):
            return False
        if host is None:
            return True
        default = 443 if parts.scheme == "https" else 80
        try:
            wanted = urlsplit(f"//{host}").port or default
            return (parts.port or default) == wanted
        except ValueError:
            return False


def describe_allowed_hosts(settings: Settings) -> str:
    """One log line: which Host names are served (loud about wildcard binds)."""
    if settings.allowed_hosts:
        return "serving Host names: " + ", ".join(settings.allowed_hosts)
    names = ", ".join(_defaults(settings))
    if host_name(settings.host) in WILDCARDS:
        return (f"bound to {settings.host or 'every address'}: only the loopback names ({names}) and "
                "the server's own IP addresses are accepted as Host; set allowed_hosts "
                "(SSEHUB_ALLOWED_HOSTS) to serve other names")
    return f"serving Host names: {names} (set allowed_hosts to serve others)"


def hosts_of(scope: Scope) -> AllowedHosts:
    """The AllowedHosts of the ssehub app serving this request."""
    hosts: AllowedHosts = scope["app"].state.allowed_hosts
    return hosts
