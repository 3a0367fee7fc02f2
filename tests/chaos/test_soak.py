"""Soak: the chaos scenarios at issue 10's sizes, and the two cases of the issue 20 runs in a row.

Marked slow (minutes each): ``pytest -m slow tests/chaos``. Each run is a fresh cluster; a
failing run fails with its whole report (see test_scenarios.py).
"""

from __future__ import annotations

import pytest

from emporion.testing.chaos.scenarios import SCENARIOS
from tests.chaos.conftest import ZK_SCENARIOS, run_checked

pytestmark = [pytest.mark.slow, pytest.mark.root]

REPEATS = 20


@pytest.mark.timeout(900)
@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.zk) if name in ZK_SCENARIOS else name
        for name in SCENARIOS
    ],
)
def test_scenario_at_full_size(name: str) -> None:
    run_checked(name, "full")


@pytest.mark.timeout(900)
@pytest.mark.parametrize("run", range(REPEATS))
def test_agent_crash_under_600_tasks_20_times(run: int) -> None:
    run_checked("agent_crash", "full")


@pytest.mark.zk
@pytest.mark.parametrize("run", range(REPEATS))
def test_leader_kill_with_sleep_10_tasks_20_times(run: int) -> None:
    run_checked("leader_kill_running", "full")
