"""Framework lifecycle: failover timeout, teardown, UPDATE_FRAMEWORK, SUPPRESS and REVIVE, and
what survives a master restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from master.config import MasterConfig
from master.core import CallError, ErrorCode, FrameworkPhase
from master.registry import FileRegistry
from protos.resources import Resources
from protos.v1 import mesos_pb2
from tests.unit.master.harness import (
    Call,
    Capability,
    Event,
    FakeAgent,
    Harness,
    accept_call,
    command_task,
)
from tests.unit.master.test_agents import running_task
from tests.unit.master.test_tasks import allocated, launch


def test_disconnected_framework_is_torn_down_after_its_failover_timeout(
    harness: Harness, agent: FakeAgent
) -> None:
    framework_id, stream_id = launch(harness, agent, "t1", failover_timeout=30)
    harness.close_stream(stream_id)
    fw = harness.master.framework(framework_id)
    assert fw is not None
    assert fw.phase is FrameworkPhase.DISCONNECTED
    assert fw.failover_deadline == harness.now + 30
    assert harness.registry.load().frameworks[framework_id].disconnected_at == harness.now
    harness.advance(29)
    assert harness.master.framework(framework_id) is not None
    harness.advance(2)
    assert harness.master.framework(framework_id) is None
    (shutdown,) = harness.to_agent(agent.agent_id, "shutdown_framework")
    assert shutdown.shutdown_framework.framework_id.value == framework_id
    assert framework_id not in harness.registry.load().frameworks
    assert allocated(harness, agent.agent_id) == Resources.EMPTY


def test_failover_timeout_zero_tears_down_at_once(harness: Harness, agent: FakeAgent) -> None:
    framework_id, stream_id = launch(harness, agent, "t1")
    harness.close_stream(stream_id)
    assert harness.master.framework(framework_id) is None
    assert harness.to_agent(agent.agent_id, "shutdown_framework")


def test_disconnected_framework_offers_are_taken_back(harness: Harness, agent: FakeAgent) -> None:
    _, stream_id = harness.subscribe(failover_timeout=60)
    harness.allocate()
    assert harness.master.state.offers
    harness.close_stream(stream_id)
    assert harness.master.state.offers == {}
    other, _ = harness.subscribe(name="other")
    harness.allocate()
    assert len(harness.offers(other)) == 1  # The whole agent, given back.


def test_teardown_kills_tasks_and_removes_the_framework(harness: Harness, agent: FakeAgent) -> None:
    framework_id, stream_id = launch(harness, agent, "t1", "t2")
    harness.allocate()
    harness.clear()
    harness.call(framework_id, stream_id, Call(type=Call.TEARDOWN))
    (shutdown,) = harness.to_agent(agent.agent_id, "shutdown_framework")
    assert shutdown.shutdown_framework.framework_id.value == framework_id
    assert [c.stream_id for c in harness.closed_streams()] == [stream_id]
    assert harness.master.framework(framework_id) is None
    assert harness.master.state.offers == {}
    assert harness.master.agent(agent.agent_id).tasks == {}  # type: ignore[union-attr]
    assert framework_id not in harness.registry.load().frameworks
    with pytest.raises(CallError) as raised:
        harness.call(framework_id, stream_id, Call(type=Call.REVIVE, revive=Call.Revive()))
    assert raised.value.code is ErrorCode.FAILED_PRECONDITION


# -- UPDATE_FRAMEWORK -------------------------------------------------------------------------


def _update(
    harness: Harness, framework_id: str, *roles: str, suppressed: tuple[str, ...] = (), **kw: object
) -> Call:
    info = harness.framework_info(roles=roles, capabilities=[Capability.MULTI_ROLE], **kw)  # type: ignore[arg-type]
    info.id.value = framework_id
    call = Call(type=Call.UPDATE_FRAMEWORK)
    call.update_framework.framework_info.CopyFrom(info)
    call.update_framework.suppressed_roles.extend(suppressed)
    return call


def test_update_framework_rescinds_offers_of_removed_roles(harness: Harness) -> None:
    harness.register_agent("cpus:4;mem:4096;cpus(eng):2;cpus(ops):2")
    framework_id, stream_id = harness.subscribe(roles=("eng", "ops"))
    harness.allocate()
    by_role = {o.allocation_info.role: o.id.value for o in harness.offers(framework_id)}
    assert set(by_role) == {"eng", "ops"}
    harness.clear()
    harness.call(
        framework_id, stream_id, _update(harness, framework_id, "eng", "web", name="renamed")
    )
    (rescind,) = harness.events(framework_id, Event.RESCIND)
    assert rescind.rescind.offer_id.value == by_role["ops"]
    fw = harness.master.framework(framework_id)
    assert fw is not None
    assert fw.roles == {"eng", "web"}
    assert fw.info.name == "renamed"
    assert harness.registry.load().frameworks[framework_id].info.name == "renamed"


def test_update_framework_is_all_or_nothing(harness: Harness) -> None:
    framework_id, stream_id = harness.subscribe(roles=("eng", "ops"))
    bad = [
        (_update(harness, "other-0000", "eng"), "must be the framework's id"),
        (_update(harness, framework_id, "eng", checkpoint=True), "checkpoint cannot change"),
        (_update(harness, framework_id, "eng", suppressed=("ops",)), "not a role of the framework"),
        (Call(type=Call.UPDATE_FRAMEWORK), "update_framework is required"),
    ]
    for call, message in bad:
        with pytest.raises(CallError) as raised:
            harness.call(framework_id, stream_id, call)
        assert raised.value.code is ErrorCode.INVALID_ARGUMENT
        assert message in raised.value.message
    fw = harness.master.framework(framework_id)
    assert fw is not None
    assert fw.roles == {"eng", "ops"}


def test_update_framework_tells_agents_running_its_tasks(
    harness: Harness, agent: FakeAgent
) -> None:
    framework_id, stream_id = launch(harness, agent, "t1", roles=("eng", "ops"))
    harness.call(framework_id, stream_id, _update(harness, framework_id, "eng", "ops", name="v2"))
    (message,) = harness.to_agent(agent.agent_id, "update_framework")
    assert message.update_framework.framework_info.name == "v2"


# -- SUPPRESS, REVIVE -------------------------------------------------------------------------


def test_suppress_and_revive_per_role(harness: Harness) -> None:
    harness.register_agent("cpus:4;mem:4096;cpus(eng):1;mem(eng):64;cpus(ops):1;mem(ops):64")
    framework_id, stream_id = harness.subscribe(roles=("eng", "ops"))
    suppress = Call(type=Call.SUPPRESS)
    suppress.suppress.roles.append("eng")
    harness.call(framework_id, stream_id, suppress)
    harness.allocate()
    assert {o.allocation_info.role for o in harness.offers(framework_id)} == {"ops"}
    revive = Call(type=Call.REVIVE)
    revive.revive.roles.append("eng")
    harness.call(framework_id, stream_id, revive)
    harness.allocate()
    assert {o.allocation_info.role for o in harness.offers(framework_id)} == {"ops", "eng"}
    revive.revive.roles[0] = "nope"
    with pytest.raises(CallError, match=r"revive.roles\[0\]: 'nope' is not a role"):
        harness.call(framework_id, stream_id, revive)
    # Without a payload, as with no roles named: every role of the framework (Mesos's reading).
    harness.call(framework_id, stream_id, Call(type=Call.SUPPRESS))
    fw = harness.master.framework(framework_id)
    assert fw is not None
    assert fw.suppressed_roles == {"eng", "ops"}


def test_suppress_does_not_stop_status_updates(harness: Harness, agent: FakeAgent) -> None:
    framework_id, stream_id = launch(harness, agent, "t1")
    harness.call(framework_id, stream_id, Call(type=Call.SUPPRESS, suppress=Call.Suppress()))
    harness.status_update(agent, framework_id, "t1", mesos_pb2.TASK_RUNNING, None)
    assert len(harness.updates(framework_id)) == 1
    harness.allocate()
    assert len(harness.offers(framework_id)) == 1  # Only the first one, before SUPPRESS.


# -- master restart --------------------------------------------------------------------------


def test_restarted_master_honours_the_remaining_failover_deadline(
    harness: Harness, agent: FakeAgent
) -> None:
    framework_id, stream_id = launch(harness, agent, "t1", failover_timeout=100)
    harness.close_stream(stream_id)
    harness.advance(40)
    restarted = harness.restart()
    fw = restarted.master.framework(framework_id)
    assert fw is not None
    assert fw.phase is FrameworkPhase.DISCONNECTED
    assert fw.failover_deadline == pytest.approx(harness.now + 60)
    restarted.advance(59)
    assert restarted.master.framework(framework_id) is not None
    restarted.advance(2)
    assert restarted.master.framework(framework_id) is None
    assert framework_id not in restarted.registry.load().frameworks
    restarted.master.validate()


def test_restarted_master_keeps_framework_that_resubscribes(
    harness: Harness, agent: FakeAgent
) -> None:
    framework_id, _ = launch(harness, agent, "t1", failover_timeout=100)
    restarted = harness.restart()
    # The scheduler was subscribed when the master died: it gets at least the reregistration
    # grace period (10 minutes), not only its own 100 s.
    fw = restarted.master.framework(framework_id)
    assert fw is not None
    assert fw.failover_deadline == pytest.approx(restarted.now + 600)
    restarted.reregister_agent(
        agent.agent_id, tasks=[running_task(framework_id, agent.agent_id, "t1")]
    )
    restarted.subscribe(framework_id=framework_id, failover_timeout=100)
    restarted.advance(700)
    fw = restarted.master.framework(framework_id)
    assert fw is not None
    assert fw.connected
    assert "t1" in fw.tasks
    assert restarted.to_agent(agent.agent_id, "kill_task") == []
    restarted.allocate()
    offered = Resources.from_protos(restarted.offers(framework_id)[-1].resources)
    assert offered.get("cpus") == 3  # t1's cpu is in use.
    restarted.master.validate()


def test_agents_that_do_not_come_back_after_a_restart_become_unreachable(
    harness: Harness, agent: FakeAgent
) -> None:
    launch(harness, agent, "t1", failover_timeout=10_000, capabilities=[Capability.PARTITION_AWARE])
    restarted = harness.restart()
    restarted.advance(601)
    record = restarted.master.agent(agent.agent_id)
    assert record is not None
    assert record.unreachable_at is not None
    assert agent.agent_id in restarted.registry.load().unreachable
    restarted.master.validate()


def test_restart_on_a_file_registry(tmp_path: Path) -> None:
    config = MasterConfig(registry="file", work_dir=tmp_path)
    first = Harness(config=config, registry=FileRegistry(tmp_path))
    agent = first.register_agent()
    framework_id, stream_id = first.subscribe(failover_timeout=50)
    first.allocate()
    offer = first.offers(framework_id)[-1]
    first.call(
        framework_id, stream_id, accept_call([offer.id.value], [command_task("t", agent.agent_id)])
    )
    first.close_stream(stream_id)
    first.advance(10)
    second = Harness(
        config=config,
        registry=FileRegistry(tmp_path),
        now=first.now,
        master_id="M2",
    )
    fw = second.master.framework(framework_id)
    assert fw is not None
    assert fw.failover_deadline == pytest.approx(first.now + 40)
    assert second.master.agent(agent.agent_id) is not None
    second.master.validate()
