"""Fixtures: a real master process, and the agent tests' ``start_agent`` (real agent processes,
with their check that no process or cgroup leaks) registering with it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.agent.conftest import start_agent
from tests.integration.agent.raw_framework import MasterProcess

__all__ = ["master_address", "real_master", "start_agent"]


@pytest.fixture
def real_master(tmp_path: Path) -> Iterator[MasterProcess]:
    """``python -m master`` on port 0 (its default cap of tasks per ACCEPT included)."""
    master = MasterProcess(tmp_path / "master")
    yield master
    master.stop()


@pytest.fixture
def master_address(real_master: MasterProcess) -> str:
    """Agents started by ``start_agent`` register with the real master."""
    return real_master.address
