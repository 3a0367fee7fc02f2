"""The allocator's invariants, recomputed from scratch and compared with its incremental state.

:func:`check` lists every problem it finds; ``HierarchicalAllocator.validate`` raises
:class:`InvariantViolation` with them. It is meant for tests and debugging: it costs time linear
in everything the allocator holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from protos.resources import Resources, is_ancestor_or_self

from .filters import RefuseFilter
from .quota import format_quantities, quota_quantities
from .sorter import Quantities
from .state import add_into, quantities, top_role

if TYPE_CHECKING:
    from .core import AllocatorCore

__all__ = ["InvariantViolation", "check"]


class InvariantViolation(AssertionError):  # noqa: N818 (the name the design documents use)
    """InvariantViolation lists every broken invariant (``problems``)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("allocator invariants broken:\n  - " + "\n  - ".join(problems))


def check(core: AllocatorCore) -> list[str]:
    """Every broken invariant, as one sentence each; empty when all hold."""
    problems: list[str] = []
    problems += _check_agents(core)
    problems += _check_frameworks(core)
    problems += _check_sorters(core)
    problems += _check_quota(core)
    problems += _check_filters(core)
    pause = core.pause
    if pause is not None and len(core.agents) >= pause.expected:
        problems.append(
            f"allocation is paused for recovery with {len(core.agents)} agents added, though"
            f" {pause.expected} end the pause"
        )
    if pause is not None and pause.wanted_at is None and len(core.agents) >= pause.wanted:
        problems.append(
            f"recovery pause: {len(core.agents)} agents added of {pause.wanted} wanted, but"
            " it did not note when the count was reached"
        )
    return problems


def _check_agents(core: AllocatorCore) -> list[str]:
    problems = []
    totals: Quantities = {}
    active = 0
    for agent_id, agent in core.agents.items():
        add_into(totals, agent.total_q)
        active += agent.active
        held = Resources.EMPTY
        for (framework_id, role), resources in agent.allocated.items():
            held = held + resources
            fw = core.frameworks.get(framework_id)
            mirror = None if fw is None else fw.allocated.get(role, {}).get(agent_id)
            if mirror != resources:
                problems.append(
                    f"agent {agent_id}: allocation to {framework_id}/{role} is {resources},"
                    f" the framework's record says {mirror}"
                )
            for reserved_to in resources.reservation_roles():
                if not is_ancestor_or_self(reserved_to, role):
                    problems.append(
                        f"agent {agent_id}: resources reserved to {reserved_to} are allocated to"
                        f" {framework_id} in role {role}"
                    )
        if not agent.total.contains(held):
            problems.append(f"agent {agent_id} is over-allocated by {held - agent.total}")
        if agent.free != agent.total - held:
            problems.append(
                f"agent {agent_id}: free is {agent.free}, total minus allocated is"
                f" {agent.total - held}"
            )
        if agent.free_q != quantities(agent.free) or agent.total_q != quantities(agent.total):
            problems.append(f"agent {agent_id}: cached quantities are stale")
        plain = not agent.free.reservation_roles() and not agent.free.revocable()
        if agent.plain != plain:
            problems.append(f"agent {agent_id}: fast-path flag is {agent.plain}, should be {plain}")
        if agent.has_gpus != (agent.total_q.get("gpus", 0) > 0):
            problems.append(f"agent {agent_id}: GPU flag is stale")
        if agent.active and agent.free and agent_id not in core.dirty and agent_id not in core.idle:
            problems.append(f"agent {agent_id} has free resources but is neither dirty nor idle")
        if not agent.active and agent_id in core.idle:
            problems.append(f"inactive agent {agent_id} is idle")
    if active != core.active_agents:
        problems.append(f"{core.active_agents} agents counted active, {active} are")
    if totals != core.totals.totals():
        problems.append(f"share totals are {core.totals.totals()}, agents add up to {totals}")
    for agent_id in (*core.dirty, *core.idle):
        if agent_id not in core.agents:
            problems.append(f"unknown agent {agent_id} is dirty or idle")
    both = core.idle & set(core.dirty)
    if both:
        problems.append(f"agents both dirty and idle: {sorted(both)}")
    return problems


def _check_frameworks(core: AllocatorCore) -> list[str]:
    problems = []
    for framework_id, fw in core.frameworks.items():
        for role, by_agent in fw.allocated.items():
            if not by_agent:
                problems.append(f"framework {framework_id} keeps an empty allocation for {role}")
            for agent_id, resources in by_agent.items():
                agent = core.agents.get(agent_id)
                mirror = None if agent is None else agent.allocated.get((framework_id, role))
                if mirror != resources:
                    problems.append(
                        f"framework {framework_id}/{role} holds {resources} on agent {agent_id},"
                        f" the agent's record says {mirror}"
                    )
        if not fw.registered and (fw.active or not fw.allocated):
            problems.append(f"placeholder framework {framework_id} is active or holds nothing")
        if fw.registered and not fw.suppressed <= fw.roles:
            problems.append(f"framework {framework_id} suppresses roles it does not have")
    return problems


