"""The chaos harness itself: its counts must see what they claim to see.

A leak of each kind is made on purpose and must be found (and swept); a real cluster runs a
task that fails, one that finishes and one that never ends, and the recording framework must
call them lost, settled and missing; duplicate terminal updates are counted as such.
"""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
from pathlib import Path

import pytest

from agent.isolation.selection import default_run_dir
from agent.runtime.main import isolation_root_name
from emporion.testing.chaos.cluster import ChaosCluster
from emporion.testing.chaos.framework import RecordingFramework
from emporion.testing.chaos.leaks import cgroup_mounts, find_leaks, sweep
from emporion.testing.chaos.loop_thread import LoopThread
from emporion.testing.chaos.runner import UnknownScenarioError, scenario_params
from protos.v1 import mesos_pb2
from tests.chaos.conftest import require_root


@pytest.mark.root
def test_leaks_of_every_kind_are_found_and_swept() -> None:
    require_root()
    base = Path(tempfile.mkdtemp(prefix="emporion-chaos-test-")).resolve()
    work = base / "agent0"
    root_name = isolation_root_name(work)
    mount = next(m for m in cgroup_mounts() if (m / "cgroup.procs").exists())
    cgroup = mount / root_name / "c1"
    cgroup.mkdir(parents=True)
    run_dir = default_run_dir(root_name) / "c1"
    run_dir.mkdir(parents=True)
    process = subprocess.Popen(["sleep", "300"], env={"CHAOS_TEST_BASE": str(base)})
    try:
        leaks = find_leaks(base, [work], settle=0.2)
        assert leaks.processes == [process.pid]
        assert leaks.cgroups == [str(cgroup)]
        assert leaks.run_dirs == [str(run_dir)]
        assert leaks.total == 3
        sweep(base, [work])
        assert process.wait(10) != 0
        assert not (mount / root_name).exists()
        assert not default_run_dir(root_name).exists()
        assert find_leaks(base, [work], settle=0).total == 0
    finally:
        process.kill()
        process.wait()
        sweep(base, [work])
        base.rmdir()


def _status(
    task_id: str, state: mesos_pb2.TaskState.ValueType, uuid: bytes = b""
) -> mesos_pb2.TaskStatus:
    status = mesos_pb2.TaskStatus(state=state, uuid=uuid)
    status.task_id.value = task_id
    return status


def test_duplicate_and_unexpected_terminal_updates_are_counted() -> None:
    async def body() -> dict[str, object]:
        framework = RecordingFramework("127.0.0.1:1", "dup", 3, "true")
        framework._record(_status("dup-0", mesos_pb2.TASK_RUNNING, b"a"))
        framework._record(_status("dup-0", mesos_pb2.TASK_FINISHED, b"b"))
        framework._record(_status("dup-0", mesos_pb2.TASK_FINISHED, b"b"))  # resent
        framework._record(_status("dup-1", mesos_pb2.TASK_LOST, b"c"))
        answer = _status("dup-2", mesos_pb2.TASK_FINISHED)
        answer.reason = mesos_pb2.TaskStatus.REASON_RECONCILIATION
        framework._record(answer)  # the master's answer to a RECONCILE: not a delivery
        dropped = _status("dup-1", mesos_pb2.TASK_DROPPED, b"d")
        dropped.reason = mesos_pb2.TaskStatus.REASON_RECONCILIATION
        framework._record(dropped)  # an agent's update (it has a uuid): a delivery
        await framework.client.close()
        return framework.summary()

    summary = asyncio.run(body())
    assert summary["duplicate_terminal_updates"] == 2
    assert summary["tasks_with_duplicates"] == 2
    assert summary["tasks_lost"] == 1
    assert summary["lost_reasons"] == {"TASK_LOST (REASON_COMMAND_EXECUTOR_FAILED: )": 1}
    assert summary["lost_examples"] == {
        "dup-1": [
            "TASK_LOST (REASON_COMMAND_EXECUTOR_FAILED: )",
            "TASK_DROPPED (REASON_RECONCILIATION: )",
        ]
    }
    assert summary["terminal_missing"] == 1
    assert summary["missing_examples"] == {"dup-2": "agent ?, never launched: no update"}


def test_a_real_job_is_judged_task_by_task() -> None:
    """Standalone master, one agent (real cgroups as root): a failing task is lost, a task
    that never ends is missing, a finishing one is neither; after teardown nothing leaks."""
    with ChaosCluster(zookeeper=False, agents=1) as cluster:
        loop = LoopThread()
        try:
            framework = loop.query(
                lambda: RecordingFramework(cluster.master_url, "judge", 3, "true")
            )
            framework.commands.update({"judge-1": "exit 3", "judge-2": "sleep 3600"})
            loop.run(framework.start(), 60)
            tasks = framework.tasks

            def judged() -> bool:
                running = tasks["judge-2"].states[-1:] == [mesos_pb2.TASK_RUNNING]
                return running and tasks["judge-0"].settled and tasks["judge-1"].settled

            assert loop.wait_for(judged, 60)
            summary = loop.query(framework.summary)
            loop.run(framework.close(), 30)
        finally:
            loop.close()
    assert summary["tasks"] == 3
    assert summary["tasks_lost"] == 1
    assert list(summary["lost_examples"]) == ["judge-1"]  # type: ignore[call-overload]
    assert summary["terminal_missing"] == 1
    assert list(summary["missing_examples"]) == ["judge-2"]  # type: ignore[call-overload]
    assert summary["terminal_states"] == {"TASK_FAILED": 1, "TASK_FINISHED": 1}
    assert cluster.leaks is not None
    assert cluster.leaks.total == 0, cluster.leaks
    assert not cluster.base_dir.exists()


def test_bad_scenario_names_and_parameters_are_refused_by_name() -> None:
    with pytest.raises(UnknownScenarioError, match="unknown scenario 'nope'; known: leader_kills"):
        scenario_params("nope")
    with pytest.raises(UnknownScenarioError, match="unknown size 'huge'"):
        scenario_params("agent_crash", "huge")
    with pytest.raises(UnknownScenarioError, match="'agent_crash' has no parameter 'kills'"):
        scenario_params("agent_crash", "ci", {"kills": 1})
    assert scenario_params("agent_crash", "full", {"sleep": 1})["tasks"] == 600
