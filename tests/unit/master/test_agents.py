"""Agents: registration, pings, loss, return, reregistration with tasks, removal."""

from __future__ import annotations

from master.core import AgentPhase, DisconnectAgent
from protos.resources import Resources
from protos.v1 import agent_internal_pb2, mesos_pb2
from tests.unit.master.harness import (
    Capability,
    Event,
    FakeAgent,
    Harness,
    uuid_bytes,
)
from tests.unit.master.test_tasks import allocated, launch


def running_task(
    framework_id: str,
    agent_id: str,
    task_id: str,
    resources: str = "cpus:1;mem:128",
    role: str = "*",
) -> mesos_pb2.Task:
    task = mesos_pb2.Task(name=task_id, state=mesos_pb2.TASK_RUNNING)
    task.task_id.value = task_id
    task.framework_id.value = framework_id
    task.agent_id.value = agent_id
    task.resources.extend(Resources.parse(resources).to_protos(allocation_role=role))
    return task


def test_registration_assigns_an_id_and_tells_the_ping_schedule(harness: Harness) -> None:
    agent = harness.register_agent()
    assert agent.agent_id == "M-S0"
    (reply,) = harness.to_agent(agent.agent_id, "agent_registered")
    body = reply.agent_registered
    assert body.master_info.id == "M"
    # Pinged every two minutes (24 x --agent-ping-timeout), and the agent waits for a ping that
    # long plus the master's own deadline (3 x 5 s) before taking the master for lost.
    assert body.ping_interval_seconds == 120.0
    assert body.ping_timeout_seconds == 135.0
    assert harness.registry.load().agents[agent.agent_id].hostname == "host1"
    assert harness.register_agent(hostname="host2").agent_id == "M-S1"


def test_bad_registrations_are_refused(harness: Harness) -> None:
    message = agent_internal_pb2.AgentMessage()
    message.register_agent.agent_info.hostname = "h"
    message.register_agent.agent_info.resources.add(
        name="cpus", type=mesos_pb2.Value.SCALAR
    ).scalar.value = -2
    effects = harness._record(harness.master.agent_connected("c1", message, harness.now))
    assert "non-negative" in effects[0].message.error.message  # type: ignore[union-attr]
    assert isinstance(effects[1], DisconnectAgent)
    message = agent_internal_pb2.AgentMessage()
    message.pong.seq = 1
    effects = harness._record(harness.master.agent_connected("c2", message, harness.now))
    assert "must register or reregister" in effects[0].message.error.message  # type: ignore[union-attr]
    message = agent_internal_pb2.AgentMessage()
    message.register_agent.agent_info.hostname = ""
    effects = harness._record(harness.master.agent_connected("c3", message, harness.now))
    assert "hostname is required" in effects[0].message.error.message  # type: ignore[union-attr]
    assert harness.master.state.agents == {}


def test_pings_keep_an_answering_agent(harness: Harness, agent: FakeAgent) -> None:
    harness.advance(1200)
    # One ping every two minutes (the transport's keepalive checks the connection between).
    assert 9 <= len(harness.to_agent(agent.agent_id, "ping")) <= 10
    record = harness.master.agent(agent.agent_id)
    assert record is not None
    assert record.phase is AgentPhase.CONNECTED


def test_silent_agent_becomes_unreachable_and_its_tasks_lost(
    harness: Harness, agent: FakeAgent
) -> None:
    framework_id, _ = launch(harness, agent, "t1")
    pa_id, pa_stream = harness.subscribe(name="pa", capabilities=[Capability.PARTITION_AWARE])
    harness.allocate()
    from tests.unit.master.harness import accept_call, command_task

    offer = harness.offers(pa_id)[-1]
    harness.call(
        pa_id, pa_stream, accept_call([offer.id.value], [command_task("p1", agent.agent_id)], 0)
    )
    harness.clear()
    agent.responsive = False
    # Its connection stays up (an agent whose loop is wedged): found by the rare ping, within
    # the next two minutes.
    for _ in range(120):
        if harness.to_agent(agent.agent_id, "ping"):
            break
        harness.advance(1)
    assert harness.to_agent(agent.agent_id, "ping")
    harness.advance(14)
    record = harness.master.agent(agent.agent_id)
    assert record is not None
    assert record.phase is AgentPhase.CONNECTED
    assert harness.updates(framework_id) == []
    harness.advance(2)  # 5 s x 3 missed pings.
    assert harness.master.agent(agent.agent_id) is record
    assert record.unreachable_at is not None
    (lost,) = harness.updates(framework_id)
    assert lost.state == mesos_pb2.TASK_LOST
    assert lost.reason == mesos_pb2.TaskStatus.REASON_AGENT_REMOVED
    assert not lost.HasField("uuid")
    (unreachable,) = harness.updates(pa_id)
    assert unreachable.state == mesos_pb2.TASK_UNREACHABLE
    assert unreachable.unreachable_time.nanoseconds > 0
    for fid in (framework_id, pa_id):
        (failure,) = harness.events(fid, Event.FAILURE)
        assert failure.failure.agent_id.value == agent.agent_id
        assert not failure.failure.HasField("executor_id")
    assert agent.agent_id in harness.registry.load().unreachable
    assert [e.connection_id for e in harness.disconnected_agents()] == [agent.connection_id]
    fw = harness.master.framework(framework_id)
    assert fw is not None
    assert fw.tasks == {}
    pa = harness.master.framework(pa_id)
    assert pa is not None
    assert pa.tasks["p1"].state == mesos_pb2.TASK_UNREACHABLE


