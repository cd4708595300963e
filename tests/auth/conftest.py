"""Auth fixtures: keys made in the test (HS256 secret, RSA and EC key pairs), a token factory,
and the e2e fixtures (real ``ssehub serve`` subprocesses, raw SSE streams)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.support.fixtures import http, parametrize_fronts, serve, sse_streams

__all__ = ["SECRET", "KeyPair", "b64url", "forge_hs256", "http", "make_token", "serve", "sse_streams"]

SECRET = "test-secret-for-ssehub-auth-" + "0123456789" * 4  # 68 bytes: >= 32 (HS256), >= 64 (HS512)


def make_token(claims: dict[str, Any] | None = None, *, key: Any = SECRET, algorithm: str = "HS256",
               ttl: float | None = 3600.0, **extra: Any) -> str:
    """A token with ``exp`` = now + ttl (none when ttl is None) and the given claims."""
    body: dict[str, Any] = dict(claims or {})
    if ttl is not None:
        body.setdefault("exp", int(time.time() + ttl))
    body.update(extra)
    return jwt.encode(body, key, algorithm=algorithm)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge_hs256(claims: Any, hmac_key: bytes, alg: str = "HS256") -> str:
    """An HS256 token made by hand (PyJWT refuses a PEM key as an HMAC secret): the classic
    algorithm-confusion attack signs with the server's *public* key."""
    header = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = b64url(json.dumps(claims).encode())
    signature = hmac.new(hmac_key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


class KeyPair:
    def __init__(self, private: Any) -> None:
        self.private = private
        self.private_pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()).decode()
        self.public_pem = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.fixture(scope="session")
def rsa_keys() -> KeyPair:
    return KeyPair(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="session")
def ec_keys() -> KeyPair:
    return KeyPair(ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture
def key_file(tmp_path: Path) -> Any:
    def write(text: str, name: str = "key.pem") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path
    return write


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize_fronts(metafunc)  # modules marked both_fronts run their serve tests on both
