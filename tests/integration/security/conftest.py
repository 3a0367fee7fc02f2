"""Fixtures for the penetration suite: a fake master, real agent processes, real cgroups.

The agent fixtures are the agent integration tests' (``tests/integration/agent``), with their
check that no process or cgroup outlives a test. Work directories live in a directory every
user may traverse (not list), so a task switched to ``nobody`` reaches its sandbox by its
absolute path as it would on a real agent (pytest's own temporary directories are 0700).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.agent.conftest import master, master_address, start_agent

__all__ = ["master", "master_address", "start_agent"]


@pytest.fixture
def work_dir() -> Iterator[Path]:
    """A fresh agent work directory that users other than root can traverse."""
    parent = Path(tempfile.mkdtemp(prefix="emporion-security-"))
    parent.chmod(0o711)
    yield parent / "work"
    shutil.rmtree(parent, ignore_errors=True)
