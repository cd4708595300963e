"""JWTs for ssehub (PyJWT): keys from the settings, verification into a Grant, minting.

The algorithm is fixed by the configured key, never read from the token: ``jwt_secret`` →
HS256; ``jwt_public_key`` (PEM text, or ``@path`` to a PEM file) → RS256 for an RSA key,
ES256/ES384/ES512 for an EC key on P-256/P-384/P-521. ``jwt.decode`` always gets that one
algorithm, so ``alg: none`` and "HS256 signed with the public key" tokens are refused.
A bad key is a ConfigError when the app is built (at start), not a 500 on the first request.

Claims: ``ssehub.publish`` / ``ssehub.subscribe`` (lists of topic patterns, see
``core.patterns``), or the same lists nested as ``{"ssehub": {"publish": […], "subscribe":
[…]}}``; both forms may appear and add up. ``exp`` and ``nbf`` are checked with
``jwt_leeway`` seconds of skew; ``aud``/``iss`` are required and checked when
``jwt_audience``/``jwt_issuer`` are set. A token without ``exp`` does not expire.

Nothing here logs, and no error message contains the token.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

from .config import ConfigError, Settings
from .core.patterns import TopicPatterns, compile_patterns
from .errors import Unauthorized

__all__ = ["CLAIM_PUBLISH", "CLAIM_SUBSCRIBE", "Grant", "Verifier", "mint", "parse_ttl"]

CLAIM_PUBLISH = "ssehub.publish"
CLAIM_SUBSCRIBE = "ssehub.subscribe"
MIN_SECRET_BYTES = 32  # RFC 7518 §3.2: an HS256 key must be at least 256 bits
MIN_RSA_BITS = 2048
_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


@dataclass(frozen=True, slots=True)
class Grant:
    """What a verified token allows."""

    publish: TopicPatterns
    subscribe: TopicPatterns
    #: Unix time after which the token is refused (``exp`` + leeway); None: never
    expires: float | None
    subject: str | None


def _key_text(value: str, name: str) -> str:
    """PEM text, or the contents of the file ``@path`` names."""
    if not value.startswith("@"):
        return value
    try:
        return Path(value[1:]).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"cannot read {name} from {value[1:]}: {reason}") from None


def _algorithm_of(key: Any, name: str) -> str:
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise ConfigError(f"{name}: RSA keys must have at least {MIN_RSA_BITS} bits")
        return "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        algorithm = _EC_ALGORITHMS.get(key.curve.name)
        if algorithm is None:
            raise ConfigError(f"{name}: EC keys must be on P-256, P-384 or P-521, not {key.curve.name}")
        return algorithm
    raise ConfigError(f"{name} must be an RSA or EC key (RS256, ES256)")


def _check_secret(secret: str) -> bytes:
    if "-----BEGIN" in secret:
        raise ConfigError("jwt_secret looks like a PEM key: put a public key in jwt_public_key instead")
    raw = secret.encode("utf-8")
    if len(raw) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"jwt_secret must be at least {MIN_SECRET_BYTES} bytes for HS256 (make one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    return raw


def verification_key(settings: Settings) -> tuple[Any, str]:
    """(key, algorithm) from ``jwt_secret`` or ``jwt_public_key``; ConfigError when unusable."""
    if settings.jwt_secret:
        return _check_secret(settings.jwt_secret), "HS256"
    text = _key_text(settings.jwt_public_key.strip(), "jwt_public_key").strip()
    if "PRIVATE KEY-----" in text:
        raise ConfigError("jwt_public_key holds a private key: give the server only the public key")
    try:
        if text.startswith("-----BEGIN CERTIFICATE-----"):
            key: Any = x509.load_pem_x509_certificate(text.encode()).public_key()
        else:
            key = load_pem_public_key(text.encode())
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConfigError("jwt_public_key is not a PEM public key (or @path to one)") from None
    return key, _algorithm_of(key, "jwt_public_key")


def _patterns(value: object, claim: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise Unauthorized(f"malformed token: {claim} must be a list of topic patterns")


def _grant(claims: dict[str, Any], leeway: float) -> Grant:
    publish = _patterns(claims.get(CLAIM_PUBLISH), CLAIM_PUBLISH)
    subscribe = _patterns(claims.get(CLAIM_SUBSCRIBE), CLAIM_SUBSCRIBE)
    nested = claims.get("ssehub")
    if nested is not None:
        if not isinstance(nested, dict):
            raise Unauthorized("malformed token: the ssehub claim must be an object")
        publish += _patterns(nested.get("publish"), "ssehub.publish")
        subscribe += _patterns(nested.get("subscribe"), "ssehub.subscribe")
    exp = claims.get("exp")  # PyJWT has checked that it is a number
    subject = claims.get("sub")
    return Grant(
        publish=compile_patterns(tuple(publish)),
        subscribe=compile_patterns(tuple(subscribe)),
        expires=float(exp) + leeway if exp is not None else None,
        subject=subject if isinstance(subject, str) else None,
    )


# PyJWT's exceptions → the check that failed (subclasses before their bases)
_REASONS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.ImmatureSignatureError, "token not yet valid"),
    (jwt.InvalidSignatureError, "bad signature"),
    (jwt.InvalidAudienceError, "wrong audience"),
    (jwt.InvalidIssuerError, "wrong issuer"),
    (jwt.InvalidIssuedAtError, "malformed token: iat must be a number"),
    (jwt.DecodeError, "malformed token"),
)


class Verifier:
    """Built once from Settings (ConfigError if the key is unusable); ``verify`` per request."""

    def __init__(self, settings: Settings) -> None:
        self.key, self.algorithm = verification_key(settings)
        self.leeway = settings.jwt_leeway
        self.audience = settings.jwt_audience or None
        self.issuer = settings.jwt_issuer or None
        require = [name for name, on in (("aud", self.audience), ("iss", self.issuer)) if on]
        self._options: dict[str, Any] = {"require": require}
        self._algorithms = [self.algorithm]

    @classmethod
    def from_settings(cls, settings: Settings) -> Verifier | None:
        """None when auth is off (no key configured)."""
        if not settings.jwt_secret and not settings.jwt_public_key:
            return None
        return cls(settings)

    def verify(self, token: str) -> Grant:
        """The token's Grant, or Unauthorized naming the check that failed."""
        try:
            claims = jwt.decode(token, self.key, algorithms=self._algorithms, audience=self.audience,
                                issuer=self.issuer, leeway=self.leeway, options=self._options)  # type: ignore[arg-type]
        except jwt.InvalidAlgorithmError:
            raise Unauthorized(f"algorithm not allowed (this hub accepts {self.algorithm} only)") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(f"token lacks the {exc.claim!r} claim") from None
        except jwt.PyJWTError as exc:
            for kind, reason in _REASONS:
                if isinstance(exc, kind):
                    raise Unauthorized(reason) from None
            raise Unauthorized("invalid token") from None
        return _grant(claims, self.leeway)


