"""The browser pages: ``GET /`` (chat), ``GET /console`` (hub console) and ``/static/**``.

Pages and assets are plain files in ``static/`` (vanilla ES modules, no build step; the
third-party libraries are vendored in ``static/vendor/`` by ``scripts/vendor.mjs``). All URLs
in the pages are relative, so the app also works mounted under a prefix (``/hub/``).

Every response carries a strict Content-Security-Policy: scripts and styles only from this
origin (no inline code), no plugins, no framing, and Trusted Types enforced so that the only
way to turn a string into HTML is DOMPurify's policy.

Static files are served without directory listings (a directory URL is a 404) and without
following symbolic links: Starlette's ``StaticFiles(follow_symlink=False)`` still serves a link
that points *inside* the directory, so :class:`_StaticFiles` refuses any path with a link in it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

__all__ = ["CONTENT_SECURITY_POLICY", "STATIC_DIR", "page_routes"]

STATIC_DIR: Final = Path(__file__).with_name("static")

CONTENT_SECURITY_POLICY: Final = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types dompurify",
    ]
)

SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    # Revalidate on every load (ETag/Last-Modified make that cheap), so an upgrade shows at once.
    "Cache-Control": "no-cache",
}


class _StaticFiles(StaticFiles):
    """StaticFiles that never follows a symbolic link and never lists a directory."""

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        parts = [p for p in Path(path).parts if p not in ("", ".", os.sep, "/")]
        if any(p == ".." for p in parts):
            return "", None
        for directory in self.all_directories:
            current = os.fspath(directory)
            st: os.stat_result | None = None
            try:
                for part in parts:
                    current = os.path.join(current, part)
                    st = os.lstat(current)
                    if stat.S_ISLNK(st.st_mode):
                        return "", None  # a link anywhere on the way: refuse, don't look further
                if st is None:
                    st = os.lstat(current)  # the root itself (a directory: 404 below)
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError:
                return "", None
            return current, st
        return "", None

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(SECURITY_HEADERS)
        return response


def _page(path: Path) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return FileResponse(path, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)

    return endpoint


def page_routes(static_dir: str | os.PathLike[str] | None = None) -> list[BaseRoute]:
    """``GET /`` chat page, ``GET /console`` hub console, ``/static/**`` assets.

    ``static_dir`` replaces the packaged ``static/`` directory (tests, custom pages).
    """
    root = Path(static_dir) if static_dir is not None else STATIC_DIR
    return [
        Route("/", _page(root / "chat.html"), methods=["GET", "HEAD"], name="chat_page"),
        Route("/console", _page(root / "console.html"), methods=["GET", "HEAD"], name="console_page"),
        Mount("/static", app=_StaticFiles(directory=root, html=False), name="static"),
    ]
