"""Skips for the chaos suite: it needs root (real cgroups) and, for most scenarios, ZooKeeper.

The soak tests (``slow``: many minutes) run only when asked for by marker (``pytest -m slow
tests/chaos``) or with ``EMPORION_SOAK=1`` (tests/conftest.py skips them otherwise), so the
default suite stays a few minutes long.

Every chaos test starts its own cluster (:class:`emporion.testing.chaos.cluster.ChaosCluster`),
so nothing is shared between tests; the cluster cleans up after itself even when a test fails.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from emporion.testing.chaos.leaks import cgroup_mounts
from emporion.testing.chaos.runner import run_scenario
from emporion.testing.chaos.scenarios import SCENARIOS
from emporion.testing.zookeeper import ZooKeeperUnavailableError, find_zookeeper

ZK_SCENARIOS = frozenset(name for name, s in SCENARIOS.items() if s.cluster.get("zookeeper", True))
"""The scenarios whose masters run on ZooKeeper."""


def require_root() -> None:
    """Skip unless root with cgroups mounted (the agents must use real cgroups)."""
    if os.geteuid() != 0 or not cgroup_mounts():
        pytest.skip(f"real cgroups need root and mounted cgroups (euid {os.geteuid()})")


def require_zookeeper() -> None:
    """Skip where ZooKeeper cannot run (no Java or no server jar), saying why."""
    try:
        find_zookeeper()
    except ZooKeeperUnavailableError as error:
        pytest.skip(f"ZooKeeper unavailable: {error}")


def run_checked(name: str, size: str, overrides: dict[str, float] | None = None) -> dict[str, Any]:
    """Run scenario ``name``; fail with the whole report unless nothing was lost, missing or
    leaked."""
    require_root()
    if name in ZK_SCENARIOS:
        require_zookeeper()
    report = run_scenario(name, size, overrides)
    assert report["ok"], json.dumps(report, indent=1)
    assert report["tasks"] >= report["params"]["tasks"], json.dumps(report, indent=1)
    return report
