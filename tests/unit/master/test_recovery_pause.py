"""A new leader makes no offers until the agents its registry admits have reregistered (or 80 %
of them and no more come), or until the agents' reregistration window closes
(master.allocator.pause, wired in ``Master.recover``)."""

from __future__ import annotations

from master.core import metrics_snapshot
from master.core.model import AgentPhase
from tests.unit.master.harness import FakeAgent, Harness


def _cluster(harness: Harness, count: int) -> list[FakeAgent]:
    return [harness.register_agent(hostname=f"host{i}") for i in range(count)]


def _paused_metric(harness: Harness) -> float:
    figures = metrics_snapshot(harness.master, now=harness.now, start_time=harness.now)
    return figures["allocator/recovery_paused"]


def _offered_agents(harness: Harness, framework_id: str) -> set[str]:
    return {o.agent_id.value for o in harness.offers(framework_id)}


def test_offers_wait_for_four_of_five_agents_and_a_quiet_interval(harness: Harness) -> None:
    agents = _cluster(harness, 5)
    new = harness.restart()
    pause = new.master.state.allocator.recovery_pause
    assert pause is not None
    assert (pause.expected, pause.wanted) == (5, 4)
    assert _paused_metric(new) == 1.0
    framework_id, _ = new.subscribe()
    for fake in agents[:4]:
        new.reregister_agent(fake.agent_id, hostname=fake.hostname)
        new.allocate()
    assert new.offers() == []  # 80 % are back, but they are still coming.
    new.advance(harness.config.allocation_interval)
    assert _paused_metric(new) == 1.0
    new.allocate()
    assert new.master.state.allocator.recovery_pause is None
    assert _paused_metric(new) == 0.0
    assert _offered_agents(new, framework_id) == {a.agent_id for a in agents[:4]}
    new.master.validate()


def test_the_last_agent_back_ends_the_pause(harness: Harness) -> None:
    agents = _cluster(harness, 3)
    new = harness.restart()
    framework_id, _ = new.subscribe()
    for fake in agents:
        new.reregister_agent(fake.agent_id, hostname=fake.hostname)
    assert new.master.state.allocator.recovery_pause is None
    new.allocate()
    assert _offered_agents(new, framework_id) == {a.agent_id for a in agents}


def test_the_reregistration_window_ends_the_pause(harness: Harness) -> None:
    agents = _cluster(harness, 5)
    new = harness.restart()
    framework_id, _ = new.subscribe()
    new.reregister_agent(agents[0].agent_id, hostname=agents[0].hostname)
    new.advance(harness.config.agent_reregister_timeout - 1)
    new.allocate()
    assert new.offers() == []
    new.advance(2)  # The others are unreachable now, and the pause is over.
    missing = new.master.agent(agents[1].agent_id)
    assert missing is not None
    assert missing.phase is AgentPhase.UNREACHABLE
    new.allocate()
    assert _offered_agents(new, framework_id) == {agents[0].agent_id}
    new.master.validate()


def test_a_fresh_master_does_not_pause(harness: Harness) -> None:
    assert harness.master.state.allocator.recovery_pause is None
    assert _paused_metric(harness) == 0.0
    framework_id, _ = harness.subscribe()
    agent = harness.register_agent()
    harness.allocate()
    assert _offered_agents(harness, framework_id) == {agent.agent_id}
