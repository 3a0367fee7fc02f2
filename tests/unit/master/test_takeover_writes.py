"""What a new leader writes to the registry as it takes office: only what changes it.

Every effect waits behind a registry write, so a write that leaves the registry as it was only
delays the answers to agents and schedulers coming back to a new leader.
"""

from __future__ import annotations

from master.core import PersistRegistry
from master.registry import FrameworkRecord, PutFramework, RemoveFramework
from tests.unit.master.harness import Event, FakeAgent, Harness
from tests.unit.master.test_agents import running_task
from tests.unit.master.test_tasks import launch

GRACE = 600.0  # MasterConfig's default agent_reregister_timeout.


def writes(harness: Harness) -> list[PersistRegistry]:
    """The registry writes the harness's master asked for so far."""
    return [e for e in harness.effects if isinstance(e, PersistRegistry)]


def test_taking_office_writes_nothing_for_frameworks_that_were_subscribed(
    harness: Harness, agent: FakeAgent
) -> None:
    framework_id, _ = launch(harness, agent, "t1", failover_timeout=100)
    version = harness.registry.load().version
    restarted = harness.restart()
    assert writes(restarted) == []
    assert restarted.registry.load().version == version
    assert restarted.registry.load().frameworks[framework_id].disconnected_at is None
    fw = restarted.master.framework(framework_id)
    assert fw is not None
    assert not fw.connected
    assert fw.failover_deadline == restarted.now + GRACE


def test_resubscribing_unchanged_after_a_takeover_writes_nothing(
    harness: Harness, agent: FakeAgent
) -> None:
    framework_id, _ = launch(harness, agent, "t1", failover_timeout=100)
    restarted = harness.restart()
    restarted.reregister_agent(
        agent.agent_id, tasks=[running_task(framework_id, agent.agent_id, "t1")]
    )
    version = restarted.registry.load().version
    _, stream_id = restarted.subscribe(framework_id=framework_id, failover_timeout=100)
    assert writes(restarted) == []
    assert restarted.registry.load().version == version
    assert [e.type for e in restarted.events(framework_id)] == [Event.SUBSCRIBED]
    fw = restarted.master.framework(framework_id)
    assert fw is not None
    assert fw.connected
    assert fw.stream_id == stream_id


def test_resubscribing_with_a_new_info_writes_it(harness: Harness, agent: FakeAgent) -> None:
    framework_id, _ = launch(harness, agent, "t1", failover_timeout=100)
    restarted = harness.restart()
    restarted.subscribe(framework_id=framework_id, failover_timeout=200)
    [write] = writes(restarted)
    [operation] = write.operations
    assert isinstance(operation, PutFramework)
    record = restarted.registry.load().frameworks[framework_id]
    assert record.info.failover_timeout == 200
    assert record.disconnected_at is None


def test_resubscribing_after_a_disconnection_writes_it(harness: Harness, agent: FakeAgent) -> None:
    framework_id, stream_id = launch(harness, agent, "t1", failover_timeout=100)
    harness.close_stream(stream_id)
    assert harness.registry.load().frameworks[framework_id].disconnected_at == harness.now
    before = len(writes(harness))
    harness.subscribe(framework_id=framework_id, failover_timeout=100)
    assert len(writes(harness)) == before + 1
    assert harness.registry.load().frameworks[framework_id].disconnected_at is None


def test_a_second_takeover_gives_a_recovered_framework_its_grace_again(
    harness: Harness, agent: FakeAgent
) -> None:
    # Its scheduler was subscribed when the first leader failed; the second leader failed too
    # before the scheduler came back: masters failed, not the framework, so it is not torn down
    # (with failover_timeout 0 it would be at once if the first takeover had been recorded as
    # its disconnection).
    framework_id, _ = launch(harness, agent, "t1", failover_timeout=0)
    second = harness.restart()
    second.advance(30)
    third = second.restart("M3")
    fw = third.master.framework(framework_id)
    assert fw is not None
    assert fw.failover_deadline == third.now + GRACE
    assert third.to_agent(agent.agent_id, "shutdown_framework") == []
    third.subscribe(framework_id=framework_id, failover_timeout=0)
    assert writes(third) == []
    third.master.validate()


def test_a_framework_not_resubscribing_after_a_takeover_is_removed_and_that_is_written(
    harness: Harness, agent: FakeAgent
) -> None:
    framework_id, _ = launch(harness, agent, "t1", failover_timeout=0)
    restarted = harness.restart()
    restarted.advance(GRACE + 1)
    assert restarted.master.framework(framework_id) is None
    assert framework_id not in restarted.registry.load().frameworks
    assert any(isinstance(op, RemoveFramework) for w in writes(restarted) for op in w.operations)


def test_a_framework_adopted_from_an_agent_is_written(harness: Harness) -> None:
    agent = harness.register_agent()
    restarted = Harness(config=harness.config, now=harness.now)  # A registry that was lost.
    info = restarted.framework_info(failover_timeout=50)
    info.id.value = "F-lost"
    restarted.reregister_agent(
        agent.agent_id,
        tasks=[running_task("F-lost", agent.agent_id, "t1")],
        frameworks=[info],
    )
    record = restarted.registry.load().frameworks["F-lost"]
    assert record.disconnected_at == restarted.now


def test_only_records_the_registry_holds_are_left_out_of_a_write(harness: Harness) -> None:
    framework_id, _ = harness.subscribe(failover_timeout=100)
    fw = harness.master.framework(framework_id)
    assert fw is not None
    held = PutFramework(FrameworkRecord(fw.info, None))
    other = PutFramework(FrameworkRecord(fw.info, harness.now))
    state = harness.master.state
    state.persist(held)
    state.persist(held, other)
    state.persist(held)  # No longer what the registry holds once ``other`` is written.
    effects = harness.master.tick(harness.now)
    assert effects == [PersistRegistry((other,)), PersistRegistry((held,))]
