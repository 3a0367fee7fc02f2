"""After a restart, a checkpointed launch whose command never ran (the agent died before its
launch helper ran anything): a command task is launched again, anything else fails to launch.

Chaos ``agent_crash``: a task whose launch was queued or just starting when the agent was
killed ended TASK_FAILED although nothing of it had run; a command task is still STAGING and
runs once if launched now.
"""

from __future__ import annotations

from pathlib import Path

from agent.checkpoint import CheckpointStore
from agent.core import events, handle
from agent.core.effects import LaunchContainer
from agent.core.model import command_executor_info
from protos.v1 import mesos_pb2
from tests.unit.agent.conftest import MakeAgent
from tests.unit.agent.helpers import (
    FW,
    executor_info,
    forwarded_statuses,
    framework_info,
    master_registered,
    recover,
    task_info,
)

NEVER = "the agent restarted while the container was being launched, before its command ran"


def checkpoint(tmp_path: Path) -> CheckpointStore:
    """Command task 'cmd' and custom executor 'ex' with task 'a', both recorded up to their
    launch (no container state, no update)."""
    store = CheckpointStore(tmp_path)
    store.write_boot_id("boot")
    info = mesos_pb2.AgentInfo(hostname="h")
    info.id.value = "agent-1"
    store.write_agent(info)
    store.write_framework(FW, framework_info(checkpoint=True))
    cmd = task_info("cmd")
    store.write_executor(FW, "cmd", "c-cmd", command_executor_info(FW, cmd))
    store.write_task(FW, "cmd", "c-cmd", cmd)
    store.write_executor(FW, "ex", "c-ex", executor_info())
    store.write_task(FW, "ex", "c-ex", task_info("a", command=None))
    return store


def test_a_command_task_that_never_started_is_launched_again(
    tmp_path: Path, make_agent: MakeAgent
) -> None:
    checkpoint(tmp_path)
    read = CheckpointStore(tmp_path).read()
    assert read.agent is not None
    state = make_agent(registered=False)
    assert recover(state, read.agent) == [("c-cmd", None), ("c-ex", None)]

    again = handle(state, events.ContainerNeverStarted("c-cmd", NEVER), 1.0)
    [launch] = [e for e in again if isinstance(e, LaunchContainer)]
    assert (launch.framework_id, launch.executor_id, launch.container_id) == (FW, "cmd", "c-cmd")
    assert launch.task_id == "cmd"
    assert launch.checkpoint
    assert forwarded_statuses(again) == []

    handle(state, events.ContainerNeverStarted("c-ex", NEVER), 1.0)
    handle(state, events.RecoveryDone(), 1.0)
    # Held while no session is open, sent once reregistered.
    [status] = forwarded_statuses(handle(state, master_registered("agent-1"), 1.5))
    assert (status.task_id.value, status.state) == ("a", mesos_pb2.TASK_FAILED)
    assert status.reason == mesos_pb2.TaskStatus.REASON_CONTAINER_LAUNCH_FAILED
    assert NEVER in status.message

    running = handle(state, events.ContainerLaunched("c-cmd", {"pid": 7}), 2.0)
    assert [(s.task_id.value, s.state) for s in forwarded_statuses(running)] == [
        ("cmd", mesos_pb2.TASK_RUNNING)
    ]
    assert state.faults == 0
