"""Resources coming back to the allocator: declined, rescinded, left over, or freed by tasks.

One recovery is cheap, but a busy master recovers many at once: a DECLINE names every offer of
an OFFERS event (about 13 each in ``bench.failover`` at 10,000 agents; one per agent the cycle
gave the framework), and every offer used to update the framework's sorter and the role sorter
on its own, each update moving the client in a sorted list. :func:`recover_many` takes the
resources of many offers of one framework and updates each sorter once per role, with the
same result as recovering them one by one in order (the same records, free resources, dirty
agents in the same order, refuse filters, shares; ``tests/unit/allocator/test_recover_many.py``
compares the two paths): the sorters' quantities are integers, so their sums do not depend on
how they are grouped, and a recovery does not count as an allocation in the DRF tie-break.

Input is validated before anything changes: a batch that names resources the framework does not
hold raises ValueError and recovers nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from protos.resources import Resources

from .core import AllocatorCore
from .filters import RefuseFilter, refuse_timeout
from .quota import quota_quantities
from .sorter import Quantities
from .state import AgentState, FrameworkState, add_into, quantities

__all__ = ["Recovered", "holding_role", "recover_many"]


class Recovered(NamedTuple):
    """Recovered is one part of a batch: ``resources`` on ``agent_id`` held for ``role``
    (None: the one role the framework holds them in there)."""

    agent_id: str
    resources: Resources
    role: str | None = None


def holding_role(
    fw: FrameworkState, agent: AgentState, resources: Resources, role: str | None
) -> str:
    """The role ``fw`` holds ``resources`` under on ``agent``; ValueError if none or unclear."""
    if role is not None:
        held = agent.allocated.get((fw.framework_id, role), Resources.EMPTY)
        # Declining a whole offer hands back the very object the cycle booked.
        if held is not resources and not held.contains(resources):
            raise ValueError(
                f"framework {fw.framework_id!r} does not hold {resources} on agent"
                f" {agent.agent_id!r} in role {role!r}"
            )
        return role
    holds = {r: res for (f, r), res in agent.allocated.items() if f == fw.framework_id}
    fitting = sorted(r for r, res in holds.items() if res.contains(resources))
    if len(fitting) == 1:
        return fitting[0]
    if not fitting:
        raise ValueError(
            f"framework {fw.framework_id!r} does not hold {resources} on agent {agent.agent_id!r}"
        )
    raise ValueError(
        f"{resources} on agent {agent.agent_id!r} could be held in role(s)"
        f" {', '.join(fitting)}: say which role"
    )


def _plan(
    core: AllocatorCore, fw: FrameworkState, batch: Iterable[Recovered]
) -> list[tuple[AgentState, str, Resources]]:
    """The batch as (agent, role, resources), checked against what ``fw`` holds in all."""
    plan: list[tuple[AgentState, str, Resources]] = []
    summed: dict[tuple[str, str], Resources] = {}
    for agent_id, resources, role in batch:
        if not resources:
            continue
        agent = core.agents.get(agent_id)
        if agent is None:
            continue  # Gone with everything on it, as in Mesos.
        held_in = holding_role(fw, agent, resources, role)
        key = (agent_id, held_in)
        earlier = summed.get(key)
        if earlier is not None:
            resources_so_far = earlier + resources
            if not agent.allocated[(fw.framework_id, held_in)].contains(resources_so_far):
                raise ValueError(
                    f"framework {fw.framework_id!r} does not hold {resources_so_far} on agent"
                    f" {agent_id!r} in role {held_in!r} (recovered more than once in one batch)"
                )
            summed[key] = resources_so_far
        else:
            summed[key] = resources
        plan.append((agent, held_in, resources))
    return plan


def recover_many(
    core: AllocatorCore,
    framework_id: str,
    batch: Iterable[Recovered],
    refuse_seconds: float | None,
    now: float,
) -> None:
    """Recover every part of ``batch`` (see the module docstring), in order.

    ``refuse_seconds`` installs one refuse filter per part, as separate recoveries would.
    Unknown frameworks and agents are ignored, as in Mesos (the resources are already gone).
    """
    fw = core.frameworks.get(framework_id)
    if fw is None:
        return
    plan = _plan(core, fw, batch)
    if not plan:
        return
    amounts: dict[str, Quantities] = {}
    unreserved: dict[str, Quantities] = {}
    tracking = core.quota.tracking
    quotas = bool(core.quota.quotas)
    for agent, role, resources in plan:
        core.unbook(fw, role, agent, resources)
        by_role = amounts.get(role)
        if by_role is None:
            by_role = amounts[role] = {}
            unreserved[role] = {}
        part = quantities(resources)
        add_into(by_role, part)
        if tracking:
            add_into(unreserved[role], quota_quantities(resources))
        if agent.free:
            agent.set_free(agent.free + resources)
        else:
            agent.set_free(resources, part)  # Nothing else free: the same quantities.
        if agent.active:
            core.mark_dirty(agent)
        if quotas:
            # Where one recovery at a time would wake the idle agents: right after the first.
            core.wake_idle()
    for role, by_role in amounts.items():
        core.untrack_amounts(fw, role, by_role, unreserved[role])
    if quotas:
        # Consumption only fell during the batch, so one look at the end drops the same roles.
        core.quota.forget_overruns()
    timeout = refuse_timeout(refuse_seconds, core.options.allocation_interval)
    if timeout and fw.registered:
        for agent, role, resources in plan:
            if role in fw.roles:
                refused = RefuseFilter(
                    framework_id, role, agent.agent_id, resources, now, now + timeout
                )
                core.add_filter(refused)
    for role in amounts:
        core.drop_client_if_unused(fw, role)
    if not fw.registered and not fw.allocated:
        core.sync_all(fw)
        core.frameworks.pop(framework_id, None)
