"""Debian's Chromium for Playwright: where it is, how it is started, and the one check that
skips locally but fails in CI when it (or the playwright package) is missing."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "require_chromium"]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def require_chromium() -> str:
    """The Chromium path; skip locally, fail when ``CI`` is set, if it cannot be driven."""
    missing = None
    if not Path(CHROMIUM).exists():
        missing = f"{CHROMIUM} is missing (install Debian's chromium package)"
    elif importlib.util.find_spec("playwright") is None:
        missing = "playwright (the Python package) is not installed"
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(missing + ": CI must run the browser tests", pytrace=False)
        pytest.skip(missing)
    return CHROMIUM
