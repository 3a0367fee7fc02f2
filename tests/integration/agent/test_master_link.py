"""The agent's session with the master: retries, reconnection, pings, shutdown."""

from __future__ import annotations

from pathlib import Path

import pytest

from protos.v1 import agent_internal_pb2 as ai
from protos.v1 import mesos_pb2
from tests.integration.agent.conftest import StartAgent
from tests.integration.agent.fake_master import FakeMaster
from tests.integration.agent.support import (
    command_task,
    processes_with,
    run_task,
)


def copies(master: FakeMaster, uuid: bytes) -> int:
    return sum(1 for u in master.updates() if u.status.uuid == uuid)


def test_an_unacknowledged_update_is_retried(master: FakeMaster, start_agent: StartAgent) -> None:
    start_agent()
    master.send(run_task(command_task("t1", "true")))
    running = master.wait_update("t1", mesos_pb2.TASK_RUNNING)
    master.wait_for(lambda: copies(master, running.status.uuid) >= 2, "a retry")
    # FINISHED waits behind the unacknowledged RUNNING; the ack releases it.
    assert not [u for u in master.updates() if u.status.state == mesos_pb2.TASK_FINISHED]
    assert {u.latest_state for u in master.updates()} <= {
        mesos_pb2.TASK_RUNNING,
        mesos_pb2.TASK_FINISHED,
    }
    master.acknowledge(running)
    master.wait_and_ack("t1", mesos_pb2.TASK_FINISHED)


def test_a_reconnecting_agent_reregisters_and_resends_its_update(
    master: FakeMaster, start_agent: StartAgent
) -> None:
    agent = start_agent(["--status-update-retry-min", "1hrs", "--status-update-retry-max", "1hrs"])
    master.send(run_task(command_task("t1", "sleep 1000")))
    running = master.wait_update("t1", mesos_pb2.TASK_RUNNING)
    first = master.session()
    # This fake master lacks ConnectBatched, as an older master would: the agent uses Connect.
    assert not first.batched
    assert master.batched_refused >= 1
    first.close()
    master.wait_for(lambda: len(master.sessions) == 2, "the agent to reconnect")
    second = master.session()
    assert not second.batched
    # Asked once, then remembered. (Counted in the agent's log: on a shared host, a stranger's
    # agent may knock on this fake master's port too.)
    assert agent.log().count("lacks ConnectBatched; using Connect") == 1
    assert second.hello.HasField("reregister_agent")
    assert second.agent_id == first.agent_id
    [task] = second.hello.reregister_agent.tasks
    assert task.status_update_uuid == running.status.uuid
    master.wait_for(lambda: master.updates(second), "the update again")
    assert master.updates(second)[0].status.uuid == running.status.uuid


def test_shutdown_agent_kills_everything_and_exits(
    master: FakeMaster, start_agent: StartAgent, tmp_path: Path
) -> None:
    agent = start_agent()
    marker = f"shutdown-agent-{tmp_path.name}"
    master.send(run_task(command_task("t1", f"sleep 1000 # {marker}"), checkpoint=True))
    master.wait_and_ack("t1", mesos_pb2.TASK_RUNNING)
    message = ai.MasterMessage()
    message.shutdown_agent.message = "removed by the operator"
    master.send(message)
    assert agent.process.wait(60) == 0
    assert processes_with(marker) == []
    assert not (agent.work_dir / "meta" / "agents" / "latest").exists()


@pytest.mark.parametrize("master", [True], indirect=True, ids=["batched"])
def test_messages_ready_together_go_out_in_one_batch(
    master: FakeMaster, start_agent: StartAgent
) -> None:
    start_agent(["--status-update-retry-min", "1hrs", "--status-update-retry-max", "1hrs"])
    first = master.session()
    assert first.batched
    assert first.hello.HasField("register_agent")
    # Two tasks whose RUNNING updates are not acknowledged.
    first.send(run_task(command_task("t1", "sleep 1000")))
    first.send(run_task(command_task("t2", "sleep 1000")))
    master.wait_update("t1", mesos_pb2.TASK_RUNNING)
    master.wait_update("t2", mesos_pb2.TASK_RUNNING)
    first.close()
    master.wait_for(lambda: len(master.sessions) == 2, "the agent to reconnect")
    second = master.session()
    assert second.batched
    assert second.hello.HasField("reregister_agent")
    # Reregistered, the agent resends both heads at once: one write, right after its hello.
    master.wait_for(lambda: len(master.updates(second)) == 2, "both updates again")
    assert second.batch_sizes[:2] == [1, 2]
