"""AllowedHosts.allows_value: the fast front's remembered verdict agrees with ``allows``."""

from __future__ import annotations

import pytest

from ssehub import Settings
from ssehub.asgi.hosts import AllowedHosts

VALUES = [b"localhost", b"localhost:8181", b"LOCALHOST:1", b"127.0.0.1:8181", b"[::1]:8181",
          b"hub.local", b"hub.local:443", b"evil.example", b"evil.example:8181", b"10.0.0.5:8181",
          b"localhost.evil.example", b"", b"127.0.0.1.nip.io"]


def scope(value: bytes, server: tuple[str, int] = ("10.0.0.5", 8181)) -> dict[str, object]:
    return {"headers": [(b"host", value)], "server": server}


@pytest.mark.parametrize("settings", [Settings(), Settings(allowed_hosts=("hub.local",)),
                                      Settings(host="10.0.0.5"), Settings(allowed_hosts=("*",))],
                         ids=["default", "named", "bound", "any"])
def test_allows_value_never_allows_what_allows_refuses(settings: Settings) -> None:
    hosts = AllowedHosts(settings)
    for value in VALUES * 2:  # (the second pass answers from what was remembered)
        if hosts.allows_value(value):
            assert hosts.allows(scope(value)) is None, value
            assert hosts.allows(scope(value, ("192.0.2.1", 8181))) is None, value


def test_a_socket_ip_literal_is_not_remembered_as_a_name() -> None:
    hosts = AllowedHosts(Settings(host="0.0.0.0"))
    # allowed on the socket bound to 10.0.0.5 only: never by name
    assert hosts.allows(scope(b"10.0.0.5:8181")) is None
    assert not hosts.allows_value(b"10.0.0.5:8181")
    assert hosts.allows(scope(b"10.0.0.5:8181", ("192.0.2.1", 8181))) == "10.0.0.5"


def test_what_is_remembered_is_bounded() -> None:
    hosts = AllowedHosts(Settings())
    for port in range(AllowedHosts.SEEN_MAX * 3):
        assert hosts.allows_value(b"localhost:%d" % port)
    assert len(hosts._seen) == AllowedHosts.SEEN_MAX
    assert not hosts.allows_value(b"evil.example")
    assert hosts.allows_value(b"localhost:1")
