"""Auth for the web routes: the token of a request, and what it allows (SPEC §5).

Auth is on when ``jwt_secret`` or ``jwt_public_key`` is set; ``Auth.from_settings`` is then
built once per app (``HubState.auth``) and is None otherwise, so auth off costs the hot
routes one attribute check.

The token comes from ``Authorization: Bearer …``, else the ``token`` query parameter, else
the ``ssehub_token`` cookie (EventSource can set no header; a page can keep its token in the
cookie, which EventSource sends same-origin). The first one found is the request's token:
an invalid header token does not fall back to the cookie.

A token is verified only where one is needed: reading public topics (``public_topics``) and
generation topics (``chat/<G>``: knowing the unguessable G is the permission) needs none,
and a token sent along is then ignored. ``GET /topics`` takes an optional token: it decides
what is listed.

Errors: 401 (``Unauthorized``, ``WWW-Authenticate: Bearer error="invalid_token"``) for a
missing or invalid token, naming the check that failed; 403 (``InsufficientScope``) for a
valid token whose claims do not allow a topic. Neither ever contains the token.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from starlette.datastructures import QueryParams
from starlette.requests import cookie_parser
from starlette.types import Scope

from ..config import Settings
from ..core.patterns import TopicPatterns, compile_patterns
from ..errors import InsufficientScope, Unauthorized
from ..tokens import Grant, Verifier

__all__ = ["COOKIE", "QUERY", "Auth", "token_of"]

COOKIE = "ssehub_token"
QUERY = "token"


def token_of(scope: Scope) -> str | None:
    """The request's token: Authorization Bearer > ``token`` query parameter > cookie."""
    cookie: bytes | None = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, credentials = bytes(value).decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
        elif name == b"cookie" and cookie is None:
            cookie = bytes(value)
    query: bytes = scope.get("query_string", b"")
    if QUERY.encode() + b"=" in query:
        token: str | None = QueryParams(query).get(QUERY)
        if token:
            return token
    if cookie is not None:
        return cookie_parser(cookie.decode("latin-1")).get(COOKIE) or None
    return None


def _shown(topic: str) -> str:
    return repr(topic if len(topic) <= 256 else topic[:256] + "…")


class Auth:
    """Per-app auth: a Verifier, the public topic patterns, and the prefix readable by name."""

    __slots__ = ("public", "readable_prefix", "verifier")

    def __init__(self, verifier: Verifier, public: TopicPatterns, readable_prefix: str) -> None:
        self.verifier = verifier
        self.public = public
        self.readable_prefix = readable_prefix

    @classmethod
    def from_settings(cls, settings: Settings, readable_prefix: str) -> Auth | None:
        """None when auth is off; ConfigError when the key is unusable."""
        verifier = Verifier.from_settings(settings)
        if verifier is None:
            return None
        return cls(verifier, compile_patterns(settings.public_topics), readable_prefix)

    def authenticate(self, scope: Scope) -> Grant:
        """The request's verified Grant; 401 when the token is missing or invalid."""
        token = token_of(scope)
        if token is None:
            raise Unauthorized("missing token")
        return self.verifier.verify(token)

    def optional(self, scope: Scope) -> Grant | None:
        """The verified Grant of a request that may come without a token."""
        token = token_of(scope)
        return None if token is None else self.verifier.verify(token)

    def open_to_all(self, topic: str) -> bool:
        return topic.startswith(self.readable_prefix) or self.public.matches(topic)

    def check_subscribe(self, scope: Scope, topics: Iterable[str]) -> float | None:
        """401/403 unless the request may read every topic; returns when the stream must end
        (the token's expiry), or None when no token was needed or it does not expire."""
        needed = [t for t in topics if not self.open_to_all(t)]
        if not needed:
            return None
        grant = self.authenticate(scope)
        for topic in needed:
            if not grant.subscribe.matches(topic):
                raise InsufficientScope(f"token does not allow subscribing to {_shown(topic)}")
        return grant.expires

    @staticmethod
    def check_publish(grant: Grant, topics: Iterable[str]) -> None:
        """403 unless the token allows publishing to every one of ``topics``."""
        for topic in topics:
            if not grant.publish.matches(topic):
                raise InsufficientScope(f"token does not allow publishing to {_shown(topic)}")

    def listable(self, scope: Scope) -> Callable[[str], bool]:
        """For GET /topics: the topics this request may see (public ones, plus those its
        optional token may subscribe to); 401 for an invalid token."""
        grant = self.optional(scope)
        if grant is None:
            return self.public.matches
        subscribe, public = grant.subscribe, self.public
        return lambda topic: public.matches(topic) or subscribe.matches(topic)
