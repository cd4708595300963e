"""The public API is short, sorted and pinned."""

from __future__ import annotations

import ssehub


def test_public_api_is_pinned() -> None:
    assert ssehub.__all__ == [
        "Event",
        "Hub",
        "SSEHubError",
        "Settings",
        "Subscription",
        "create_app",
        "load_settings",
    ]
    for name in ssehub.__all__:
        assert getattr(ssehub, name) is not None


def test_every_error_carries_an_http_status() -> None:
    from ssehub import errors

    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.SSEHubError)
        assert 400 <= cls.status <= 599 or cls is errors.SSEHubError
    assert errors.__all__ == sorted(errors.__all__)
