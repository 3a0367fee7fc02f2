"""``/master/roles`` and ``/master/weights`` (and GET_ROLES, GET_WEIGHTS, the per-role
Prometheus metrics) as plain JSON data: pure functions of a Master, as ``master.core.snapshot``.
"""

from __future__ import annotations

from master.core.master import Master
from master.core.model import Executor, Task
from master.core.snapshot import JSON
from master.core.state import MasterState
from protos.resources import Resources

__all__ = ["roles_snapshot", "weights_snapshot"]


def _known_roles(state: MasterState) -> list[str]:
    roles: set[str] = set(state.allocator.weights()) | set(state.allocator.quotas())
    for fw in state.frameworks.values():
        roles.update(fw.roles)
    for agent in state.agents.values():
        roles.update(agent.total.reservation_roles())
    return sorted(roles)


def roles_snapshot(master: Master) -> JSON:
    """``/master/roles``: every role a framework holds, that has a weight or a quota, or has
    reservations, with its weight, quota and what it is allocated (tasks and executors),
    offered and reserved.

    Figures are of the role itself, not of its sub-roles (Mesos adds theirs in). Amounts are
    added up as scalar totals (each Resources caches its own), not as Resources: Prometheus
    scrapes this, and at 100,000 tasks that is several times cheaper.
    """
    state = master.state
    allocator = state.allocator
    weights = allocator.weights()
    allocated: dict[str, dict[str, int]] = {}
    for fw in state.frameworks.values():
        holders: list[Task | Executor] = [*fw.tasks.values(), *fw.executors.values()]
        for holder in holders:
            if holder.allocated:
                _add_into(allocated.setdefault(holder.role, {}), holder.resources)
    offered: dict[str, dict[str, int]] = {}
    for offer in state.offers.values():
        _add_into(offered.setdefault(offer.role, {}), offer.resources)
    reserved: dict[str, dict[str, int]] = {}
    for agent in state.agents.values():
        for role in agent.total.reservation_roles():
            _add_into(reserved.setdefault(role, {}), agent.total.reserved(role))
    roles = []
    for role in _known_roles(state):
        used = allocated.get(role, {})
        offers = offered.get(role, {})
        quota = allocator.quota_of(role) if "/" not in role else None
        roles.append(
            {
                "name": role,
                "weight": weights.get(role, 1.0),
                "quota": {
                    "role": role,
                    "guarantee": {n: v / 1000 for n, v in sorted(quota.guarantees.items())}
                    if quota
                    else {},
                    "limit": {n: v / 1000 for n, v in sorted(quota.limits.items())}
                    if quota
                    else {},
                    "consumed": allocator.quota_consumed(role) if quota else {},
                },
                "resources": _amounts(
                    {n: used.get(n, 0) + offers.get(n, 0) for n in used | offers}
                ),
                "allocated": _amounts(used),
                "offered": _amounts(offers),
                "reserved": _amounts(reserved.get(role, {})),
                "frameworks": sorted(
                    fw.framework_id for fw in state.frameworks.values() if role in fw.roles
                ),
            }
        )
    return {"roles": roles}


def _add_into(totals: dict[str, int], resources: Resources) -> None:
    for name, amount in resources.scalar_thousandths().items():
        totals[name] = totals.get(name, 0) + amount


def _amounts(thousandths: dict[str, int]) -> dict[str, float]:
    """Scalar totals in thousandths as amounts, sorted, zeros left out (as ``_quantities``)."""
    return {n: v / 1000 for n, v in sorted(thousandths.items()) if v}


def weights_snapshot(master: Master) -> list[JSON]:
    """``/master/weights``: the roles whose weight was set (others weigh 1.0)."""
    weights = master.state.allocator.weights()
    return [{"role": role, "weight": weights[role]} for role in sorted(weights)]
