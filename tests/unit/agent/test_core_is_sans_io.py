"""The agent's core stays free of I/O frameworks (until the shared architecture test lists it)."""

from __future__ import annotations

from tests.unit.test_architecture import IO_MODULES, transitive_imports


def test_agent_core_imports_no_io_framework() -> None:
    reached = transitive_imports("agent.core")
    assert {"agent.core.dispatch", "agent.core.state", "agent.core.launches"} <= reached
    assert sorted(n for n in reached if n.split(".")[0] in IO_MODULES) == []
