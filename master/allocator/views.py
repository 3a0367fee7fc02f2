"""Read-only views of the allocator's state, for the master, the web UI and the CLI.

:class:`AllocatorViews` is the half of :class:`~master.allocator.hierarchical.
HierarchicalAllocator` that changes nothing; every method returns copies or immutable values.
"""

from __future__ import annotations

from protos.resources import Resources

from .core import AllocatorCore
from .explain import CycleRecord
from .filters import RefuseFilter
from .pause import RecoveryPause
from .quota import Quota, quota_quantities
from .state import AgentState, FrameworkState, add_into, top_role

__all__ = ["AllocatorViews"]


class AllocatorViews:
    """AllocatorViews reads an :class:`AllocatorCore`; unknown ids raise KeyError."""

    _core: AllocatorCore

    def _framework(self, framework_id: str) -> FrameworkState:
        fw = self._core.frameworks.get(framework_id)
        if fw is None or not fw.registered:
            raise KeyError(f"unknown framework {framework_id!r}")
        return fw

    def _agent(self, agent_id: str) -> AgentState:
        agent = self._core.agents.get(agent_id)
        if agent is None:
            raise KeyError(f"unknown agent {agent_id!r}")
        return agent

    @property
    def recovery_pause(self) -> RecoveryPause | None:
        """The recovery pause in force (allocation waits for agents), or None."""
        return self._core.pause

    @property
    def last_cycle(self) -> CycleRecord | None:
        """What the last cycle recorded (offers, shares), or None before the first."""
        return self._core.last_cycle

    def framework_ids(self) -> list[str]:
        """Every added framework."""
        return [f for f, fw in self._core.frameworks.items() if fw.registered]

    def agent_ids(self) -> list[str]:
        """Every added agent."""
        return list(self._core.agents)

    def framework_share(self, framework_id: str) -> dict[str, float]:
        """A framework's DRF share in each role it is a client of."""
        core = self._core
        fw = self._framework(framework_id)
        return {role: core.fw_sorters[role].share(framework_id) for role in core.client_roles(fw)}

    def role_share(self, role: str) -> float:
        """A role's weighted DRF share (its subroles included); 0.0 for an unknown role."""
        return self._core.role_sorter.share(role)

    def agent_free(self, agent_id: str) -> Resources:
        """What is neither offered nor used on an agent."""
        return self._agent(agent_id).free

    def agent_total(self, agent_id: str) -> Resources:
        """An agent's total resources."""
        return self._agent(agent_id).total

    def agent_allocation(self, agent_id: str) -> dict[tuple[str, str], Resources]:
        """What is allocated on an agent, by (framework id, role)."""
        return dict(self._agent(agent_id).allocated)

    def allocation_of(self, framework_id: str) -> dict[str, dict[str, Resources]]:
        """What a framework holds: role -> agent id -> resources (offered or used)."""
        fw = self._framework(framework_id)
        return {role: dict(by_agent) for role, by_agent in fw.allocated.items()}

    def filters_of(self, framework_id: str) -> list[RefuseFilter]:
        """A framework's refuse filters (some may have expired since the last cycle)."""
        return self._core.filters_of(self._framework(framework_id))

    def quota_of(self, role: str) -> Quota | None:
        """A top-level role's quota, if set (amounts in thousandths)."""
        return self._core.quota.quotas.get(role)

    def quotas(self) -> dict[str, Quota]:
        """Every top-level role's quota that is set (amounts in thousandths)."""
        return dict(self._core.quota.quotas)

    def quota_consumed(self, role: str) -> dict[str, float]:
        """A top-level role's consumption: reservations plus unreserved allocation."""
        ledger = self._core.quota
        consumed = ledger.consumed(role)
        if not ledger.tracking:  # The ledger only counts allocations while quota is set.
            for fw in self._core.frameworks.values():
                for held_in, by_agent in fw.allocated.items():
                    if top_role(held_in) == role:
                        for resources in by_agent.values():
                            add_into(consumed, quota_quantities(resources))
        return {n: v / 1000 for n, v in sorted(consumed.items())}

    def weights(self) -> dict[str, float]:
        """The weights set so far (other roles weigh 1.0)."""
        return dict(self._core.weights)
