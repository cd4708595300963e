"""SPEC §5 CORS: allowed origins are a configured list (default none); only those get
Access-Control-Allow-Origin; credentials only with explicit origins."""

from __future__ import annotations

import asyncio
import subprocess

import httpx

from tests.support.fixtures import HubServer, Serve
from tests.support.serve import SSEHUB, ServeProcess, clean_env
from tests.support.sse import SSEStream, subscribe_target
from tests.support.uvicorn import InProcServer

A = "https://a.example"
B = "https://b.example"
ACAO = "access-control-allow-origin"
ACAC = "access-control-allow-credentials"


def preflight(origin: str, method: str = "POST") -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "content-type, last-event-id"}


async def stream_acao(port: int, origin: str) -> str | None:
    stream = await SSEStream.open(port, subscribe_target("c"), {"Origin": origin})
    try:
        assert stream.status == 200
        return stream.header(ACAO)
    finally:
        await stream.close()


async def test_cors_off_by_default(hub_server: HubServer, http: httpx.AsyncClient) -> None:
    server: InProcServer = await hub_server()
    for origin in (A, "null", "http://127.0.0.1:1"):
        r = await http.get(server.url + "/topics", headers={"Origin": origin})
        assert r.status_code == 200 and ACAO not in r.headers
        body = {"topic": "c", "data": "x"}
        # a browser would send this cross-origin without a preflight: refused, not just unreadable
        r = await http.post(server.url + "/publish", json=body, headers={"Origin": origin})
        assert r.status_code == 403 and ACAO not in r.headers and "refused" in r.json()["error"]
        r = await http.options(server.url + "/publish", headers=preflight(origin))
        assert ACAO not in r.headers and r.status_code >= 400
        assert await stream_acao(server.port, origin) is None


async def test_cors_explicit_origins_only(serve: Serve, http: httpx.AsyncClient) -> None:
    hub: ServeProcess = await serve("--cors-origins", f"{A}, https://c.example")
    # preflight from an allowed origin
    r = await http.options(hub.url + "/publish", headers=preflight(A))
    assert r.status_code == 200
    assert r.headers[ACAO] == A
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "last-event-id" in r.headers["access-control-allow-headers"].lower()
    assert ACAC not in r.headers
    # simple requests and the event stream itself
    r = await http.post(hub.url + "/publish", json={"topic": "c", "data": "x"}, headers={"Origin": A})
    assert r.status_code == 200 and r.headers[ACAO] == A and ACAC not in r.headers
    assert "origin" in r.headers.get("vary", "").lower()
    assert await stream_acao(hub.port, A) == A
    assert await stream_acao(hub.port, "https://c.example") == "https://c.example"
    # any other origin: no ACAO at all, never a reflection, never "*"
    for origin in (B, "null", A + ".evil.example", "http://a.example", A.upper() + "x"):
        r = await http.get(hub.url + "/topics", headers={"Origin": origin})
        assert ACAO not in r.headers, (origin, r.headers)
        r = await http.options(hub.url + "/publish", headers=preflight(origin))
        assert ACAO not in r.headers and r.status_code >= 400, (origin, r.headers)
        assert await stream_acao(hub.port, origin) is None
    # no Origin at all (same-origin or not a browser): nothing added either
    assert ACAO not in (await http.get(hub.url + "/topics")).headers


async def test_cors_credentials_with_explicit_origin(serve: Serve, http: httpx.AsyncClient) -> None:
    hub: ServeProcess = await serve("--cors-origins", A, "--cors-credentials")
    r = await http.options(hub.url + "/subscribe", headers=preflight(A, "GET"))
    assert r.status_code == 200 and r.headers[ACAO] == A and r.headers[ACAC] == "true"
    r = await http.get(hub.url + "/topics", headers={"Origin": A, "Cookie": "ssehub_token=abc"})
    assert r.headers[ACAO] == A and r.headers[ACAC] == "true"
    r = await http.get(hub.url + "/topics", headers={"Origin": B, "Cookie": "ssehub_token=abc"})
    assert ACAO not in r.headers


async def test_cors_wildcard_never_reflects(serve: Serve, http: httpx.AsyncClient) -> None:
    hub: ServeProcess = await serve("--cors-origins", "*")
    for origin in (A, B):
        r = await http.get(hub.url + "/topics", headers={"Origin": origin})
        assert r.headers[ACAO] == "*" and ACAC not in r.headers
        # not even for a request carrying cookies
        r = await http.get(hub.url + "/topics", headers={"Origin": origin, "Cookie": "ssehub_token=x"})
        assert r.headers[ACAO] == "*" and ACAC not in r.headers
        r = await http.options(hub.url + "/publish", headers=preflight(origin))
        assert r.status_code == 200 and r.headers[ACAO] == "*" and ACAC not in r.headers
        assert await stream_acao(hub.port, origin) == "*"


async def test_cors_wildcard_with_credentials_refuses_to_start() -> None:
    proc = await asyncio.create_subprocess_exec(
        SSEHUB, "serve", "--port", "0", "--cors-origins", "*", "--cors-credentials",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 2, (proc.returncode, out, err)
    assert b"configuration error" in err and b"cors_credentials" in err, err
    assert b"Uvicorn running" not in out + err
    # the same through the environment
    proc = await asyncio.create_subprocess_exec(
        SSEHUB, "serve", "--port", "0", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=clean_env(SSEHUB_CORS_ORIGINS=f"{A},*", SSEHUB_CORS_CREDENTIALS="true"))
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 2, (proc.returncode, out, err)


async def test_cors_preflight_needs_allowed_method(serve: Serve) -> None:
    hub: ServeProcess = await serve("--cors-origins", A)
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.options(hub.url + "/publish", headers=preflight(A, "PUT"))
        assert r.status_code == 400