def test_unreachable_agent_returns_with_its_tasks(harness: Harness, agent: FakeAgent) -> None:
    framework_id, _ = launch(harness, agent, "t1")
    agent.responsive = False
    harness.advance(140)  # The rare ping (every 2 min), then 3 x 5 s unanswered.
    harness.clear()
    harness.reregister_agent(
        agent.agent_id, tasks=[running_task(framework_id, agent.agent_id, "t1")]
    )
    record = harness.master.agent(agent.agent_id)
    assert record is not None
    assert record.phase is AgentPhase.CONNECTED
    assert harness.to_agent(agent.agent_id, "kill_task") == []  # Not killed.
    fw = harness.master.framework(framework_id)
    assert fw is not None
    assert fw.tasks["t1"].state == mesos_pb2.TASK_RUNNING
    assert allocated(harness, agent.agent_id) == Resources.parse("cpus:1;mem:128")
    assert agent.agent_id in harness.registry.load().agents
    assert agent.agent_id not in harness.registry.load().unreachable


def test_disconnected_agent_rescinds_its_offers_and_keeps_its_tasks(
    harness: Harness, agent: FakeAgent
) -> None:
    framework_id, _ = launch(harness, agent, "t1")
    harness.allocate()
    offer = harness.offers(framework_id)[-1]
    harness.clear()
    harness.disconnect_agent(agent)
    (rescind,) = harness.events(framework_id, Event.RESCIND)
    assert rescind.rescind.offer_id.value == offer.id.value
    harness.allocate()
    assert harness.offers(framework_id) == []
    fw = harness.master.framework(framework_id)
    assert fw is not None
    assert "t1" in fw.tasks
    # It comes back in time: nothing lost.
    harness.reregister_agent(
        agent.agent_id, tasks=[running_task(framework_id, agent.agent_id, "t1")]
    )
    harness.advance(30)
    assert harness.updates(framework_id) == []


def test_disconnected_agent_that_stays_away_becomes_unreachable(
    harness: Harness, agent: FakeAgent
) -> None:
    harness.disconnect_agent(agent)
    harness.advance(16)
    record = harness.master.agent(agent.agent_id)
    assert record is not None
    assert record.phase is AgentPhase.UNREACHABLE


def test_reregistration_reports_unknown_tasks_and_missing_ones(
    harness: Harness, agent: FakeAgent
) -> None:
    framework_id, _ = launch(harness, agent, "t1", "t2")
    harness.status_update(agent, framework_id, "t2", mesos_pb2.TASK_RUNNING, uuid_bytes(7))
    harness.clear()
    # The agent runs t1 and a task the master never heard of; t2 (which ran) is missing.
    tasks = [
        running_task(framework_id, agent.agent_id, "t1"),
        running_task(framework_id, agent.agent_id, "t9", "cpus:0.5;mem:10"),
    ]
    agent, _ = harness.reregister_agent(agent.agent_id, tasks=tasks)
    (reply,) = harness.to_agent(agent.agent_id, "agent_reregistered")
    (reconcile,) = reply.agent_reregistered.reconciliations
    assert reconcile.framework_id.value == framework_id
    assert [s.task_id.value for s in reconcile.statuses] == ["t2"]
    fw = harness.master.framework(framework_id)
    assert fw is not None
    assert set(fw.tasks) == {"t1", "t2", "t9"}
    assert allocated(harness, agent.agent_id) == Resources.parse("cpus:2.5;mem:266")
    # The agent answers for t2.
    harness.status_update(agent, framework_id, "t2", mesos_pb2.TASK_DROPPED, uuid_bytes(1))
    assert allocated(harness, agent.agent_id) == Resources.parse("cpus:1.5;mem:138")


