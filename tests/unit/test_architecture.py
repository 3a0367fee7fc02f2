"""Mechanical checks of the dependency rules in DESIGN.md.

* ``master``, ``agent`` and ``framework_sdk`` never import each other (they share ``protos``).
* ``protos`` imports none of our other packages.
* The sans-I/O cores never import grpc, asyncio, kazoo, fastapi or uvicorn, directly or through
  any of our own modules they import.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OUR_PACKAGES = ("protos", "master", "agent", "framework_sdk", "emporion")
INDEPENDENT = ("master", "agent", "framework_sdk")
IO_MODULES = frozenset({"grpc", "asyncio", "kazoo", "fastapi", "uvicorn", "starlette"})
# Sans-I/O core: modules (or whole packages) that must stay free of I/O frameworks.
SANS_IO_CORE = (
    "protos.resources",
    "protos._resource_values",
    "protos._resource_codec",
    "protos.leader_info",
    "protos.durations",
    "master.allocator",
    "master.core",
    "master.registry",
    "agent.core",
    "agent.isolation",
    "agent.health.policy",
    "agent.health.spec",
    "agent.fetcher.plan",
    "framework_sdk.session",
)


def module_files(dotted: str) -> list[Path]:
    """The source files of a module or of every module in a package."""
    base = ROOT.joinpath(*dotted.split("."))
    if base.is_dir():
        return sorted(p for p in base.rglob("*.py") if "_pb2" not in p.name)
    file = base.with_suffix(".py")
    return [file] if file.exists() else []


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imports_in_source(source: str, package: list[str]) -> Iterator[str]:
    """Every absolute module imported by ``source``; relative imports resolved in ``package``."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                prefix = ".".join([*base, node.module] if node.module else base)
            else:
                prefix = node.module or ""
            yield prefix
            for alias in node.names:
                yield f"{prefix}.{alias.name}"


def imports_of(path: Path) -> Iterator[str]:
    """Every absolute module name imported by one of our files."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    return imports_in_source(path.read_text(), package)


def resolve_file(dotted: str) -> Path | None:
    base = ROOT.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def transitive_imports(start: str) -> set[str]:
    """All modules reachable from ``start`` through imports of our own (non-generated) code."""
    seen_files: set[Path] = set()
    found: set[str] = set()
    pending = list(module_files(start))
    while pending:
        path = pending.pop()
        if path in seen_files:
            continue
        seen_files.add(path)
        for name in imports_of(path):
            found.add(name)
            if name.split(".")[0] in OUR_PACKAGES and "_pb2" not in name:
                target = resolve_file(name)
                if target is not None:
                    pending.append(target)
    return found


def all_python_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", INDEPENDENT)
def test_independent_packages_do_not_import_each_other(package: str) -> None:
    others = [p for p in INDEPENDENT if p != package]
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in all_python_files(package)
        for name in imports_of(path)
        if name.split(".")[0] in others
    ]
    assert offenders == []


def test_protos_imports_none_of_our_other_packages() -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in all_python_files("protos")
        for name in imports_of(path)
        if name.split(".")[0] in OUR_PACKAGES and name.split(".")[0] != "protos"
    ]
    assert offenders == []


@pytest.mark.parametrize("core", SANS_IO_CORE)
def test_sans_io_core_imports_no_io_framework(core: str) -> None:
    assert module_files(core), f"{core} has no source files"
    bad = sorted(n for n in transitive_imports(core) if n.split(".")[0] in IO_MODULES)
    assert bad == [], f"{core} reaches I/O modules: {bad}"


def test_checker_resolves_relative_and_absolute_imports() -> None:
    """The AST walk itself works, so the tests above can fail."""
    source = "import asyncio\nfrom grpc import aio\nfrom .sorter import DRF\nfrom .. import x\n"
    names = set(imports_in_source(source, ["master", "allocator"]))
    assert {"asyncio", "grpc", "grpc.aio", "master.allocator.sorter.DRF", "master.x"} <= names
