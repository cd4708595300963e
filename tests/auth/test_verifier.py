"""The Verifier: every way a token can be wrong names its check; keys decide the algorithm."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ssehub.config import ConfigError, Settings
from ssehub.errors import Unauthorized
from ssehub.tokens import Verifier, mint, parse_ttl

from .conftest import SECRET, KeyPair, b64url, forge_hs256, make_token

HS = Settings(jwt_secret=SECRET, jwt_leeway=0)


def reason(verifier: Verifier, token: str) -> str:
    with pytest.raises(Unauthorized) as info:
        verifier.verify(token)
    assert info.value.status == 401
    assert info.value.headers == {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    assert token not in info.value.message
    return info.value.message


def test_auth_is_off_without_a_key() -> None:
    assert Verifier.from_settings(Settings()) is None


def test_a_valid_hs256_token_grants_its_claims() -> None:
    v = Verifier(HS)
    grant = v.verify(make_token({"ssehub.publish": ["news/*"], "ssehub.subscribe": ["*"], "sub": "me"}))
    assert grant.publish.matches("news/a") and not grant.publish.matches("other")
    assert grant.subscribe.matches("anything")
    assert grant.subject == "me"
    assert grant.expires is not None and grant.expires > time.time()


def test_the_nested_claim_form_adds_up_with_the_dotted_one() -> None:
    grant = Verifier(HS).verify(make_token({"ssehub": {"publish": ["a"], "subscribe": "b/*"},
                                            "ssehub.publish": ["c"]}))
    assert grant.publish.matches("a") and grant.publish.matches("c")
    assert grant.subscribe.matches("b/x") and not grant.subscribe.matches("a")


def test_no_claims_grant_nothing() -> None:
    grant = Verifier(HS).verify(make_token({}))
    assert not grant.publish.matches("x") and not grant.subscribe.matches("x")


@pytest.mark.parametrize(("claims", "expected"), [
    ({"ssehub.publish": [1]}, "malformed token: ssehub.publish must be a list of topic patterns"),
    ({"ssehub.subscribe": {"a": 1}}, "malformed token: ssehub.subscribe must be a list"),
    ({"ssehub": ["a"]}, "malformed token: the ssehub claim must be an object"),
])
def test_malformed_claims(claims: dict[str, Any], expected: str) -> None:
    assert reason(Verifier(HS), make_token(claims)).startswith(expected)


def test_the_token_matrix() -> None:
    v = Verifier(HS)
    now = int(time.time())
    good = make_token({"ssehub.subscribe": ["*"]})
    header, payload, signature = good.split(".")
    widened = b64url(b'{"ssehub.publish":["*"]}')
    alg_none = b64url(b'{"alg":"none"}')
    cases = {
        "wrong signature": (make_token({}, key="another-secret-of-at-least-32-bytes!!"), "bad signature"),
        "tampered payload": (f"{header}.{widened}.{signature}", "bad signature"),
        "expired": (make_token({}, exp=now - 5), "token expired"),
        "not yet valid": (make_token({}, nbf=now + 60), "token not yet valid"),
        "issued in the future": (make_token({}, iat=now + 60), "token not yet valid"),
        "alg none": (jwt.encode({"exp": now + 60}, "", algorithm="none"), "algorithm not allowed"),
        "unsigned, alg none by hand": (f"{alg_none}.{payload}.", "algorithm not allowed"),
        "HS512 with the right secret": (make_token({}, algorithm="HS512"), "algorithm not allowed"),
        "garbage": ("not a token at all", "malformed token"),
        "truncated": (good[: len(good) // 2], "malformed token"),
        "signature cut": (f"{header}.{payload}.", "bad signature"),
        "empty parts": ("..", "malformed token"),
        "payload not an object": (forge_hs256([1], SECRET.encode()), "malformed token"),
        "exp not a number": (make_token({}, exp="tomorrow"), "malformed token"),
        "unexpected audience": (make_token({}, aud="elsewhere"), "wrong audience"),
    }
    for name, (token, expected) in cases.items():
        got = reason(v, token)
        assert got.startswith(expected), (name, got)


def test_leeway_accepts_a_just_expired_token_and_moves_the_stream_end() -> None:
    token = make_token({}, exp=int(time.time()) - 5)
    grant = Verifier(Settings(jwt_secret=SECRET, jwt_leeway=30)).verify(token)
    assert grant.expires is not None and grant.expires > time.time()
    assert reason(Verifier(HS), token) == "token expired"


def test_a_token_without_exp_does_not_expire() -> None:
    assert Verifier(HS).verify(make_token({}, ttl=None)).expires is None


def test_audience_and_issuer_when_configured_are_required() -> None:
    v = Verifier(Settings(jwt_secret=SECRET, jwt_audience="hub", jwt_issuer="auth.example"))
    assert v.verify(make_token({}, aud="hub", iss="auth.example"))
    assert v.verify(make_token({}, aud=["other", "hub"], iss="auth.example"))
    assert reason(v, make_token({}, aud="other", iss="auth.example")) == "wrong audience"
    assert reason(v, make_token({}, aud="hub", iss="evil")) == "wrong issuer"
    assert reason(v, make_token({}, iss="auth.example")) == "token lacks the 'aud' claim"
    assert reason(v, make_token({}, aud="hub")) == "token lacks the 'iss' claim"


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_public_key_algorithms(kind: str, rsa_keys: KeyPair, ec_keys: KeyPair, key_file: Any) -> None:
    keys, algorithm = (rsa_keys, "RS256") if kind == "rsa" else (ec_keys, "ES256")
    for configured in (keys.public_pem, "@" + str(key_file(keys.public_pem))):
        v = Verifier(Settings(jwt_public_key=configured))
        assert v.algorithm == algorithm
        token = make_token({"ssehub.subscribe": ["x"]}, key=keys.private, algorithm=algorithm)
        assert v.verify(token).subscribe.matches("x")
        # signed by another key of the same kind
        other = (rsa.generate_private_key(public_exponent=65537, key_size=2048) if kind == "rsa"
                 else ec.generate_private_key(ec.SECP256R1()))
        assert reason(v, make_token({}, key=other, algorithm=algorithm)) == "bad signature"
        # the server's algorithm only: an HS256 token signed with the public key (confusion)
        forged = forge_hs256({"ssehub.publish": ["*"], "exp": int(time.time()) + 60},
                             keys.public_pem.encode())
        assert reason(v, forged).startswith("algorithm not allowed (this hub accepts")
        # and not the other asymmetric family either
        if kind == "rsa":
            assert reason(v, make_token({}, key=ec_keys.private, algorithm="ES256")).startswith(
                "algorithm not allowed")


def test_an_rsa_server_refuses_hs256_signed_with_its_public_key_der_too(rsa_keys: KeyPair) -> None:
    v = Verifier(Settings(jwt_public_key=rsa_keys.public_pem))
    der = rsa_keys.private.public_key().public_bytes(serialization.Encoding.DER,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo)
    assert reason(v, forge_hs256({"exp": int(time.time()) + 60}, der)).startswith("algorithm not allowed")


def test_bad_keys_are_configuration_errors(rsa_keys: KeyPair, tmp_path: Path) -> None:
    small_rsa = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    ed = ed25519.Ed25519PrivateKey.generate()
    cases = {
        "short secret": (Settings(jwt_secret="short"), "at least 32 bytes"),
        "PEM as secret": (Settings(jwt_secret=rsa_keys.public_pem), "looks like a PEM key"),
        "not PEM": (Settings(jwt_public_key="hello"), "not a PEM public key"),
        "private key as public": (Settings(jwt_public_key=rsa_keys.private_pem), "holds a private key"),
        "missing file": (Settings(jwt_public_key="@" + str(tmp_path / "nope.pem")), "cannot read"),
        "small RSA": (Settings(jwt_public_key=KeyPair(small_rsa).public_pem), "at least 2048 bits"),
        "ed25519": (Settings(jwt_public_key=KeyPair(ed).public_pem), "must be an RSA or EC key"),
    }
    for name, (settings, expected) in cases.items():
        with pytest.raises(ConfigError) as info:
            Verifier(settings)
        assert expected in info.value.message, (name, info.value.message)


def test_a_bad_key_fails_create_app_at_start() -> None:
    from ssehub.asgi import create_app

    with pytest.raises(ConfigError):
        create_app(Settings(jwt_secret="short"))


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("15m", 900), ("1h", 3600), ("7d", 604800), ("90", 90), (" 2H ", 7200), ("1.5h", 5400)])
def test_parse_ttl(text: str, seconds: float) -> None:
    assert parse_ttl(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "1w", "-5s", "0", "0s", "1e9", "99999d", "inf"])
def test_parse_ttl_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_ttl(text)


def test_mint_round_trips_with_the_verifier(ec_keys: KeyPair) -> None:
    settings = Settings(jwt_secret=SECRET, jwt_audience="hub", jwt_issuer="me")
    now = time.time()
    grant = Verifier(settings).verify(mint(settings, publish=["a/*"], subscribe=["*"], ttl=60, subject="bob"))
    assert grant.publish.matches("a/b") and grant.subscribe.matches("z") and grant.subject == "bob"
    assert grant.expires is not None and now + 59 <= grant.expires - settings.jwt_leeway <= now + 62
    es = Settings(jwt_public_key=ec_keys.public_pem)
    minted = mint(es, subscribe=["x"], private_key=ec_keys.private_pem)
    assert Verifier(es).verify(minted).subscribe.matches("x")
    with pytest.raises(ConfigError, match="minting needs the matching private key"):
        mint(es)
    with pytest.raises(ConfigError, match="no key configured"):
        mint(Settings())
