"""Every third-party module the installed packages import is a runtime dependency.

``pip install .`` without extras must give a working ``emporion``: a module imported only
because a dev extra happened to bring it (``httpx`` once) fails on a user's machine. The check is
static (every ``import`` in the wheel's packages, mapped to its distribution through the
installed metadata), so it runs in a second; ``tests/integration/packaging`` installs the wheel
for real.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGES = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]

DEV_ONLY = {
    # protos/codegen.py is `make codegen`'s tool, for developers who change the .proto files.
    "grpc_tools": "protos/codegen.py",
}
"""Modules the packages may import without declaring them, and the only file allowed to."""


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> set[str]:
    names = set()
    for spec in PYPROJECT["project"]["dependencies"]:
        match = re.match(r"[A-Za-z0-9_.-]+", spec)
        assert match, spec
        names.add(normalize(match.group(0)))
    return names


def third_party_imports() -> dict[str, set[str]]:
    """Top-level module -> files importing it, over the wheel's packages."""
    ours = set(PACKAGES)
    found: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.partition(".")[0]
                    if top not in ours and top not in sys.stdlib_module_names:
                        found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_imported_distribution_is_declared() -> None:
    distributions = metadata.packages_distributions()
    wanted = declared()
    missing = []
    for module, files in sorted(third_party_imports().items()):
        if module in DEV_ONLY:
            assert files == {DEV_ONLY[module]}, f"{module} imported outside {DEV_ONLY[module]}"
            continue
        dists = {normalize(d) for d in distributions.get(module, [])}
        assert dists, f"{module} (imported by {sorted(files)[0]}) is not installed here"
        if not dists & wanted:
            missing.append(f"{module} ({', '.join(sorted(dists))}): {', '.join(sorted(files))}")
    assert not missing, "imported but not in [project.dependencies]:\n" + "\n".join(missing)


def test_the_check_sees_the_imports_it_must() -> None:
    found = third_party_imports()
    assert {"grpc", "google", "httpx", "kazoo", "fastapi"} <= set(found)
    assert "agent/health/probes.py" in found["httpx"]
