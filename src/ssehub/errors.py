"""The one error tree of ssehub. Standard library only: every layer may import it.

::

    SSEHubError                      (500)
    ├── BadRequest                   (400)
    │   ├── InvalidTopic
    │   ├── InvalidField             CR/LF/NUL in an id or event name, bad retry
    │   ├── MalformedBody
    │   ├── LineTooLong              wire parser: one line over max_line_bytes
    │   ├── EventTooLarge            wire parser: one event over max_event_bytes
    │   └── UnsupportedMediaType     (415) a body in a format the route does not take
    ├── Unauthorized                 (401)
    ├── Forbidden                    (403)
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

Every error carries the HTTP status the web layer answers with; the message is safe to
show to a client (never a stack trace, never a secret).
"""

from __future__ import annotations

__all__ = [
    "BadRequest",
    "BrokerUnavailable",
    "CapacityExceeded",
    "EventTooLarge",
    "Forbidden",
    "HeaderTooLarge",
    "HubClosed",
    "InvalidField",
    "InvalidTopic",
    "LineTooLong",
    "MalformedBody",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
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

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else type(self).__name__


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


class UnsupportedMediaType(BadRequest):
    status = 415


class Unauthorized(SSEHubError):
    status = 401


class Forbidden(SSEHubError):
    status = 403


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
