"""The pure parts of the fetcher, health checks and GC reach no I/O framework."""

from __future__ import annotations

import pytest

from tests.unit.test_architecture import IO_MODULES, transitive_imports

PURE = ("agent.health.policy", "agent.health.spec", "agent.fetcher.plan")


@pytest.mark.parametrize("module", PURE)
def test_pure_module_imports_no_io_framework(module: str) -> None:
    reached = transitive_imports(module)
    assert reached, f"{module} has no imports to check"
    bad = sorted(name for name in reached if name.split(".")[0] in IO_MODULES)
    assert bad == [], f"{module} reaches I/O modules: {bad}"
