"""RECONCILE: implicit and explicit, for every case Mesos distinguishes."""

from __future__ import annotations

import pytest

from master.core import CallError
from protos.v1 import mesos_pb2
from tests.unit.master.harness import Call, Capability, FakeAgent, Harness, uuid_bytes
from tests.unit.master.test_tasks import launch

RECONCILIATION = mesos_pb2.TaskStatus.REASON_RECONCILIATION


def reconcile(*tasks: tuple[str, str | None]) -> Call:
    call = Call(type=Call.RECONCILE)
    call.reconcile.SetInParent()
    for task_id, agent_id in tasks:
        item = call.reconcile.tasks.add()
        item.task_id.value = task_id
        if agent_id is not None:
            item.agent_id.value = agent_id
    return call


def test_implicit_reconciliation_answers_for_every_task(harness: Harness, agent: FakeAgent) -> None:
    framework_id, stream_id = launch(harness, agent, "t1", "t2")
    harness.status_update(agent, framework_id, "t1", mesos_pb2.TASK_RUNNING, uuid_bytes(1))
    harness.clear()
    harness.call(framework_id, stream_id, reconcile())
    statuses = {s.task_id.value: s for s in harness.updates(framework_id)}
    assert {k: s.state for k, s in statuses.items()} == {
        "t1": mesos_pb2.TASK_RUNNING,
        "t2": mesos_pb2.TASK_STAGING,
    }
    for status in statuses.values():
        assert status.reason == RECONCILIATION
        assert status.source == mesos_pb2.TaskStatus.SOURCE_MASTER
        assert not status.HasField("uuid")
        assert status.agent_id.value == agent.agent_id


def test_explicit_reconciliation_of_a_known_task_gives_the_delivered_state(
    harness: Harness, agent: FakeAgent
) -> None:
    framework_id, stream_id = launch(harness, agent, "t1")
    harness.status_update(
        agent,
        framework_id,
        "t1",
        mesos_pb2.TASK_RUNNING,
        uuid_bytes(1),
        latest_state=mesos_pb2.TASK_FINISHED,
    )
    harness.clear()
    harness.call(framework_id, stream_id, reconcile(("t1", None)))
    (status,) = harness.updates(framework_id)
    assert status.state == mesos_pb2.TASK_RUNNING  # What the scheduler is being told, as Mesos.


@pytest.mark.parametrize(
    ("partition_aware", "expected"), [(True, mesos_pb2.TASK_GONE), (False, mesos_pb2.TASK_LOST)]
)
def test_unknown_task_on_a_registered_agent(
    harness: Harness, agent: FakeAgent, partition_aware: bool, expected: int
) -> None:
    caps = [Capability.PARTITION_AWARE] if partition_aware else []
    framework_id, stream_id = harness.subscribe(capabilities=caps)
    harness.call(framework_id, stream_id, reconcile(("ghost", agent.agent_id)))
    (status,) = harness.updates(framework_id)
    assert (status.state, status.reason) == (expected, RECONCILIATION)


def test_unknown_task_on_an_unreachable_agent(harness: Harness, agent: FakeAgent) -> None:
    framework_id, stream_id = harness.subscribe(capabilities=[Capability.PARTITION_AWARE])
    agent.responsive = False
    harness.advance(140)  # The rare ping (every 2 min), then 3 x 5 s unanswered.
    harness.clear()
    harness.call(framework_id, stream_id, reconcile(("ghost", agent.agent_id)))
    (status,) = harness.updates(framework_id)
    assert status.state == mesos_pb2.TASK_UNREACHABLE
    assert status.unreachable_time.nanoseconds > 0


def test_task_of_a_partition_aware_framework_on_an_unreachable_agent(
    harness: Harness, agent: FakeAgent
) -> None:
    framework_id, stream_id = launch(
        harness, agent, "t1", capabilities=[Capability.PARTITION_AWARE]
    )
    agent.responsive = False
    harness.advance(140)  # The rare ping (every 2 min), then 3 x 5 s unanswered.
    harness.clear()
    harness.call(framework_id, stream_id, reconcile())
    (status,) = harness.updates(framework_id)
    assert status.state == mesos_pb2.TASK_UNREACHABLE
    assert status.reason == RECONCILIATION


def test_unknown_task_on_an_unknown_or_gone_agent(harness: Harness) -> None:
    framework_id, stream_id = harness.subscribe(capabilities=[Capability.PARTITION_AWARE])
    harness.master.state.gone_agents["M-S42"] = harness.now
    harness.call(framework_id, stream_id, reconcile(("a", "M-S41"), ("b", "M-S42"), ("c", None)))
    assert [s.state for s in harness.updates(framework_id)] == [
        mesos_pb2.TASK_UNKNOWN,
        mesos_pb2.TASK_GONE_BY_OPERATOR,
        mesos_pb2.TASK_UNKNOWN,
    ]


def test_no_answer_while_agents_have_not_reregistered(harness: Harness, agent: FakeAgent) -> None:
    framework_id, _ = launch(harness, agent, "t1", failover_timeout=1000)
    restarted = harness.restart()
    framework_id, stream_id = restarted.subscribe(framework_id=framework_id, failover_timeout=1000)
    restarted.clear()
    restarted.call(framework_id, stream_id, reconcile(("t1", agent.agent_id), ("t1", None)))
    assert restarted.updates(framework_id) == []
    restarted.call(framework_id, stream_id, reconcile(("t1", "M-S999")))
    assert [s.state for s in restarted.updates(framework_id)] == [mesos_pb2.TASK_LOST]


def test_reconcile_checks_its_fields(harness: Harness) -> None:
    framework_id, stream_id = harness.subscribe()
    with pytest.raises(CallError, match="reconcile is required"):
        harness.call(framework_id, stream_id, Call(type=Call.RECONCILE))
    with pytest.raises(CallError, match=r"reconcile.tasks\[0\].task_id is required"):
        harness.call(framework_id, stream_id, reconcile(("", None)))
