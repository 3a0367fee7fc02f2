"""A kill -9 at any point of a launch's checkpoint writes leaves nothing or a complete task.

Chaos ``agent_crash`` F1c: the restarted agent warned ``executor.info is missing`` and answered
the master's reconciliation with TASK_LOST "Task unknown to the agent". The core emits a
launch's checkpoint effects parents first (framework, executor, task) and the launch after
them; each file is written to a temporary file and renamed. This replays a RunTask's effects
on a real store and cuts them at every point — between two writes, and inside a write after
its directories and temporary file exist but before the rename — then reads the checkpoint as
a restarted agent does: either the task is unknown and nothing of it was launched (the
master's RunTask is then legitimately unknown, Mesos's answer), or it is recovered whole.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.checkpoint import CheckpointStore, apply_checkpoint_effect, paths
from agent.core import handle
from agent.core.effects import (
    CheckpointExecutor,
    CheckpointFramework,
    CheckpointTask,
    Effect,
    LaunchContainer,
)
from protos.v1 import mesos_pb2
from tests.unit.agent.conftest import MakeAgent
from tests.unit.agent.helpers import FW, from_master, run_task, task_info


def _launch_effects(make_agent: MakeAgent) -> list[Effect]:
    state = make_agent()
    effects = handle(state, from_master(run_task=run_task(task_info("t"), checkpoint=True)), 1.0)
    kinds = [
        type(e)
        for e in effects
        if isinstance(e, (CheckpointFramework, CheckpointExecutor, CheckpointTask, LaunchContainer))
    ]
    # Parents first, and nothing launched before the task is recorded.
    assert kinds == [CheckpointFramework, CheckpointExecutor, CheckpointTask, LaunchContainer]
    return effects


def _torn_write(store: CheckpointStore, effect: Effect) -> None:
    """What a write cut short by a kill leaves: its directories and a temporary file."""
    agent = store.agent_id or ""
    match effect:
        case CheckpointFramework(framework_id):
            target = paths.framework_info_path(store.work_dir, agent, framework_id)
        case CheckpointExecutor(framework_id, executor_id):
            target = paths.executor_info_path(store.work_dir, agent, framework_id, executor_id)
        case CheckpointTask(framework_id, executor_id, container_id, info):
            target = paths.task_info_path(
                store.work_dir,
                agent,
                framework_id,
                executor_id,
                container_id,
                task_id=info.task_id.value,
            )
        case _:
            return
    target.parent.mkdir(parents=True, exist_ok=True)
    (target.parent / f".{target.name}.tmp.{os.getpid()}").write_bytes(b"partial")


@pytest.mark.parametrize("torn", [False, True], ids=["between-writes", "inside-a-write"])
def test_every_crash_point_leaves_nothing_or_the_whole_task(
    make_agent: MakeAgent, tmp_path: Path, torn: bool
) -> None:
    effects = _launch_effects(make_agent)
    checkpoints = [
        e
        for e in effects
        if isinstance(e, (CheckpointFramework, CheckpointExecutor, CheckpointTask))
    ]
    for cut in range(len(checkpoints) + 1):
        work = tmp_path / f"{torn}-{cut}"
        store = CheckpointStore(work)
        store.write_boot_id("boot")
        info = mesos_pb2.AgentInfo(hostname="h")
        info.id.value = "agent-1"
        store.write_agent(info)
        for effect in checkpoints[:cut]:
            assert apply_checkpoint_effect(store, effect)
        if torn and cut < len(checkpoints):
            _torn_write(store, checkpoints[cut])
        read = CheckpointStore(work).read()
        assert read.agent is not None
        tasks = [
            task.info.task_id.value
            for framework in read.agent.frameworks
            for executor in framework.executors
            for task in executor.tasks
        ]
        if cut < len(checkpoints):
            # The launch (after the last write) never happened: nothing to recover.
            assert tasks == [], (cut, torn)
        else:
            [framework] = read.agent.frameworks
            assert framework.framework_id == FW
            [executor] = framework.executors
            assert executor.info.executor_id.value == "t"
            assert tasks == ["t"]
