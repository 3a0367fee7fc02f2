"""The operator's steering calls: TEARDOWN, UPDATE_WEIGHTS, UPDATE_QUOTA, MARK_AGENT_GONE.

They come from the v1 operator API (``POST /api/v1``) and go through the master's one state
owner like every other input (:class:`~master.core.master.Master` has a method for each). Each
checks everything first and raises :class:`~master.core.errors.CallError` naming the field and
what is wrong, changing nothing; then it changes the state, persists what the registry keeps,
and leaves the effects in ``state.out``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from master.allocator.quota import make_quota
from master.core.agents import _agent_lost, _lose_tasks, _take_out
from master.core.errors import CallError, ErrorCode, invalid, shown
from master.core.frameworks import remove_framework
from master.core.model import AgentPhase
from master.core.state import MasterState, log
from master.registry.state import MarkAgentGone, UpdateQuota, UpdateWeights
from protos.resources import validate_role
from protos.v1 import quota_pb2

__all__ = ["QuotaChange", "mark_agent_gone", "teardown", "update_quota", "update_weights"]

OPERATOR_TEARDOWN = "torn down by the operator"
"""Why a framework the operator tore down is gone (its completed record says so)."""


@dataclass(frozen=True, slots=True)
class QuotaChange:
    """QuotaChange is one role's new quota: amounts by resource name (empty both: remove)."""

    role: str
    guarantees: Mapping[str, float]
    limits: Mapping[str, float]


def teardown(state: MasterState, framework_id: str, now: float) -> None:
    """TEARDOWN: remove a framework, killing its tasks (refused if it is not registered)."""
    if not framework_id:
        raise invalid("teardown.framework_id is required")
    fw = state.frameworks.get(framework_id)
    if fw is None:
        if framework_id in state.completed:
            raise CallError(
                ErrorCode.FAILED_PRECONDITION,
                f"teardown.framework_id: framework {framework_id} was already torn down",
            )
        raise CallError(
            ErrorCode.NOT_FOUND,
            f"teardown.framework_id: framework {shown(framework_id)} is not registered",
        )
    remove_framework(state, fw, now, OPERATOR_TEARDOWN)


def update_weights(state: MasterState, weights: Sequence[tuple[str, float]]) -> None:
    """UPDATE_WEIGHTS: set role weights (positive, finite; one entry per role)."""
    if not weights:
        raise invalid("update_weights.weight_infos: at least one weight is required")
    seen: set[str] = set()
    for i, (role, weight) in enumerate(weights):
        where = f"update_weights.weight_infos[{i}]"
        try:
            validate_role(role)
        except ValueError as error:
            raise invalid(f"{where}.role: {error}") from None
        if role in seen:
            raise invalid(f"{where}.role: role {role!r} is listed twice")
        seen.add(role)
        if not (math.isfinite(weight) and weight > 0):
            raise invalid(f"{where}.weight: must be a positive number, got {weight!r}")
    changed = dict(weights)
    state.allocator.update_weights(changed)
    state.persist(UpdateWeights(changed))
    state.allocation_wanted = True
    log.info("operator set weights %s", changed)


def update_quota(state: MasterState, changes: Sequence[QuotaChange], *, force: bool) -> None:
    """UPDATE_QUOTA: set (or, with no amounts, remove) the quota of each role, all or none.

    A limit below what the role already consumes is refused (FAILED_PRECONDITION) unless
    ``force``, as in Mesos.
    """
    if not changes:
        raise invalid("update_quota.quota_configs: at least one quota config is required")
    allocator = state.allocator
    seen: set[str] = set()
    for i, change in enumerate(changes):
        where = f"update_quota.quota_configs[{i}]"
        if change.role in seen:
            raise invalid(f"{where}.role: role {change.role!r} is listed twice")
        seen.add(change.role)
        try:
            quota = make_quota(change.role, dict(change.guarantees), dict(change.limits))
        except ValueError as error:
            raise invalid(f"{where}: {error}") from None
        if force:
            continue
        consumed = allocator.quota_consumed(change.role)
        over = {
            name: (consumed.get(name, 0.0), limit / 1000)
            for name, limit in quota.limits.items()
            if round(consumed.get(name, 0.0) * 1000) > limit
        }
        if over:
            detail = ", ".join(f"{n} {have:g} > {lim:g}" for n, (have, lim) in sorted(over.items()))
            raise CallError(
                ErrorCode.FAILED_PRECONDITION,
                f"{where}.limits: role {change.role!r} already consumes more than the new limit"
                f" ({detail}); set force to apply it anyway",
            )
    for change in changes:
        allocator.update_quota(
            change.role, dict(change.guarantees), dict(change.limits), force=True
        )
        config: quota_pb2.QuotaConfig | None = None
        if any(change.guarantees.values()) or change.limits:
            config = quota_pb2.QuotaConfig(role=change.role)
            for name, amount in change.guarantees.items():
                if amount:
                    config.guarantees[name].value = amount
            for name, amount in change.limits.items():
                config.limits[name].value = amount
        state.persist(UpdateQuota(change.role, config))
    state.allocation_wanted = True
    log.info("operator updated the quota of %s", sorted(seen))


def mark_agent_gone(state: MasterState, agent_id: str, now: float) -> None:
    """MARK_AGENT_GONE: the agent will never come back. Its tasks end (TASK_GONE_BY_OPERATOR for
    partition-aware frameworks, TASK_LOST for the others; REASON_AGENT_REMOVED_BY_OPERATOR), it
    is forgotten, and it is shut down if it ever reregisters. Marking a gone agent again changes
    nothing."""
    if not agent_id:
        raise invalid("mark_agent_gone.agent_id is required")
    if agent_id in state.gone_agents:
        return
    agent = state.agents.get(agent_id)
    if agent is None:
        raise CallError(
            ErrorCode.NOT_FOUND, f"mark_agent_gone.agent_id: agent {shown(agent_id)} is unknown"
        )
    log.warning("agent %s (%s) marked gone by the operator", agent_id, agent.info.hostname)
    _take_out(state, agent)
    if agent.phase is AgentPhase.RECOVERING:
        state.recovering_agents -= 1
        state.timers.cancel(("reregister", agent_id))
    message = f"Agent {agent.info.hostname} was marked gone by the operator"
    _lose_tasks(state, agent, now, message, gone=True, by_operator=True)
    del state.agents[agent_id]
    state.gone_agents[agent_id] = now
    state.persist(MarkAgentGone(agent_id, now))
    _agent_lost(state, agent_id)
    state.history.agent_removed(agent_id)
