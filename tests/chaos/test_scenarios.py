"""The chaos scenarios of issue 10 at CI size: real ZooKeeper, masters, agents (real cgroups)
and a checkpointing framework; a fault each; nothing may be lost, missing or leaked.

Each test fails with the scenario's whole report (what was lost, the master's answer about
every missing task, the first error lines of every process's log). The full sizes are in
test_soak.py; ``python -m bench.chaos`` prints the same reports with the time figures.
"""

from __future__ import annotations

import pytest

from tests.chaos.conftest import run_checked

pytestmark = pytest.mark.root


@pytest.mark.zk
def test_three_successive_leader_kills_during_one_job() -> None:
    report = run_checked("leader_kills", "ci")
    assert len(report["elected_s"]) == 3


def test_an_agent_crash_under_load() -> None:
    report = run_checked("agent_crash", "ci")
    # The crash came in the middle of the job, not after it.
    assert 0 < report["settled_at_crash"] < report["tasks"]


@pytest.mark.zk
def test_a_leader_kill_with_tasks_running() -> None:
    run_checked("leader_kill_running", "ci")


def test_killed_task_process_trees_end_failed_once() -> None:
    report = run_checked("executor_kill", "ci")
    assert report["terminal_states"]["TASK_FAILED"] == report["params"]["kill"]
    assert report["duplicate_terminal_updates"] == 0


@pytest.mark.zk
def test_the_leaders_zookeeper_session_expires() -> None:
    run_checked("zk_session_expired", "ci")


@pytest.mark.zk
def test_zookeeper_down_and_back() -> None:
    run_checked("zk_outage", "ci")


def test_a_standalone_master_restarted_on_its_work_dir() -> None:
    run_checked("master_restart", "ci")
