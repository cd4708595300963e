"""``ssehub token``, the ``--token`` / SSEHUB_TOKEN flags of publish/subscribe/chat, and the
warning for an exposed bind with auth off."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from ssehub.config import Settings
from ssehub.server import build_server, is_loopback
from ssehub.tokens import Verifier
from tests.support.serve import SSEHUB, clean_env

from .conftest import SECRET, KeyPair, make_token


async def run(*args: str, **env: str) -> tuple[int, str, str]:
    timeout = 30
    proc = await asyncio.create_subprocess_exec(SSEHUB, *args, stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE, env=clean_env(**env))
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_token_mints_what_the_hub_verifies() -> None:
    before = int(time.time())
    code, out, err = await run("token", "--publish", "news/*", "prices", "--subscribe", "*",
                               "--ttl", "15m", "--sub", "build-bot", SSEHUB_JWT_SECRET=SECRET)
    assert code == 0, err
    token = out.strip()
    assert out.count("\n") == 1 and "." in token  # the token alone: TOKEN=$(ssehub token …)
    grant = Verifier(Settings(jwt_secret=SECRET)).verify(token)
    assert grant.publish.matches("news/a/b") and grant.publish.matches("prices")
    assert not grant.publish.matches("other") and grant.subscribe.matches("other")
    assert grant.subject == "build-bot"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 900 and before <= claims["iat"] <= int(time.time())
    assert claims["ssehub.publish"] == ["news/*", "prices"] and claims["ssehub.subscribe"] == ["*"]
    # another hub's secret refuses it
    with pytest.raises(Exception, match="bad signature"):
        Verifier(Settings(jwt_secret="z" * 40)).verify(token)


async def test_token_takes_audience_issuer_and_secret_from_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text(f'jwt_secret = "{SECRET}"\njwt_audience = "hub"\njwt_issuer = "me"\n')
    code, out, err = await run("token", "--subscribe", "a", "--config", str(config))
    assert code == 0, err
    claims = jwt.decode(out.strip(), SECRET, algorithms=["HS256"], audience="hub", issuer="me")
    assert claims["ssehub.subscribe"] == ["a"] and claims["exp"] - claims["iat"] == 3600  # default 1h


async def test_token_with_a_key_pair(tmp_path: Path, rsa_keys: KeyPair, ec_keys: KeyPair) -> None:
    (tmp_path / "pub.pem").write_text(rsa_keys.public_pem)
    (tmp_path / "priv.pem").write_text(rsa_keys.private_pem)
    (tmp_path / "other.pem").write_text(ec_keys.private_pem)
    env = {"SSEHUB_JWT_PUBLIC_KEY": f"@{tmp_path / 'pub.pem'}"}
    code, _, err = await run("token", "--publish", "x", **env)
    assert code == 2 and "minting needs the matching private key" in err and "--private-key" in err
    code, out, err = await run("token", "--publish", "x", "--private-key", f"@{tmp_path / 'priv.pem'}", **env)
    assert code == 0, err
    assert jwt.get_unverified_header(out.strip())["alg"] == "RS256"
    assert Verifier(Settings(jwt_public_key=rsa_keys.public_pem)).verify(out.strip()).publish.matches("x")
    # a private key that does not match the hub's public key: said at once, no token printed
    code, out, err = await run("token", "--private-key", f"@{tmp_path / 'other.pem'}", **env)
    assert code == 1 and out == "" and "does the private key match jwt_public_key" in err


@pytest.mark.parametrize(("args", "env", "expected"), [
    (("--ttl", "1w"), {"SSEHUB_JWT_SECRET": SECRET}, "invalid duration '1w'"),
    ((), {}, "no key configured"),
    ((), {"SSEHUB_JWT_SECRET": "short"}, "at least 32 bytes"),
])
async def test_token_errors(args: tuple[str, ...], env: dict[str, str], expected: str) -> None:
    code, out, err = await run("token", *args, **env)
    assert code == 2 and out == "" and expected in err


async def test_publish_subscribe_and_chat_send_the_token(serve: Any, http: httpx.AsyncClient) -> None:
    server = await serve("--demo-tokens-per-second", "2000", env={"SSEHUB_JWT_SECRET": SECRET})
    token = make_token({"ssehub.publish": ["news"], "ssehub.subscribe": ["news"]})
    # refused without, accepted with --token or SSEHUB_TOKEN
    code, _, err = await run("publish", "news", "x", "--url", server.url)
    assert code == 1 and "missing token" in err
    code, out, err = await run("publish", "news", "first", "--url", server.url, "--token", token)
    assert code == 0, err
    first = out.strip()
    code, out, err = await run("publish", "news", "second", "--url", server.url, SSEHUB_TOKEN=token)
    assert code == 0, err
    # subscribe from the start; stops itself once it has printed both lines
    proc = await asyncio.create_subprocess_exec(
        SSEHUB, "subscribe", "news", "--last-event-id", "earliest", "--url", server.url,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(SSEHUB_TOKEN=token))
    try:
        assert proc.stdout is not None
        lines = [json.loads(await asyncio.wait_for(proc.stdout.readline(), 20)) for _ in range(2)]
    finally:
        proc.kill()
        await proc.wait()
    assert (lines[0]["id"], lines[0]["data"]) == (first, "first")
    assert lines[1]["data"] == "second"
    code, _, err = await run("subscribe", "news", "--url", server.url)
    assert code == 1 and "missing token" in err
    # chat: starting a generation needs a token
    code, out, err = await run("chat", "hello", "--url", server.url, "--no-reasoning")
    assert code == 1 and "missing token" in err
    code, out, err = await run("chat", "hello", "--url", server.url, "--no-reasoning", SSEHUB_TOKEN=token)
    assert code == 0, err
    assert "demo" in out.lower()
    assert token not in server.log()


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.10", False), ("example.com", False)])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(("settings", "warned"), [
    ({"host": "0.0.0.0"}, True),
    ({"host": "::"}, True),
    ({"host": "0.0.0.0", "jwt_secret": SECRET}, False),
    ({"host": "127.0.0.1"}, False),
])
def test_an_exposed_bind_without_auth_warns_at_start(settings: dict[str, Any], warned: bool,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="ssehub"):
        build_server(Settings(port=0, **settings))  # builds the app; binds nothing
    warnings = [r.getMessage() for r in caplog.records if r.name == "ssehub"]
    assert bool(warnings) is warned, warnings
    if warned:
        assert "auth is off" in warnings[0] and "SSEHUB_JWT_SECRET" in warnings[0]
