"""``validate()``: the master's invariants, checked by tests after every step.

The central one is resource accounting: on every agent, what the allocator holds allocated to
each (framework, role) equals that framework's outstanding offers there plus its live tasks and
executors there. With the allocator's own invariants (allocated plus free equals total), that
makes every offered resource come back exactly once, and no resource both offered and free.
"""

from __future__ import annotations

from master.core.model import AgentPhase, FrameworkPhase
from master.core.state import MasterState
from protos.resources import Resources

__all__ = ["MasterInvariantError", "check"]


class MasterInvariantError(AssertionError):
    """MasterInvariantError lists every broken invariant of the master's state."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("master invariants broken:\n  " + "\n  ".join(problems))
        self.problems = problems


def _accounting(state: MasterState, problems: list[str]) -> None:
    allocator = state.allocator
    known = set(allocator.agent_ids())
    for agent_id, agent in state.agents.items():
        if agent.in_allocator != (agent_id in known):
            problems.append(f"agent {agent_id}: in_allocator is {agent.in_allocator}")
            continue
        if not agent.in_allocator:
            continue
        holders: list[tuple[str, str, Resources]] = [
            (o.framework_id, o.role, o.resources) for o in map(state.offers.get, agent.offers) if o
        ]
        holders += [
            (t.framework_id, t.role, t.resources) for t in agent.tasks.values() if t.allocated
        ]
        holders += [
            (e.framework_id, e.role, e.resources) for e in agent.executors.values() if e.allocated
        ]
        expected: dict[tuple[str, str], Resources] = {}
        for framework_id, role, resources in holders:
            key = (framework_id, role)
            expected[key] = expected.get(key, Resources.EMPTY) + resources
        expected = {k: v for k, v in expected.items() if v}
        actual = {k: v for k, v in allocator.agent_allocation(agent_id).items() if v}
        if expected != actual:
            problems.append(
                f"agent {agent_id}: allocator holds {actual}, offers+tasks+executors are {expected}"
            )
        if agent.total != allocator.agent_total(agent_id):
            problems.append(f"agent {agent_id}: total {agent.total} is not the allocator's")
    for agent_id in known - set(state.agents):
        problems.append(f"allocator knows agent {agent_id} that the master does not")


def _indexes(state: MasterState, problems: list[str]) -> None:
    for offer_id, offer in state.offers.items():
        fw = state.frameworks.get(offer.framework_id)
        agent = state.agents.get(offer.agent_id)
        if fw is None or offer_id not in fw.offers or not fw.connected:
            problems.append(f"offer {offer_id}: framework {offer.framework_id} missing or away")
        if agent is None or offer_id not in agent.offers or not agent.connected:
            problems.append(f"offer {offer_id}: agent {offer.agent_id} missing or not connected")
        if (offer.expires_at is None) != (("offer", offer_id) not in state.timers):
            problems.append(f"offer {offer_id}: timeout timer out of step")
    for fw in state.frameworks.values():
        for offer_id in fw.offers:
            if offer_id not in state.offers:
                problems.append(f"framework {fw.framework_id}: stale offer {offer_id}")
        for task_id, task in fw.tasks.items():
            if task.task_id != task_id or task.framework_id != fw.framework_id:
                problems.append(f"framework {fw.framework_id}: task {task_id} misfiled")
            agent = state.agents.get(task.agent_id)
            if agent is None:
                problems.append(f"task {task_id}: unknown agent {task.agent_id}")
            elif agent.tasks.get((fw.framework_id, task_id)) is not task:
                problems.append(f"task {task_id}: not in agent {task.agent_id}'s tasks")
            if task.allocated and (task.terminal or agent is None or not agent.in_allocator):
                problems.append(f"task {task_id}: allocated while terminal or agent out")
        for (agent_id, executor_id), executor in fw.executors.items():
            agent = state.agents.get(agent_id)
            if agent is None or agent.executors.get((fw.framework_id, executor_id)) is not executor:
                problems.append(f"executor {executor_id}: not on agent {agent_id}")
    for agent in state.agents.values():
        for offer_id in agent.offers:
            if offer_id not in state.offers:
                problems.append(f"agent {agent.agent_id}: stale offer {offer_id}")
        for (framework_id, task_id), task in agent.tasks.items():
            fw = state.frameworks.get(framework_id)
            if fw is None or fw.tasks.get(task_id) is not task:
                problems.append(f"agent {agent.agent_id}: task {task_id} of unknown framework")
        for (framework_id, executor_id), executor in agent.executors.items():
            fw = state.frameworks.get(framework_id)
            if fw is None or fw.executors.get((agent.agent_id, executor_id)) is not executor:
                problems.append(f"agent {agent.agent_id}: executor {executor_id} not in framework")


def _phases(state: MasterState, problems: list[str]) -> None:
    for stream_id, framework_id in state.streams.items():
        fw = state.frameworks.get(framework_id)
        if fw is None or fw.stream_id != stream_id:
            problems.append(f"stream {stream_id}: not the stream of framework {framework_id}")
    for fw in state.frameworks.values():
        fid = fw.framework_id
        if fw.phase is FrameworkPhase.CONNECTED:
            if fw.stream_id is None or state.streams.get(fw.stream_id) != fid:
                problems.append(f"framework {fid}: connected without a stream")
            if ("heartbeat", fid) not in state.timers:
                problems.append(f"framework {fid}: connected without heartbeats")
        else:
            if fw.stream_id is not None or fw.offers:
                problems.append(f"framework {fid}: disconnected with a stream or offers")
            if ("failover", fid) not in state.timers:
                problems.append(f"framework {fid}: disconnected without a failover timer")
        if fid in state.completed:
            problems.append(f"framework {fid}: both active and completed")
    recovering = 0
    for connection_id, agent_id in state.connections.items():
        agent = state.agents.get(agent_id)
        if agent is None or agent.connection_id != connection_id:
            problems.append(f"connection {connection_id}: not the connection of {agent_id}")
    for agent in state.agents.values():
        aid = agent.agent_id
        if agent.phase is AgentPhase.CONNECTED:
            if agent.connection_id is None or not agent.in_allocator:
                problems.append(f"agent {aid}: connected without a connection or allocator entry")
        elif agent.connection_id is not None:
            problems.append(f"agent {aid}: {agent.phase.value} with a connection")
        away = agent.phase in (AgentPhase.UNREACHABLE, AgentPhase.RECOVERING)
        if away and (agent.in_allocator or agent.offers or agent.executors):
            problems.append(f"agent {aid}: {agent.phase.value} but holds resources")
        if agent.phase is AgentPhase.RECOVERING:
            recovering += 1
    if recovering != state.recovering_agents:
        problems.append(f"{recovering} agents recovering, counted {state.recovering_agents}")


def check(state: MasterState) -> list[str]:
    """Every broken invariant, as a sentence (empty when all hold)."""
    problems: list[str] = []
    if state.pending_releases:
        problems.append(f"releases not handed to the allocator: {state.pending_releases}")
    try:
        state.allocator.validate()
    except AssertionError as error:
        problems.append(f"allocator: {error}")
    _accounting(state, problems)
    _indexes(state, problems)
    _phases(state, problems)
    return problems
