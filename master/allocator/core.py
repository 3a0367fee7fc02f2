"""The allocator's state and the bookkeeping every event shares.

:class:`AllocatorCore` owns the records (agents, frameworks), the sorters, the quota ledger, the
refuse filters and the two agent sets that make the cycle incremental:

``dirty``
    agents whose free resources may be offerable now and that the next cycle must look at
    (resources added or recovered, agent added or activated, a filter on it expired);
``idle``
    active agents the last cycle left with free resources nobody could take. They cost nothing
    until something changes who could take them (a framework added or revived, a role
    unsuppressed, quota changed), which moves them all back to ``dirty``.

Every active agent with free resources is in one of the two (``validate`` checks it), so a cycle
that looks only at ``dirty`` misses nothing a full scan would offer.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from protos.resources import Resources

from .explain import CycleRecord
from .filters import FilterExpiries, RefuseFilter
from .quota import QuotaLedger, quota_quantities
from .sorter import Quantities, ShareTotals, Sorter, make_sorter
from .state import (
    DEFAULT_MIN_ALLOCATABLE,
    AgentState,
    FrameworkState,
    MinAllocatable,
    Offers,
    quantities,
    top_role,
)

if TYPE_CHECKING:
    from .pause import RecoveryPause

__all__ = ["AllocatorCore", "AllocatorOptions", "Offers"]


@dataclass(frozen=True, slots=True)
class AllocatorOptions:
    """AllocatorOptions are the allocator's flags (Mesos's names, minus the ``--``)."""

    allocation_interval: float = 1.0
    min_allocatable_resources: MinAllocatable = DEFAULT_MIN_ALLOCATABLE
    fair_sharing_excluded_resource_names: frozenset[str] = frozenset()
    role_sorter: str = "drf"
    framework_sorter: str = "drf"


class AllocatorCore:
    """AllocatorCore is the state described in the module docstring, plus its bookkeeping."""

    def __init__(self, options: AllocatorOptions, rng: random.Random) -> None:
        if not options.allocation_interval > 0:
            raise ValueError(
                f"allocation interval must be positive, got {options.allocation_interval}"
            )
        make_sorter(options.framework_sorter, ShareTotals(), rng)  # Fail early on a bad name.
        self.options = options
        self.rng = rng
        self.totals = ShareTotals(options.fair_sharing_excluded_resource_names)
        self.role_sorter: Sorter = make_sorter(
            options.role_sorter, self.totals, rng, hierarchical=True
        )
        self.fw_sorters: dict[str, Sorter] = {}
        self.role_active: dict[str, int] = {}
        self.tops: dict[str, str] = {}
        self.weights: dict[str, float] = {}
        self.agents: dict[str, AgentState] = {}
        self.frameworks: dict[str, FrameworkState] = {}
        self.quota = QuotaLedger()
        self.expiries = FilterExpiries()
        self.dirty: dict[str, None] = {}
        self.idle: set[str] = set()
        self.active_agents = 0
        self.cycles = 0
        self.last_cycle: CycleRecord | None = None
        self.pause: RecoveryPause | None = None

    # -- sorter clients -----------------------------------------------------------------------

    def ensure_client(self, fw: FrameworkState, role: str) -> Sorter:
        """Make ``fw`` a client of ``role``'s framework sorter (and the role one of the roles')."""
        sorter = self.fw_sorters.get(role)
        if sorter is None:
            sorter = make_sorter(self.options.framework_sorter, self.totals, self.rng)
            self.fw_sorters[role] = sorter
            self.role_active[role] = 0
            self.tops[role] = top_role(role)
            self.role_sorter.add(role)
        if fw.framework_id not in sorter:
            sorter.add(fw.framework_id)
        return sorter

    def sync(self, fw: FrameworkState, role: str, want: bool | None = None) -> None:
        """Make ``fw``'s activity in ``role``'s sorter ``want`` (:meth:`FrameworkState.wants`)."""
        sorter = self.fw_sorters.get(role)
        if sorter is None or fw.framework_id not in sorter:
            return
        if want is None:
            want = fw.wants(role)
        if want == sorter.is_active(fw.framework_id):
            return
        if want:
            sorter.activate(fw.framework_id)
            self.role_active[role] += 1
            if self.role_active[role] == 1:
                self.role_sorter.activate(role)
        else:
            sorter.deactivate(fw.framework_id)
            self.role_active[role] -= 1
            if self.role_active[role] == 0:
                self.role_sorter.deactivate(role)

    def sync_all(self, fw: FrameworkState, left: Iterable[str] = ()) -> None:
        """:meth:`sync` every role ``fw`` is a client of (and the roles it ``left``), dropping
        clients it no longer needs."""
        for role in sorted({*self.client_roles(fw), *left}):
            self.sync(fw, role)
            self.drop_client_if_unused(fw, role)

    def client_roles(self, fw: FrameworkState) -> set[str]:
        """The roles whose sorters have ``fw`` as a client."""
        out = set()
        for role in (*fw.roles, *fw.allocated):
            sorter = self.fw_sorters.get(role)
            if sorter is not None and fw.framework_id in sorter:
                out.add(role)
        return out

    def drop_client_if_unused(self, fw: FrameworkState, role: str) -> None:
        """Remove ``fw`` from ``role``'s sorter once it neither has the role nor holds anything."""
        if (fw.registered and role in fw.roles) or fw.allocated.get(role):
            return
        sorter = self.fw_sorters.get(role)
        if sorter is None or fw.framework_id not in sorter:
            return
        self.sync(fw, role, want=False)
        sorter.remove(fw.framework_id)
        fw.allocated.pop(role, None)
        if not sorter.clients():
            del self.fw_sorters[role]
            del self.role_active[role]
            del self.tops[role]
            self.role_sorter.remove(role)

    # -- allocations outside the cycle --------------------------------------------------------

    def track(self, fw: FrameworkState, role: str, agent: AgentState, resources: Resources) -> None:
        """Record ``resources`` on ``agent`` as allocated to ``fw`` for ``role``."""
        if not resources:
            return
        by_agent = fw.allocated.setdefault(role, {})
        previous = by_agent.get(agent.agent_id)
        combined = resources if previous is None else previous + resources
        by_agent[agent.agent_id] = combined
        agent.allocated[(fw.framework_id, role)] = combined
        self.ensure_client(fw, role)
        amounts = quantities(resources)
        self.fw_sorters[role].allocated(fw.framework_id, amounts)
        self.role_sorter.allocated(role, amounts)
        self.quota.track(self.tops[role], quota_quantities(resources))

    def untrack(
        self, fw: FrameworkState, role: str, agent: AgentState, resources: Resources
    ) -> None:
        """Forget ``resources`` (which ``fw`` holds on ``agent`` for ``role``) as allocated."""
        self.unbook(fw, role, agent, resources)
        self.untrack_amounts(fw, role, quantities(resources), quota_quantities(resources))

    def unbook(
        self, fw: FrameworkState, role: str, agent: AgentState, resources: Resources
    ) -> None:
        """The records half of :meth:`untrack`: the sorters and the quota ledger are left to
        :meth:`untrack_amounts`, so that many recoveries can update them once."""
        by_agent = fw.allocated[role]
        held = by_agent[agent.agent_id]
        left = Resources.EMPTY if held is resources else held - resources
        if left:
            by_agent[agent.agent_id] = left
            agent.allocated[(fw.framework_id, role)] = left
        else:
            del by_agent[agent.agent_id]
            del agent.allocated[(fw.framework_id, role)]
            if not by_agent:
                del fw.allocated[role]

    def untrack_amounts(
        self, fw: FrameworkState, role: str, amounts: Quantities, unreserved: Quantities
    ) -> None:
        """The sorters and quota half of :meth:`untrack`: ``amounts`` (every scalar) and
        ``unreserved`` (what quota counts) that ``fw`` held for ``role`` came back."""
        self.fw_sorters[role].unallocated(fw.framework_id, amounts)
        self.role_sorter.unallocated(role, amounts)
        self.quota.untrack(self.tops[role], unreserved)

    def release_all(self, fw: FrameworkState) -> None:
        """Give everything ``fw`` holds back to its agents."""
        for role, by_agent in list(fw.allocated.items()):
            for agent_id, resources in list(by_agent.items()):
                agent = self.agents[agent_id]
                self.untrack(fw, role, agent, resources)
                agent.set_free(agent.free + resources)
                self.mark_dirty(agent)

    # -- agents sets --------------------------------------------------------------------------

    def mark_dirty(self, agent: AgentState) -> None:
        """Have the next cycle look at ``agent``."""
        self.dirty[agent.agent_id] = None
        self.idle.discard(agent.agent_id)

    def wake_idle(self) -> None:
        """Something changed who could take the idle agents: look at them all again."""
        if self.idle:
            for agent_id in self.idle:
                self.dirty[agent_id] = None
            self.idle.clear()

    # -- filters ------------------------------------------------------------------------------

    def add_filter(self, refuse_filter: RefuseFilter) -> None:
        """Install a refuse filter."""
        fw = self.frameworks[refuse_filter.framework_id]
        by_agent = fw.filters.setdefault(refuse_filter.role, {})
        by_agent.setdefault(refuse_filter.agent_id, []).append(refuse_filter)
        self.expiries.push(refuse_filter)

    def drop_filter(self, refuse_filter: RefuseFilter) -> None:
        """Remove one refuse filter (the heap forgets it lazily)."""
        self.expiries.kill(refuse_filter)
        fw = self.frameworks.get(refuse_filter.framework_id)
        if fw is None:
            return
        by_agent = fw.filters.get(refuse_filter.role)
        if by_agent is None:
            return
        filters = by_agent.get(refuse_filter.agent_id)
        if filters is not None and refuse_filter in filters:
            filters.remove(refuse_filter)
            if not filters:
                del by_agent[refuse_filter.agent_id]
                if not by_agent:
                    del fw.filters[refuse_filter.role]

    def drop_filters(self, filters: Iterable[RefuseFilter]) -> None:
        """Remove several refuse filters."""
        for refuse_filter in list(filters):
            self.drop_filter(refuse_filter)
        self.expiries.compact()

    def filters_of(
        self, fw: FrameworkState, roles: Iterable[str] | None = None
    ) -> list[RefuseFilter]:
        """Every filter of ``fw`` (for the given roles only, if any)."""
        wanted = fw.filters if roles is None else {r: fw.filters.get(r, {}) for r in roles}
        return [f for by_agent in wanted.values() for fs in by_agent.values() for f in fs]

    # -- reading ------------------------------------------------------------------------------

    def min_allocatable_for(self, fw: FrameworkState, role: str) -> MinAllocatable:
        """The minimum offer size that applies to ``fw`` in ``role``."""
        own = fw.min_allocatable.get(role)
        return self.options.min_allocatable_resources if own is None else own

    def role_weights(self) -> Mapping[str, float]:
        """The weights set so far (roles not listed weigh 1.0)."""
        return self.weights
