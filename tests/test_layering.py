"""Import rules between layers (ARCHITECTURE.md): arrows point down only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "ssehub"

# layer → modules (prefixes) it must never import
FORBIDDEN = {
    "wire": ["ssehub.core", "ssehub.brokers", "ssehub.asgi", "ssehub.relay", "ssehub.client",
             "ssehub.config", "starlette", "httpx", "redis", "uvicorn", "asyncio", "prometheus_client"],
    # counters below the web layer are plain numbers, read by asgi/metrics.py at scrape time
    "core": ["ssehub.brokers", "ssehub.asgi", "ssehub.relay", "ssehub.client", "starlette",
             "httpx", "redis", "uvicorn", "prometheus_client"],
    "brokers": ["ssehub.asgi", "ssehub.relay", "ssehub.client", "starlette", "httpx", "uvicorn",
                "prometheus_client"],
    "relay": ["ssehub.asgi", "ssehub.server", "ssehub.cli", "uvicorn", "prometheus_client"],
    "asgi": ["uvicorn", "ssehub.server", "ssehub.cli"],
    "errors.py": ["ssehub.", "starlette", "httpx"],
    "logs.py": ["ssehub.", "starlette", "httpx", "redis", "uvicorn", "prometheus_client"],
    "config.py": ["ssehub.core", "ssehub.asgi", "starlette", "httpx"],
    # the head/connection limits sit below the app: reusable by another front end
    "server_protocol.py": ["ssehub.asgi", "ssehub.core", "ssehub.relay", "ssehub.brokers", "starlette"],
    "client.py": ["ssehub.core", "ssehub.asgi", "ssehub.relay", "starlette", "redis"],
    "tokens.py": ["ssehub.asgi", "ssehub.relay", "ssehub.client", "ssehub.server", "ssehub.cli",
                  "starlette", "httpx", "redis", "uvicorn"],
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    rel = path.relative_to(SRC.parent).with_suffix("")
    package = list(rel.parts[:-1])  # the package a relative import is resolved against
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
                names = [f"{mod}.{a.name}" for a in node.names]
                found.add(mod)
                found.update(names)
            elif node.module:
                found.add(node.module)
    return found


def files_of(layer: str) -> list[Path]:
    target = SRC / layer
    return [target] if target.is_file() else sorted(target.rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_downwards(layer: str) -> None:
    files = files_of(layer)
    if (SRC / layer).exists():
        assert files, f"no modules found for layer {layer}"
    for path in files:
        for mod in imported_modules(path):
            for bad in FORBIDDEN[layer]:
                hit = mod == bad.rstrip(".") or mod.startswith(bad if bad.endswith(".") else bad + ".")
                if layer == "errors.py" and mod.startswith("ssehub.errors"):
                    hit = False
                assert not hit, f"{path.relative_to(SRC)} imports {mod} (forbidden in {layer})"


def test_wire_imports_only_the_standard_library_and_errors() -> None:
    for path in files_of("wire"):
        for mod in imported_modules(path):
            if mod.startswith("ssehub"):
                assert mod.startswith(("ssehub.wire", "ssehub.errors")), (path, mod)


def test_no_module_is_over_400_lines() -> None:
    """Python modules and the pages' own JavaScript modules (not the vendored libraries)."""
    js = [p for p in (SRC / "asgi" / "static").rglob("*.js") if "vendor" not in p.parts]
    assert js, "the pages' JavaScript modules were not found"
    for path in [*SRC.rglob("*.py"), *js]:
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines <= 400, f"{path.relative_to(SRC)} has {lines} lines: split it"
