"""HierarchicalAllocator: the event-driven interface the master drives (Mesos's vocabulary).

The master reports events (frameworks and agents coming, going, (de)activating; resources
coming back; suppress and revive; weights and quota) and calls :meth:`HierarchicalAllocator.
allocate` once per allocation interval. Time is always an argument and randomness comes from the
injected ``random.Random``, so a run is reproducible.

Accounting follows Mesos: whatever :meth:`~HierarchicalAllocator.allocate` returns is *allocated*
to that framework (offered or, once accepted, used) until the master hands it back with
:meth:`~HierarchicalAllocator.recover_resources`: the unused part of an accepted offer, a
declined or rescinded offer, the resources of a finished task. Accepting an offer therefore needs
no call at all; only operations that change the resources themselves (RESERVE, UNRESERVE) need
:meth:`~HierarchicalAllocator.update_allocation`.

Bad input raises ValueError (KeyError for an unknown id) and changes nothing.
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Iterable, Mapping

from protos.resources import Resources, is_ancestor_or_self, validate_role

from .core import AllocatorCore, AllocatorOptions
from .cycle import run_cycle
from .explain import Explanation, explain
from .filters import RefuseFilter, refuse_timeout
from .invariants import InvariantViolation, check
from .pause import AGENT_RECOVERY_FACTOR, agent_added, begin, end_if_due
from .quota import QuotaSpec, make_quota
from .recovered import Recovered, holding_role, recover_many
from .state import (
    AgentState,
    FrameworkState,
    MinAllocatable,
    Offers,
    min_allocatable,
    parse_min_allocatable,
    quantities,
)
from .views import AllocatorViews

__all__ = ["HierarchicalAllocator"]

MinAllocatableSpec = str | Iterable[str | Resources | Mapping[str, float]]
"""``"cpus:0.01|mem:32"``, or alternatives as text, Resources or ``{name: amount}`` mappings."""


def _min_spec(spec: MinAllocatableSpec) -> MinAllocatable:
    return parse_min_allocatable(spec) if isinstance(spec, str) else min_allocatable(spec)


def _roles(roles: Iterable[str], what: str) -> frozenset[str]:
    if isinstance(roles, str):
        raise ValueError(f"{what} must be a collection of role names, not the string {roles!r}")
    out = frozenset(roles)
    for role in out:
        validate_role(role)
    return out


class HierarchicalAllocator(AllocatorViews):
    """HierarchicalAllocator is incremental hierarchical DRF with quota, filters, explanations.

    ``rng`` drives the agent shuffle (and the random sorter); ``allocation_interval`` is the
    shortest refuse filter; ``min_allocatable_resources`` the smallest offer worth making
    (Mesos's default ``cpus:0.01|mem:32``); resources named in
    ``fair_sharing_excluded_resource_names`` do not count towards shares; ``role_sorter`` and
    ``framework_sorter`` pick a policy by name (``drf`` or ``random``).
    """

    def __init__(
        self,
        rng: random.Random | None = None,
        *,
        allocation_interval: float = 1.0,
        min_allocatable_resources: MinAllocatableSpec = "cpus:0.01|mem:32",
        fair_sharing_excluded_resource_names: Iterable[str] = (),
        role_sorter: str = "drf",
        framework_sorter: str = "drf",
    ) -> None:
        options = AllocatorOptions(
            allocation_interval=allocation_interval,
            min_allocatable_resources=_min_spec(min_allocatable_resources),
            fair_sharing_excluded_resource_names=frozenset(fair_sharing_excluded_resource_names),
            role_sorter=role_sorter,
            framework_sorter=framework_sorter,
        )
        self._core = AllocatorCore(options, rng if rng is not None else random.Random(0))

    @property
    def options(self) -> AllocatorOptions:
        """The options this allocator was built with."""
        return self._core.options

    # -- frameworks ---------------------------------------------------------------------------

    def _configure(
        self,
        fw: FrameworkState,
        roles: Iterable[str],
        capabilities: Iterable[str],
        suppressed_roles: Iterable[str],
        min_allocatable: Mapping[str, MinAllocatableSpec] | None,
    ) -> None:
        """Validate a framework's settings, then apply them (nothing changes on error)."""
        role_set = _roles(roles, "roles")
        if not role_set:
            raise ValueError(f"framework {fw.framework_id!r} must have at least one role")
        if isinstance(capabilities, str):
            raise ValueError(f"capabilities must be a collection, not the string {capabilities!r}")
        suppressed = _roles(suppressed_roles, "suppressed_roles")
        if not suppressed <= role_set:
            extra = ", ".join(sorted(suppressed - role_set))
            raise ValueError(f"suppressed role(s) {extra} are not roles of the framework")
        mins = {}
        for role, spec in (min_allocatable or {}).items():
            if role not in role_set:
                raise ValueError(f"min_allocatable names role {role!r}, not a framework role")
            mins[role] = _min_spec(spec)
        core = self._core
        left = fw.roles - role_set
        for role in left:
            core.drop_filters(core.filters_of(fw, [role]))
        fw.roles = role_set
        fw.set_capabilities(capabilities)
        fw.suppressed = set(suppressed)
        fw.min_allocatable = mins
        for role in role_set:
            core.ensure_client(fw, role)
        core.sync_all(fw, left)
        core.wake_idle()

    def add_framework(
        self,
        framework_id: str,
        roles: Iterable[str],
        capabilities: Collection[str] = (),
        now: float = 0.0,
        *,
        suppressed_roles: Iterable[str] = (),
        min_allocatable: Mapping[str, MinAllocatableSpec] | None = None,
        active: bool = True,
    ) -> None:
        """A framework subscribed with ``roles`` and ``capabilities`` (e.g. ``GPU_RESOURCES``).

        ``min_allocatable`` overrides the minimum offer size per role (Mesos's
        ``FrameworkInfo.offer_filters``). ``now`` is accepted for symmetry; nothing depends on it.
        """
        if not framework_id:
            raise ValueError("framework id must not be empty")
        core = self._core
        known = core.frameworks.get(framework_id)
        if known is not None and known.registered:
            raise ValueError(f"framework {framework_id!r} is already added")
        fw = known if known is not None else FrameworkState(framework_id)
        previous = (fw.roles, fw.registered, fw.active)
        fw.registered, fw.active = True, active
        try:
            self._configure(fw, roles, capabilities, suppressed_roles, min_allocatable)
        except ValueError:
            fw.roles, fw.registered, fw.active = previous
            raise
        core.frameworks[framework_id] = fw

    def update_framework(
        self,
        framework_id: str,
        roles: Iterable[str],
        capabilities: Collection[str] = (),
        *,
        suppressed_roles: Iterable[str] = (),
        min_allocatable: Mapping[str, MinAllocatableSpec] | None = None,
    ) -> None:
        """New roles, capabilities, suppressed roles or minimum offer sizes for a framework.

        Filters of roles it leaves are dropped; what it holds in them stays allocated (and
        counted) until recovered.
        """
        self._configure(
            self._framework(framework_id), roles, capabilities, suppressed_roles, min_allocatable
        )

    def remove_framework(self, framework_id: str) -> None:
        """A framework is gone: everything it held goes back to its agents."""
        core = self._core
        fw = self._framework(framework_id)
        roles = core.client_roles(fw)
        core.release_all(fw)
        core.drop_filters(core.filters_of(fw))
        fw.registered = fw.active = False
        core.sync_all(fw, roles)
        del core.frameworks[framework_id]
        if core.quota.quotas:
            core.quota.forget_overruns()
            core.wake_idle()

    def activate_framework(self, framework_id: str) -> None:
        """A framework (re)connected: offer it resources again."""
        fw = self._framework(framework_id)
        if not fw.active:
            fw.active = True
            self._core.sync_all(fw)
            self._core.wake_idle()

    def deactivate_framework(self, framework_id: str) -> None:
        """A framework disconnected: offer it nothing (its filters and allocations stay)."""
        fw = self._framework(framework_id)
        fw.active = False
        self._core.sync_all(fw)

    # -- agents -------------------------------------------------------------------------------

    def add_agent(
        self,
        agent_id: str,
        total: Resources,
        used: Mapping[str, Mapping[str, Resources]] | None = None,
        capabilities: Collection[str] = (),
        now: float = 0.0,
        *,
        active: bool = True,
    ) -> None:
        """An agent registered with ``total`` resources.

        ``used`` maps framework id -> role -> resources its running tasks and executors hold
        (an agent reregistering after a master failover); frameworks not added yet are tracked
        until they are. Agents whose total has ``gpus`` are offered only to GPU_RESOURCES
        frameworks. ``now`` is when (a recovery pause notes when agents come back).
        """
        core = self._core
        if not agent_id:
            raise ValueError("agent id must not be empty")
        if agent_id in core.agents:
            raise ValueError(f"agent {agent_id!r} is already added")
        in_use = Resources.EMPTY
        for framework_id, by_role in (used or {}).items():
            for role, resources in by_role.items():
                validate_role(role)
                for reserved_to in resources.reservation_roles():
                    if not is_ancestor_or_self(reserved_to, role):
                        raise ValueError(
                            f"agent {agent_id!r}: framework {framework_id!r} uses resources"
                            f" reserved to {reserved_to!r} in role {role!r}"
                        )
                in_use = in_use + resources
        if not total.contains(in_use):
            raise ValueError(f"agent {agent_id!r}: used {in_use - total} is beyond its total")
        total_q = quantities(total)
        agent = AgentState(
            agent_id=agent_id,
            total=total,
            total_q=total_q,
            has_gpus=total_q.get("gpus", 0) > 0,
            capabilities=frozenset(capabilities),
            active=active,
        )
        agent.set_free(total - in_use)
        core.agents[agent_id] = agent
        core.totals.add(total_q)
        core.quota.add_agent(total)
        for framework_id, by_role in (used or {}).items():
            for role, resources in by_role.items():
                if not resources:
                    continue
                fw = core.frameworks.get(framework_id)
                if fw is None:
                    fw = core.frameworks[framework_id] = FrameworkState(framework_id)
                core.track(fw, role, agent, resources)
                core.sync(fw, role)
        if core.quota.quotas:
            core.quota.tolerate_overruns()
            core.wake_idle()
        if active:
            core.active_agents += 1
            core.mark_dirty(agent)
        if core.pause is not None:
            agent_added(core, now)

    def update_agent(
        self, agent_id: str, total: Resources, capabilities: Collection[str] | None = None
    ) -> None:
        """An agent's total changed (reconfiguration, or reservations made or removed on it).

        The new total must still hold everything allocated on the agent.
        """
        core = self._core
        agent = self._agent(agent_id)
        allocated = Resources.EMPTY
        for resources in agent.allocated.values():
            allocated = allocated + resources
        if not total.contains(allocated):
            raise ValueError(
                f"agent {agent_id!r}: new total lacks {allocated - total} that is allocated"
            )
        core.totals.subtract(agent.total_q)
        core.quota.remove_agent(agent.total)
        agent.total = total
        agent.total_q = quantities(total)
        agent.has_gpus = agent.total_q.get("gpus", 0) > 0
        if capabilities is not None:
            agent.capabilities = frozenset(capabilities)
        agent.set_free(total - allocated)
        core.totals.add(agent.total_q)
        core.quota.add_agent(total)
        if agent.active:
            core.mark_dirty(agent)
        if core.quota.quotas:
            core.quota.tolerate_overruns()
            core.wake_idle()

    def remove_agent(self, agent_id: str) -> None:
        """An agent is gone, with everything allocated on it."""
        core = self._core
        agent = self._agent(agent_id)
        for (framework_id, role), resources in list(agent.allocated.items()):
            fw = core.frameworks[framework_id]
            core.untrack(fw, role, agent, resources)
            core.drop_client_if_unused(fw, role)
            self._forget_if_unregistered(fw)
        for fw in core.frameworks.values():
            for by_agent in list(fw.filters.values()):
                core.drop_filters(by_agent.get(agent_id, ()))
        core.totals.subtract(agent.total_q)
        core.quota.remove_agent(agent.total)
        if agent.active:
            core.active_agents -= 1
        del core.agents[agent_id]
        core.dirty.pop(agent_id, None)
        core.idle.discard(agent_id)
        if core.quota.quotas:
            core.quota.forget_overruns()
            core.wake_idle()

    def activate_agent(self, agent_id: str) -> None:
        """An agent is back in service: offer it again."""
        agent = self._agent(agent_id)
        if not agent.active:
            agent.active = True
            self._core.active_agents += 1
            self._core.mark_dirty(agent)

    def deactivate_agent(self, agent_id: str) -> None:
        """An agent is out of service (e.g. disconnected): offer none of it."""
        agent = self._agent(agent_id)
        if agent.active:
            agent.active = False
            self._core.active_agents -= 1
            self._core.idle.discard(agent_id)
            self._core.dirty.pop(agent_id, None)

    def _forget_if_unregistered(self, fw: FrameworkState) -> None:
        if not fw.registered and not fw.allocated:
            self._core.sync_all(fw)
            self._core.frameworks.pop(fw.framework_id, None)

    # -- resources ----------------------------------------------------------------------------

    def recover_resources(
        self,
        framework_id: str,
        agent_id: str,
        resources: Resources,
        refuse_seconds: float | None = None,
        now: float = 0.0,
        *,
        role: str | None = None,
    ) -> None:
        """Resources offered or used by a framework come back (decline, rescind, task end).

        Installs a refuse filter for (framework, role, agent) unless ``refuse_seconds`` is 0:
        None or negative means 5 s, at most 365 days, at least one allocation interval. Pass 0
        when the framework did not decline anything (a task ended, an offer was rescinded).
        ``role`` may be left out when the framework holds the resources in only one role there.
        Unknown frameworks and agents are ignored, as in Mesos (the resources are already gone).
        """
        core = self._core
        if not resources:
            return
        agent = core.agents.get(agent_id)
        fw = core.frameworks.get(framework_id)
        if agent is None or fw is None:
            return
        held_in = holding_role(fw, agent, resources, role)
        core.untrack(fw, held_in, agent, resources)
        agent.set_free(agent.free + resources)
        if agent.active:
            core.mark_dirty(agent)
        quota = core.quota
        if quota.quotas:
            quota.forget_overruns()
            core.wake_idle()
        timeout = refuse_timeout(refuse_seconds, core.options.allocation_interval)
        if timeout and fw.registered and held_in in fw.roles:
            refused = RefuseFilter(framework_id, held_in, agent_id, resources, now, now + timeout)
            core.add_filter(refused)
        core.drop_client_if_unused(fw, held_in)
        self._forget_if_unregistered(fw)

    def recover_resources_many(
        self,
        framework_id: str,
        batch: Iterable[Recovered],
        refuse_seconds: float | None = None,
        now: float = 0.0,
    ) -> None:
        """:meth:`recover_resources` for many resources of one framework at once (a DECLINE's
        offers): the same result as recovering them in order, with one sorter update per role
        instead of one per part. Nothing is recovered if any part is not held (ValueError)."""
        recover_many(self._core, framework_id, batch, refuse_seconds, now)

    def update_allocation(
        self, framework_id: str, agent_id: str, role: str, old: Resources, new: Resources
    ) -> None:
        """Allocated ``old`` became ``new`` (an accepted RESERVE or UNRESERVE operation).

        Both must be the same quantities; the agent's total changes the same way.
        """
        core = self._core
        fw = self._framework(framework_id)
        agent = self._agent(agent_id)
        holding_role(fw, agent, old, role)
        if quantities(old) != quantities(new):
            raise ValueError(f"update_allocation: {old} and {new} are not the same quantities")
        for reserved_to in new.reservation_roles():
            if not is_ancestor_or_self(reserved_to, role):
                raise ValueError(f"{new} is reserved outside role {role!r}")
        core.untrack(fw, role, agent, old)
        core.quota.remove_agent(agent.total)
        agent.total = agent.total - old + new
        core.quota.add_agent(agent.total)
        core.track(fw, role, agent, new)
        if core.quota.quotas:
            core.wake_idle()

    # -- suppress, revive ---------------------------------------------------------------------

    def _which_roles(self, fw: FrameworkState, roles: Iterable[str]) -> frozenset[str]:
        chosen = _roles(roles, "roles") or fw.roles
        if not chosen <= fw.roles:
            extra = ", ".join(sorted(chosen - fw.roles))
            raise ValueError(f"framework {fw.framework_id!r} is not subscribed to role(s) {extra}")
        return chosen

    def suppress(self, framework_id: str, roles: Iterable[str] = ()) -> None:
        """Stop offering to a framework for ``roles`` (all its roles when empty)."""
        fw = self._framework(framework_id)
        for role in self._which_roles(fw, roles):
            fw.suppressed.add(role)
            self._core.sync(fw, role)

    def revive(self, framework_id: str, roles: Iterable[str] = ()) -> None:
        """Offer to a framework again for ``roles`` (all when empty), clearing their filters."""
        core = self._core
        fw = self._framework(framework_id)
        chosen = self._which_roles(fw, roles)
        for refuse_filter in core.filters_of(fw, chosen):
            agent = core.agents.get(refuse_filter.agent_id)
            if agent is not None and agent.active and agent.free:
                core.mark_dirty(agent)
        core.drop_filters(core.filters_of(fw, chosen))
        for role in chosen:
            fw.suppressed.discard(role)
            core.sync(fw, role)
        core.wake_idle()

    # -- weights, quota -----------------------------------------------------------------------

    def update_weights(self, weights: Mapping[str, float]) -> None:
        """Set role weights (a role's share is divided by its weight; default 1.0)."""
        for role, weight in weights.items():
            validate_role(role)
            if not (isinstance(weight, int | float) and math.isfinite(weight) and weight > 0):
                raise ValueError(f"weight of role {role!r} must be a positive number, not {weight}")
        for role, weight in weights.items():
            self._core.weights[role] = float(weight)
            self._core.role_sorter.update_weight(role, float(weight))

    def update_quota(
        self,
        role: str,
        guarantees: QuotaSpec = Resources.EMPTY,
        limits: QuotaSpec = Resources.EMPTY,
        *,
        force: bool = False,
    ) -> None:
        """Set (or, with both empty, remove) a top-level role's quota.

        Amounts are unreserved scalars, as Resources or ``{name: amount}`` (to say a limit of 0).
        Refused if the role already consumes more than a new limit, unless ``force``.
        """
        core = self._core
        quota = make_quota(role, guarantees, limits)
        core.quota.start_tracking(
            (r, resources)
            for fw in core.frameworks.values()
            for r, by_agent in fw.allocated.items()
            for resources in by_agent.values()
        )
        consumed = core.quota.consumed(role)
        over = {n: v for n, v in quota.limits.items() if consumed.get(n, 0) > v}
        if over and not force:
            if not core.quota.quotas:
                core.quota.stop_tracking()
            detail = ", ".join(
                f"{n} {consumed[n] / 1000:g} > {v / 1000:g}" for n, v in sorted(over.items())
            )
            raise ValueError(
                f"role {role!r} already consumes more than the new limit ({detail}); use force"
            )
        if quota:
            core.quota.quotas[role] = quota
        else:
            core.quota.quotas.pop(role, None)
            if not core.quota.quotas:
                core.quota.stop_tracking()
        core.quota.tolerate_overruns()
        core.wake_idle()

    # -- the cycle ----------------------------------------------------------------------------

    def pause_for_recovery(
        self,
        expected_agents: int,
        now: float,
        timeout: float,
        factor: float = AGENT_RECOVERY_FACTOR,
    ) -> None:
        """A new leader recovered ``expected_agents`` from the registry: make no offers until
        they are added, or ``factor`` of them and their burst is over, or ``timeout`` seconds
        pass (:mod:`.pause`)."""
        begin(self._core, expected_agents, now, timeout, factor)

    def allocate(self, now: float) -> Offers:
        """Run one allocation cycle; returns framework id -> role -> agent id -> resources.

        What it returns stays allocated to those frameworks until recovered. The same mapping is
        kept in :attr:`last_cycle` for :meth:`explain`: treat it as read-only. While paused for
        recovery it returns nothing and runs no cycle.
        """
        core = self._core
        if core.pause is not None and not end_if_due(core, now):
            return {}
        return run_cycle(core, now)

    def explain(self, framework_id: str, now: float | None = None) -> list[Explanation]:
        """Why a framework received nothing or less than it could use in the last cycle."""
        return explain(self._core, framework_id, now)

    def validate(self) -> None:
        """Check every invariant; raise :class:`InvariantViolation` listing what is broken."""
        problems = check(self._core)
        if problems:
            raise InvariantViolation(problems)
