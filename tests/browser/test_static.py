"""The page routes without a browser: headers, static files, symlinks, vendored libraries."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from ssehub.asgi.pages import CONTENT_SECURITY_POLICY, STATIC_DIR, page_routes

VENDOR = STATIC_DIR / "vendor"


class Client:
    """A synchronous front for httpx.ASGITransport (these responses are all finite)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def request(self, method: str, path: str) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                return await client.request(method, path)

        return asyncio.run(go())

    def get(self, path: str) -> httpx.Response:
        return self.request("GET", path)

    def head(self, path: str) -> httpx.Response:
        return self.request("HEAD", path)


@pytest.fixture
def client() -> Client:
    return Client(Starlette(routes=page_routes()))


@pytest.fixture
def tmp_static(tmp_path: Path) -> Path:
    root = tmp_path / "static"
    (root / "sub").mkdir(parents=True)
    (root / "chat.html").write_text("<!doctype html><title>chat</title>")
    (root / "console.html").write_text("<!doctype html><title>console</title>")
    (root / "app.js").write_text("export {};\n")
    (root / "sub" / "inner.css").write_text("body{}\n")
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    os.symlink(secret, root / "outside-link.txt")  # points out of the directory
    os.symlink(root / "app.js", root / "inside-link.js")  # points inside: still a link
    os.symlink(root / "sub", root / "linked-dir")  # a linked directory
    return root


def test_pages_are_served_with_a_strict_csp(client: Client) -> None:
    for path, marker in (("/", "static/js/chat.js"), ("/console", "static/js/console.js")):
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert marker in response.text
        csp = response.headers["content-security-policy"]
        assert csp == CONTENT_SECURITY_POLICY
        assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert client.head(path).status_code == 200


def test_static_files_and_their_types(client: Client) -> None:
    for path, ctype in (
        ("/static/js/chat.js", "javascript"),
        ("/static/vendor/markdown-it.min.js", "javascript"),
        ("/static/vendor/purify.es.js", "javascript"),
        ("/static/vendor/highlight.min.js", "javascript"),
        ("/static/css/app.css", "text/css"),
        ("/static/favicon.svg", "image/svg+xml"),
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        assert ctype in response.headers["content-type"], (path, response.headers["content-type"])
        assert response.headers["x-content-type-options"] == "nosniff"


def test_no_directory_listing(client: Client) -> None:
    for path in ("/static/", "/static/js", "/static/js/", "/static/vendor/", "/static/vendor/LICENSES"):
        assert client.get(path).status_code == 404, path
    # "/static" itself is only redirected to "/static/" (by the router), which is a 404.
    response = client.get("/static")
    assert response.status_code == 404 or client.get(response.headers["location"]).status_code == 404


def test_no_path_traversal(client: Client) -> None:
    for path in ("/static/../pages.py", "/static/%2e%2e/pages.py", "/static/js/../../pages.py"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "page_routes" not in response.text


def test_symlinks_are_never_followed(tmp_static: Path) -> None:
    client = Client(Starlette(routes=page_routes(tmp_static)))
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/sub/inner.css").status_code == 200
    for path in ("/static/outside-link.txt", "/static/inside-link.js", "/static/linked-dir/inner.css",
                 "/static/linked-dir/", "/static/sub/"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "top secret" not in response.text


def test_vendored_libraries_are_checked_in_with_licences() -> None:
    manifest = json.loads((VENDOR / "VERSIONS.json").read_text())
    assert {"markdown-it", "dompurify", "@highlightjs/cdn-assets"} <= set(manifest["packages"])
    for name, info in manifest["files"].items():
        data = (VENDOR / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == info["sha256"], f"{name} differs from VERSIONS.json"
    licences = {p.name for p in (VENDOR / "LICENSES").iterdir()}
    for prefix in ("markdown-it--", "dompurify--", "highlightjs-cdn-assets--"):
        assert any(n.startswith(prefix) for n in licences), prefix


def test_pages_load_nothing_from_other_origins() -> None:
    """No CDN: every script, style and import is a relative URL to this server."""
    url = re.compile(r"""(?:src|href)\s*=\s*["']([^"'#]+)["']""")
    for page in ("chat.html", "console.html"):
        html = (STATIC_DIR / page).read_text()
        for ref in url.findall(html):
            assert not re.match(r"^(?:[a-z]+:)?//", ref), f"{page} loads {ref}"
    for js in (STATIC_DIR / "js").glob("*.js"):
        for spec in re.findall(r"""^\s*import\b[^'"]*["']([^"']+)["']""", js.read_text(), re.M):
            assert spec.startswith("./") or spec.startswith("../"), f"{js.name} imports {spec}"
