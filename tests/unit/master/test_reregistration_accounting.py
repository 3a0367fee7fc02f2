"""Resource accounting when an agent reports tasks that ended while it was away (issue 10).

Two faults found from outside had one root: a task the master first learns of from a
reregistration, already terminal, was recorded as holding resources in the allocator while the
allocator had never been given them. The agent's retried terminal update then "released" them,
and ``HierarchicalAllocator.recover_resources`` refused (``framework ... does not hold ...``);
the refused release stayed queued, so every later batch from any agent failed the same way.

* After a leader failover, the agent reregisters with the new leader reporting a task that
  finished during the election, its TASK_FINISHED not yet acknowledged.
* After an agent crash under load, the master had marked it unreachable and forgotten its tasks
  (TASK_LOST for a framework that is not partition-aware); the restarted agent reports tasks that
  finished meanwhile.
"""

from __future__ import annotations

import pytest

from master.core.model import AgentPhase
from protos.resources import Resources
from protos.v1 import mesos_pb2
from tests.unit.master.harness import (
    Call,
    FakeAgent,
    Harness,
    accept_call,
    command_task,
    uuid_bytes,
)


def _running_task(harness: Harness, agent: FakeAgent, task_id: str) -> tuple[str, str]:
    framework_id, stream_id = harness.subscribe(failover_timeout=300, checkpoint=True)
    harness.allocate()
    offer = harness.offers(framework_id)[-1]
    harness.call(
        framework_id,
        stream_id,
        accept_call([offer.id.value], [command_task(task_id, agent.agent_id, "cpus:0.6;mem:96")]),
    )
    harness.status_update(agent, framework_id, task_id, mesos_pb2.TASK_RUNNING, uuid_bytes(1))
    return framework_id, stream_id


def _reported(framework_id: str, agent_id: str, task_id: str, state: int) -> mesos_pb2.Task:
    task = mesos_pb2.Task(name=task_id, state=state)  # type: ignore[arg-type]
    task.task_id.value = task_id
    task.framework_id.value = framework_id
    task.agent_id.value = agent_id
    task.resources.extend(Resources.parse("cpus:0.6;mem:96").to_protos())
    task.status_update_state = state  # type: ignore[assignment]
    task.status_update_uuid = uuid_bytes(2)
    return task


@pytest.mark.parametrize("resend_in_batch", [False, True])
def test_a_task_finished_during_a_failover_is_released_once(
    harness: Harness, agent: FakeAgent, resend_in_batch: bool
) -> None:
    framework_id, _ = _running_task(harness, agent, "t1")
    new = harness.restart()
    new.subscribe(harness.framework_info(failover_timeout=300, checkpoint=True), framework_id)
    fake, _ = new.reregister_agent(
        agent.agent_id,
        tasks=[_reported(framework_id, agent.agent_id, "t1", mesos_pb2.TASK_FINISHED)],
    )
    # The agent resends the unacknowledged terminal update to the new leader.
    new.status_update(fake, framework_id, "t1", mesos_pb2.TASK_FINISHED, uuid_bytes(2))
    if resend_in_batch:
        new.status_update(fake, framework_id, "t1", mesos_pb2.TASK_FINISHED, uuid_bytes(2))
    assert [s.state for s in new.updates(framework_id)][-1] == mesos_pb2.TASK_FINISHED
    new.allocate()
    # All of the agent's resources are offered again: nothing stays counted for the task.
    offered = Resources.from_protos(new.offers(framework_id)[-1].resources)
    assert offered.get("cpus") == 4
    new.master.validate()


def test_a_restarted_agent_reporting_tasks_the_master_forgot(
    harness: Harness, agent: FakeAgent
) -> None:
    framework_id, _ = _running_task(harness, agent, "t1")
    harness.disconnect_agent(agent)
    harness.advance(16)  # Pings missed: unreachable; t1 is TASK_LOST and forgotten.
    record = harness.master.agent(agent.agent_id)
    assert record is not None
    assert record.phase is AgentPhase.UNREACHABLE
    fake, _ = harness.reregister_agent(
        agent.agent_id,
        tasks=[_reported(framework_id, agent.agent_id, "t1", mesos_pb2.TASK_FINISHED)],
    )
    harness.status_update(fake, framework_id, "t1", mesos_pb2.TASK_FINISHED, uuid_bytes(2))
    # Another agent's batch afterwards is unaffected.
    other = harness.register_agent(hostname="host2")
    harness.status_update(other, framework_id, "nope", mesos_pb2.TASK_RUNNING, uuid_bytes(3))
    harness.allocate()
    harness.master.validate()


def test_a_refused_release_is_dropped_not_retried_by_every_later_batch(
    harness: Harness, agent: FakeAgent, caplog: pytest.LogCaptureFixture
) -> None:
    """Defence in depth: should the accounting ever go wrong again, one refused release is
    logged once and dropped; it does not stay queued to fail every later input."""
    framework_id, _ = _running_task(harness, agent, "t1")
    harness.validate_each_step = False
    bogus = Resources.parse("cpus:3")
    harness.master.state.pending_releases[(framework_id, agent.agent_id, "*")] = bogus
    # Any batch flushes: the bogus release is refused, logged and dropped.
    harness.status_update(agent, framework_id, "unknown", mesos_pb2.TASK_RUNNING, uuid_bytes(3))
    assert "releasing cpus:3" in caplog.text
    assert not harness.master.state.pending_releases
    harness.validate_each_step = True
    harness.status_update(agent, framework_id, "t1", mesos_pb2.TASK_FINISHED, uuid_bytes(2))
    harness.master.validate()


def test_a_task_reported_by_another_agent_is_released_on_the_first(
    harness: Harness, agent: FakeAgent
) -> None:
    """The report wins: the task moves to the agent that reports it, and what it held on the
    agent the master had it on is given back there (not leaked in the allocator)."""
    framework_id, _ = _running_task(harness, agent, "t1")
    second = harness.register_agent(hostname="host2")
    report = _reported(framework_id, second.agent_id, "t1", mesos_pb2.TASK_RUNNING)
    harness.disconnect_agent(second)
    harness.reregister_agent(second.agent_id, hostname="host2", tasks=[report])
    harness.master.validate()
    fw = harness.master.framework(framework_id)
    assert fw is not None
    assert fw.tasks["t1"].agent_id == second.agent_id


def test_a_framework_torn_down_while_its_agent_was_away_stays_down_after_a_failover(
    harness: Harness, agent: FakeAgent
) -> None:
    """Found by the simulator (seed 41066): the agent misses the ShutdownFramework, the master
    fails over, and the agent comes back with the framework's task. The new leader knows from
    the registry that the framework was torn down: it tells the agent to shut it down instead
    of adopting it (which kept the task running until a failover timeout)."""
    framework_id, stream_id = _running_task(harness, agent, "t1")
    harness.disconnect_agent(agent)
    harness.call(framework_id, stream_id, Call(type=Call.TEARDOWN))
    new = harness.restart()
    assert new.master.framework(framework_id) is None
    report = _reported(framework_id, agent.agent_id, "t1", mesos_pb2.TASK_RUNNING)
    info = harness.framework_info(failover_timeout=300, checkpoint=True)
    info.id.value = framework_id
    new.reregister_agent(agent.agent_id, tasks=[report], frameworks=[info])
    shutdowns = new.to_agent(agent.agent_id, "shutdown_framework")
    assert [m.shutdown_framework.framework_id.value for m in shutdowns] == [framework_id]
    assert new.master.framework(framework_id) is None
    new.master.validate()