# -- minting (ssehub token) --------------------------------------------------------------

_TTL = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_TTL = 3650 * 86400.0


def parse_ttl(text: str) -> float:
    """``30s``, ``15m``, ``1h``, ``7d`` or plain seconds → seconds (ValueError when not)."""
    m = _TTL.fullmatch(text.strip().lower())
    if m is None:
        raise ValueError(f"invalid duration {text!r}: use e.g. 30s, 15m, 1h, 7d or seconds")
    seconds = float(m.group(1)) * _UNIT[m.group(2)]
    if not 1 <= seconds <= MAX_TTL or not math.isfinite(seconds):
        raise ValueError(f"invalid duration {text!r}: between 1s and 3650d")
    return seconds


def signing_key(settings: Settings, private_key: str | None) -> tuple[Any, str]:
    """The key to mint with: ``private_key`` (PEM or @path) if given, else ``jwt_secret``."""
    if private_key:
        text = _key_text(private_key.strip(), "the private key")
        try:
            key: Any = load_pem_private_key(text.strip().encode(), password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise ConfigError("the private key is not an unencrypted PEM private key") from None
        return key, _algorithm_of(key, "the private key")
    if settings.jwt_secret:
        return _check_secret(settings.jwt_secret), "HS256"
    if settings.jwt_public_key:
        raise ConfigError("jwt_public_key is set: minting needs the matching private key "
                          "(--private-key @path/to/private.pem)")
    raise ConfigError("no key configured: set jwt_secret (SSEHUB_JWT_SECRET, or in --config), "
                      "or pass --private-key for RS256/ES256")


def mint(
    settings: Settings,
    *,
    publish: list[str] | tuple[str, ...] = (),
    subscribe: list[str] | tuple[str, ...] = (),
    ttl: float = 3600.0,
    subject: str | None = None,
    private_key: str | None = None,
    now: float | None = None,
) -> str:
    """A signed token with the ssehub claims, ``iat``/``exp``, and ``aud``/``iss`` when
    the settings check them."""
    key, algorithm = signing_key(settings, private_key)
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {"iat": issued, "exp": issued + math.ceil(ttl)}
    if publish:
        claims[CLAIM_PUBLISH] = list(publish)
    if subscribe:
        claims[CLAIM_SUBSCRIBE] = list(subscribe)
    if subject:
        claims["sub"] = subject
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    return jwt.encode(claims, key, algorithm=algorithm)
