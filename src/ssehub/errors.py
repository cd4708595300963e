"""The one error tree of ssehub. Standard library only: every layer may import it.

::

    SSEHubError                      (500)
    ├── ConfigError                  a setting or the config file is invalid (local: no HTTP)
    ├── BadRequest                   (400)
    │   ├── InvalidTopic
    │   ├── InvalidField             CR/LF/NUL in an id or event name, bad retry
    │   ├── MalformedBody
    │   ├── LineTooLong              wire parser: one line over max_line_bytes
    │   ├── EventTooLarge            wire parser: one event over max_event_bytes
    │   ├── HostNotAllowed           the Host header is not in allowed_hosts
    │   └── UnsupportedMediaType     (415) a body in a format the route does not take
    ├── Unauthorized                 (401)  missing or invalid token: WWW-Authenticate: Bearer
    ├── Forbidden                    (403)
    │   ├── CrossOriginRefused       a state-changing request from another site
    │   └── InsufficientScope        a valid token that does not allow the topic
    ├── NotFound                     (404)
    ├── PayloadTooLarge              (413)
    ├── RateLimited                  (429)
    ├── HeaderTooLarge               (431)  request line + headers over max_header_bytes
    ├── UpstreamError                (502)  the LLM upstream failed; carries upstream_status
    └── Unavailable                  (503)
        ├── HubClosed
        ├── BrokerUnavailable
        ├── CapacityExceeded
        └── SubscriptionClosed       a subscription ended (hub closing, or closed)
            └── SlowConsumer         fell behind the retained history (policy 'disconnect')

    SSEHubError
    └── ClientError                  ssehub.client / the CLI: failures seen from the client side
        ├── ConnectError             the server cannot be reached (or reconnecting gave up)
        ├── HTTPStatusError          the server answered with an error; .status is its status
        └── RemoteProtocolError      the server's answer is not a valid event stream (not
                                     text/event-stream, a line or event over the limits)

Every error the server raises carries the HTTP status the web layer answers with, and the
response headers it needs (``headers``: e.g. ``WWW-Authenticate`` on a 401); the message is
safe to show to a client (never a stack trace, never a secret, never a token). ``ConfigError``
and the ``ClientError`` branch are local: they never become a response (the CLI prints
them), so they keep the root's 500. As in h11, what the *other side* did wrong
(``RemoteProtocolError``, ``HTTPStatusError``) is told apart from local mistakes: a line
too long sent by a server is not the client's ``BadRequest``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar

__all__ = [
    "BadRequest",
    "BrokerUnavailable",
    "CapacityExceeded",
    "ClientError",
    "ConfigError",
    "ConnectError",
    "CrossOriginRefused",
    "EventTooLarge",
    "Forbidden",
    "HTTPStatusError",
    "HeaderTooLarge",
    "HostNotAllowed",
    "HubClosed",
    "InsufficientScope",
    "InvalidField",
    "InvalidTopic",
    "LineTooLong",
    "MalformedBody",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "RemoteProtocolError",
    "SSEHubError",
    "SlowConsumer",
    "SubscriptionClosed",
    "Unauthorized",
    "Unavailable",
    "UnsupportedMediaType",
    "UpstreamError",
]


class SSEHubError(Exception):
    """Root of every error ssehub raises on purpose."""

    status: int = 500
    #: response headers the web layer adds to the error response
    headers: ClassVar[Mapping[str, str]] = MappingProxyType({})

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else type(self).__name__


class ConfigError(SSEHubError):
    """A setting has an invalid value or the config file cannot be read (local, not HTTP)."""


class BadRequest(SSEHubError):
    status = 400


class InvalidTopic(BadRequest):
    pass


class InvalidField(BadRequest, ValueError):
    pass


class MalformedBody(BadRequest):
    pass


class LineTooLong(BadRequest):
    pass


class EventTooLarge(BadRequest):
    pass


class HostNotAllowed(BadRequest):
    pass


class UnsupportedMediaType(BadRequest):
    status = 415


class Unauthorized(SSEHubError):
    """A missing or invalid token (RFC 6750 §3.1 ``invalid_token``, as SPEC §5 asks)."""

    status = 401
    headers: ClassVar[Mapping[str, str]] = MappingProxyType(
        {"WWW-Authenticate": 'Bearer error="invalid_token"'})


class Forbidden(SSEHubError):
    status = 403


class CrossOriginRefused(Forbidden):
    pass


class InsufficientScope(Forbidden):
    """A valid token whose claims do not allow the request (RFC 6750 ``insufficient_scope``)."""

    headers: ClassVar[Mapping[str, str]] = MappingProxyType(
        {"WWW-Authenticate": 'Bearer error="insufficient_scope"'})


class NotFound(SSEHubError):
    status = 404


class PayloadTooLarge(SSEHubError):
    status = 413


class RateLimited(SSEHubError):
    status = 429


class HeaderTooLarge(SSEHubError):
    status = 431


class UpstreamError(SSEHubError):
    status = 502

    def __init__(self, message: str, upstream_status: int | None = None) -> None:
        super().__init__(message)
        self.upstream_status = upstream_status


class Unavailable(SSEHubError):
    status = 503


class HubClosed(Unavailable):
    pass


class BrokerUnavailable(Unavailable):
    pass


class CapacityExceeded(Unavailable):
    pass


class SubscriptionClosed(Unavailable):
    """The subscription ended: the hub closed, or the subscription was closed."""


class SlowConsumer(SubscriptionClosed):
    """The subscriber fell behind the retained history and the policy is 'disconnect'."""


# -- client side (ssehub.client and the CLI) --------------------------------------------


class ClientError(SSEHubError):
    """Root of the failures ssehub's client sees; never answered over HTTP."""


class ConnectError(ClientError):
    """The server could not be reached, or reconnecting gave up."""


class HTTPStatusError(ClientError):
    """The server refused the request; ``status`` is the status it answered with."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class RemoteProtocolError(ClientError):
    """The server's answer breaks the protocol: not an event stream, or over the limits."""