def _check_sorters(core: AllocatorCore) -> list[str]:
    problems = []
    role_sorter = core.role_sorter
    if set(role_sorter.clients()) != set(core.fw_sorters):
        problems.append("the role sorter's clients are not the roles with framework sorters")
    expected_clients: dict[str, set[str]] = {}
    for framework_id, fw in core.frameworks.items():
        roles = set(fw.allocated) | (set(fw.roles) if fw.registered else set())
        for role in roles:
            expected_clients.setdefault(role, set()).add(framework_id)
    role_totals: dict[str, Quantities] = {}
    for role, sorter in core.fw_sorters.items():
        if set(sorter.clients()) != expected_clients.get(role, set()):
            problems.append(f"role {role}: sorter clients {sorted(sorter.clients())} are wrong")
        problems += [f"role {role}: {p}" for p in sorter.check()]
        role_total: Quantities = {}
        active = 0
        for framework_id in sorter.clients():
            client = core.frameworks.get(framework_id)
            if client is None:
                problems.append(f"role {role}: sorter client {framework_id} is unknown")
                continue
            fw = client
            held: Quantities = {}
            for resources in fw.allocated.get(role, {}).values():
                add_into(held, quantities(resources))
            add_into(role_total, held)
            if sorter.allocation(framework_id) != held:
                problems.append(
                    f"role {role}: sorter has {sorter.allocation(framework_id)} for"
                    f" {framework_id}, which holds {held}"
                )
            if sorter.is_active(framework_id) != fw.wants(role):
                problems.append(f"role {role}: activity of {framework_id} in its sorter is wrong")
            active += sorter.is_active(framework_id)
        if core.role_active.get(role) != active:
            problems.append(
                f"role {role}: {core.role_active.get(role)} counted active, {active} are"
            )
        if role_sorter.is_active(role) != (active > 0):
            problems.append(f"role {role}: activity in the role sorter is wrong")
        role_totals[role] = role_total
    for role in core.fw_sorters:
        subtree: Quantities = {}
        for other, amounts in role_totals.items():
            if is_ancestor_or_self(role, other):
                add_into(subtree, amounts)
        if role_sorter.allocation(role) != subtree:
            problems.append(
                f"role {role}: role sorter has {role_sorter.allocation(role)}, frameworks in its"
                f" subtree hold {subtree}"
            )
    problems += [f"role sorter: {p}" for p in role_sorter.check()]
    return problems


def _check_quota(core: AllocatorCore) -> list[str]:
    problems = []
    ledger = core.quota
    reserved: dict[str, Quantities] = {}
    unreserved_total: Quantities = {}
    for agent in core.agents.values():
        for role in agent.total.reservation_roles():
            add_into(
                reserved.setdefault(top_role(role), {}), quantities(agent.total.reserved(role))
            )
        add_into(unreserved_total, quota_quantities(agent.total))
    allocated: dict[str, Quantities] = {}
    unreserved_allocated: Quantities = {}
    for fw in core.frameworks.values():
        for role, by_agent in fw.allocated.items():
            for resources in by_agent.values():
                amounts = quota_quantities(resources)
                if amounts:
                    add_into(allocated.setdefault(top_role(role), {}), amounts)
                    add_into(unreserved_allocated, amounts)
    if not ledger.tracking:
        allocated, unreserved_allocated = {}, {}
    if ledger.tracking != bool(ledger.quotas):
        problems.append("the quota ledger tracks allocations exactly while some quota is set")
    for what, mine, truth in (
        ("reservations", ledger.reserved, reserved),
        ("allocations", ledger.allocated, allocated),
    ):
        mine_clean = {r: q for r, q in mine.items() if q}
        if mine_clean != truth:
            problems.append(f"quota ledger {what} are {mine_clean}, should be {truth}")
    if ledger.unreserved_total != unreserved_total:
        problems.append("quota ledger's unreserved total is stale")
    if ledger.unreserved_allocated != unreserved_allocated:
        problems.append("quota ledger's unreserved allocation is stale")
    for role, quota in ledger.quotas.items():
        if "/" in role:
            problems.append(f"quota set on non-top-level role {role}")
        over = ledger.over_limits(role)
        if over and role not in ledger.over_limit_ok:
            problems.append(
                f"role {role} consumes {format_quantities(over)}, over its limits"
                f" {format_quantities(quota.limits)}"
            )
    return problems


def _check_filters(core: AllocatorCore) -> list[str]:
    problems = []
    installed: list[RefuseFilter] = []
    for framework_id, fw in core.frameworks.items():
        for role, by_agent in fw.filters.items():
            for agent_id, filters in by_agent.items():
                if not filters:
                    problems.append(f"empty filter list for {framework_id}/{role}/{agent_id}")
                for refuse_filter in filters:
                    installed.append(refuse_filter)
                    where = (refuse_filter.framework_id, refuse_filter.role, refuse_filter.agent_id)
                    if where != (framework_id, role, agent_id) or not refuse_filter.live:
                        problems.append(f"filter {where} is filed under the wrong key or dead")
                    if not fw.registered or role not in fw.roles:
                        problems.append(f"filter {where} is for a role the framework left")
                    if agent_id not in core.agents:
                        problems.append(f"filter {where} names an unknown agent")
                    lasting = refuse_filter.expires_at - refuse_filter.created_at
                    if lasting < core.options.allocation_interval:
                        problems.append(f"filter {where} lasts less than an allocation interval")
    in_heap = {id(f) for f in core.expiries.live()}
    if in_heap != {id(f) for f in installed}:
        problems.append("the filter expiry heap and the installed filters disagree")
    counted = core.expiries.dead()
    if counted != len(core.expiries) - len(in_heap):
        problems.append(
            f"the filter expiry heap counts {counted} dead entries, but holds"
            f" {len(core.expiries) - len(in_heap)}"
        )
    return problems