def test_reregistration_on_a_new_connection_replaces_the_old_one(
    harness: Harness, agent: FakeAgent
) -> None:
    new, _ = harness.reregister_agent(agent.agent_id)
    assert [e.connection_id for e in harness.disconnected_agents()] == [agent.connection_id]
    # Messages on the old connection are ignored; its end does not disconnect the agent.
    assert harness.disconnect_agent(agent) == []
    record = harness.master.agent(agent.agent_id)
    assert record is not None
    assert record.connection_id == new.connection_id


def test_tasks_of_a_torn_down_framework_are_shut_down_at_reregistration(
    harness: Harness, agent: FakeAgent
) -> None:
    framework_id, stream_id = launch(harness, agent, "t1")
    harness.disconnect_agent(agent)
    from tests.unit.master.harness import Call

    harness.call(framework_id, stream_id, Call(type=Call.TEARDOWN))
    harness.clear()
    harness.reregister_agent(
        agent.agent_id, tasks=[running_task(framework_id, agent.agent_id, "t1")]
    )
    (message,) = harness.to_agent(agent.agent_id, "shutdown_framework")
    assert message.shutdown_framework.framework_id.value == framework_id
    assert allocated(harness, agent.agent_id) == Resources.EMPTY


def test_unregistered_agent_is_forgotten_and_its_tasks_lost(
    harness: Harness, agent: FakeAgent
) -> None:
    framework_id, _ = launch(harness, agent, "t1")
    message = agent_internal_pb2.AgentMessage()
    message.unregister_agent.message = "decommissioned"
    harness.agent_send(agent, message)
    (status,) = harness.updates(framework_id)
    assert status.state == mesos_pb2.TASK_LOST
    assert "decommissioned" in status.message
    assert harness.master.agent(agent.agent_id) is None
    assert agent.agent_id not in harness.registry.load().agents
    assert harness.events(framework_id, Event.FAILURE)


def test_update_resources_changes_the_total(harness: Harness, agent: FakeAgent) -> None:
    framework_id, _ = harness.subscribe()
    harness.allocate()
    harness.clear()
    message = agent_internal_pb2.AgentMessage()
    message.update_resources.update_total = True
    message.update_resources.total.extend(Resources.parse("cpus:8;mem:8192").to_protos())
    harness.agent_send(agent, message)
    assert harness.events(framework_id, Event.RESCIND)
    harness.allocate()
    assert Resources.from_protos(harness.offers(framework_id)[-1].resources) == Resources.parse(
        "cpus:8;mem:8192"
    )


def test_registration_keeps_checkpointed_reservations(harness: Harness) -> None:
    agent = harness.register_agent("cpus:4;mem:4096", checkpointed="cpus(eng[dynamic]):1")
    record = harness.master.agent(agent.agent_id)
    assert record is not None
    assert record.total == Resources.parse("cpus:3;mem:4096;cpus(eng[dynamic]):1")
    assert Resources.from_protos(harness.registry.load().reservations[agent.agent_id]) == (
        Resources.parse("cpus(eng[dynamic]):1")
    )


def test_a_launch_that_never_reached_the_agent_is_sent_again(
    harness: Harness, agent: FakeAgent
) -> None:
    """A command task still STAGING that the reregistering agent does not report never reached
    it (the agent records a task before anything of it runs): the master sends its RunTask
    again rather than have the agent answer TASK_LOST for a task that never ran."""
    framework_id, _ = launch(harness, agent, "t1", "t2")
    harness.status_update(agent, framework_id, "t1", mesos_pb2.TASK_RUNNING, uuid_bytes(1))
    harness.disconnect_agent(agent)
    harness.clear()
    tasks = [running_task(framework_id, agent.agent_id, "t1")]
    agent, _ = harness.reregister_agent(agent.agent_id, tasks=tasks)
    (reply,) = harness.to_agent(agent.agent_id, "agent_reregistered")
    assert not reply.agent_reregistered.reconciliations
    runs = harness.to_agent(agent.agent_id, "run_task")
    assert [m.run_task.task.task_id.value for m in runs] == ["t2"]
    assert runs[0].run_task.framework_id.value == framework_id
    kinds = [m.WhichOneof("payload") for m in harness.to_agent(agent.agent_id)]
    assert kinds.index("agent_reregistered") < kinds.index("run_task")
    fw = harness.master.framework(framework_id)
    assert fw is not None
    assert fw.tasks["t2"].state == mesos_pb2.TASK_STAGING
    assert not harness.updates(framework_id)  # Nothing lost, nothing to tell.
