"""The dependency rule of DESIGN.md, checked on every import statement in the tree."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"api", "channels", "marketing", "lending_core", "integrations", "infra", "server", "migrations"}

# package -> top-level modules it must never import
FORBIDDEN = {
    "infra": OURS - {"infra"},
    "lending_core": {"api", "channels", "marketing", "integrations", "server", "sanic", "sanic_ext", "redis", "httpx", "requests", "wechatpy", "fakeredis"},
    "channels": {"api", "marketing", "server"},
    "marketing": {"api", "channels", "server"},
    # integrations implement the ports of the other packages: see test_integrations_import_only_ports
    "integrations": {"api", "server"},
    "api": {"server", "integrations"},
}


def imported_names(path: Path) -> set[str]:
    """Full dotted names of the modules a file imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def imported_modules(path: Path) -> set[str]:
    return {name.split(".")[0] for name in imported_names(path)}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_respects_the_dependency_rule(package):
    offences = []
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = imported_modules(path) & FORBIDDEN[package]
        if bad:
            offences.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not offences, "\n".join(offences)


def test_integrations_import_only_ports_and_plumbing():
    # An integration implements an interface; it must not reach into the services behind it.
    offences = []
    for path in sorted((ROOT / "integrations").rglob("*.py")):
        for name in imported_names(path):
            top = name.split(".")[0]
            if top in {"lending_core", "channels", "marketing"} and not name.endswith(".ports"):
                offences.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offences, "\n".join(offences)


def test_nothing_but_the_settings_reads_the_environment():
    readers = [
        str(path.relative_to(ROOT))
        for package in OURS
        for path in (ROOT / package).rglob("*.py")
        if "os.environ" in path.read_text(encoding="utf-8") or "os.getenv" in path.read_text(encoding="utf-8")
    ]
    assert readers == ["infra/settings.py"]


def test_the_checker_sees_imports():
    # Guards the guard: a file that imports sanic must be reported.
    sample = ROOT / "tests" / "test_architecture.py"
    assert "ast" in imported_modules(sample)
