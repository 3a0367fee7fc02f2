"""One allocation cycle: which free resources go to which framework, for which role.

The pipeline (Mesos's ``__generateOffers``, over the *dirty* agents only):

1. Expire due refuse filters (a heap); their agents become dirty.
2. Candidates: the dirty agents that are active and have something free, shuffled with the
   injected RNG.
3. Stage 1, only while some top-level role with frameworks is short of its quota guarantee: per
   agent, those roles in DRF order, their frameworks in DRF order; each gets its reservations
   plus unreserved resources toward its guarantee, and may burst up to its limit as long as the
   headroom others' guarantees need is kept.
4. Stage 2, agents reshuffled: per agent, every role in DRF order, its frameworks in DRF order.
   The first framework that can take the agent takes everything its role may have on it,
   chopped to the role's limit and to the spare headroom; the walk moves on to the next role
   only for what is left (other roles' reservations, a chopped remainder).
5. Agents still holding free resources become *idle*; the rest leave both sets.

Sorter order is a snapshot per agent, as in Mesos: allocations made on one agent are reported to
the sorters once that agent is done, so the next agent sees the new shares.

The common case (an agent with no reservations and nothing revocable, a role with no limit, no
headroom to keep) takes a fast path that does no arithmetic on ``Resources`` at all: the whole
free ``Resources`` object becomes the offer. A typical agent then costs a handful of dict
look-ups plus ``O(log F)`` to move its framework in a sorted list.
"""

from __future__ import annotations

from protos.resources import Resources

from .core import AllocatorCore, Offers
from .explain import CycleRecord
from .filters import RefuseFilter
from .quota import shrink
from .sorter import DRFSorter, Quantities
from .state import AgentState, FrameworkState, MinAllocatable, allocatable, quantities

__all__ = ["run_cycle"]

_EMPTY = Resources.EMPTY


class _Headroom:
    """Quota headroom during a cycle: what unmet guarantees need, and what is unheld."""

    __slots__ = ("available", "required")

    def __init__(self, required: Quantities, available: Quantities) -> None:
        self.required = required
        self.available = available

    def surplus(self) -> Quantities:
        required = self.required
        out = {}
        for name, value in self.available.items():
            spare = value - required.get(name, 0)
            if spare > 0:
                out[name] = spare
        return out

    def consume(self, guaranteed: Quantities, total: Quantities) -> None:
        for name, value in guaranteed.items():
            left = self.required.get(name, 0) - value
            if left > 0:
                self.required[name] = left
            else:
                self.required.pop(name, None)
        for name, value in total.items():
            self.available[name] = self.available.get(name, 0) - value


def _is_filtered(filters: list[RefuseFilter], offer: Resources, now: float) -> bool:
    return any(refuse_filter.filters(offer, now) for refuse_filter in filters)


def _scalars(amounts: Quantities) -> Resources:
    return Resources.scalars(**{name: value / 1000 for name, value in amounts.items()})


def _split(available: Resources) -> tuple[Resources, Quantities]:
    """``available`` as (what quota never holds back, its unreserved non-revocable scalars)."""
    quota_part = available.filter(lambda key: not key.reservations and not key.revocable)
    amounts = quantities(quota_part)
    return available - _scalars(amounts), amounts


def run_cycle(core: AllocatorCore, now: float) -> Offers:
    """Run one allocation cycle at ``now`` and return what it allocated."""
    core.cycles += 1
    for refuse_filter in core.expiries.pop_expired(now):
        core.drop_filter(refuse_filter)
        agent = core.agents.get(refuse_filter.agent_id)
        if agent is not None:
            core.mark_dirty(agent)

    dirty = core.dirty
    core.dirty = {}
    candidates: list[AgentState] = []
    for agent_id in dirty:
        agent = core.agents.get(agent_id)
        if agent is None:
            continue
        if agent.active and agent.free:
            candidates.append(agent)
        else:
            core.idle.discard(agent_id)

    offers: Offers = {}
    record = CycleRecord(number=core.cycles, now=now, offers=offers, considered=len(candidates))
    core.last_cycle = record
    if not candidates:
        return offers

    quota = core.quota
    headroom: _Headroom | None = None
    if any(q.guarantees for q in quota.quotas.values()):
        headroom = _Headroom(quota.required_headroom(), quota.available_headroom())
        guaranteed = [
            role
            for role, q in quota.quotas.items()
            if q.guarantees and core.role_active.get(role) and quota.unmet_guarantees(role)
        ]
        if guaranteed:
            core.rng.shuffle(candidates)
            for agent in candidates:
                guaranteed = _stage1_agent(
                    core, agent, guaranteed, headroom, offers=offers, record=record, now=now
                )
                if not guaranteed:
                    break
        if not headroom.required:
            headroom = None

    core.rng.shuffle(candidates)
    for agent in candidates:
        if agent.free:
            _stage2_agent(core, agent, headroom, offers=offers, record=record, now=now)

    idle = core.idle
    for agent in candidates:
        if agent.free:
            idle.add(agent.agent_id)
        else:
            idle.discard(agent.agent_id)
    return offers


def _give(
    core: AllocatorCore,
    fw: FrameworkState,
    role: str,
    agent: AgentState,
    offer: Resources,
    *,
    unreserved: Quantities,
    offers: Offers,
    record: CycleRecord,
) -> None:
    """Book ``offer`` to ``fw`` (the sorters hear of it when the agent is done)."""
    framework_id = fw.framework_id
    agent_id = agent.agent_id
    by_agent = fw.allocated.get(role)
    if by_agent is None:
        by_agent = fw.allocated[role] = {}
    previous = by_agent.get(agent_id)
    combined = offer if previous is None else previous + offer
    by_agent[agent_id] = combined
    agent.allocated[(framework_id, role)] = combined

    by_role = offers.get(framework_id)
    if by_role is None:
        by_role = offers[framework_id] = {}
    in_role = by_role.get(role)
    if in_role is None:
        in_role = by_role[role] = {}
    previous = in_role.get(agent_id)
    in_role[agent_id] = offer if previous is None else previous + offer

    shares = record.shares
    if (framework_id, role) not in shares:
        shares[(framework_id, role)] = core.fw_sorters[role].share(framework_id)
        if role not in record.role_shares:
            record.role_shares[role] = core.role_sorter.share(role)
    quota = core.quota
    if quota.tracking:
        quota.track(core.tops[role], unreserved)


def _apply(core: AllocatorCore, pending: list[tuple[str, str, Quantities]]) -> None:
    fw_sorters = core.fw_sorters
    role_sorter = core.role_sorter
    for framework_id, role, amounts in pending:
        fw_sorters[role].allocated(framework_id, amounts)
        role_sorter.allocated(role, amounts)


def _stage2_agent(
    core: AllocatorCore,
    agent: AgentState,
    headroom: _Headroom | None,
    *,
    offers: Offers,
    record: CycleRecord,
    now: float,
) -> None:
    frameworks = core.frameworks
    fw_sorters = core.fw_sorters
    tops = core.tops
    limited = core.quota.quotas
    default_min = core.options.min_allocatable_resources
    agent_id = agent.agent_id
    gpus = agent.has_gpus
    pending: list[tuple[str, str, Quantities]] = []
    for role in core.role_sorter.ordered():
        free = agent.free
        if not free:
            break
        top_quota = limited.get(tops[role])
        if agent.plain and headroom is None and (top_quota is None or not top_quota.limits):
            # Fast path: the first framework that can take the agent takes all of it.
            amounts = agent.free_q
            for framework_id in fw_sorters[role].ordered():
                fw = frameworks[framework_id]
                if gpus and not fw.gpu:
                    continue
                mins = fw.min_allocatable.get(role, default_min)
                if mins and not allocatable(amounts, mins):
                    continue
                if fw.filters:
                    by_agent = fw.filters.get(role)
                    if by_agent:
                        filters = by_agent.get(agent_id)
                        if filters and _is_filtered(filters, free, now):
                            continue
                _give(core, fw, role, agent, free, unreserved=amounts, offers=offers, record=record)
                pending.append((framework_id, role, amounts))
                agent.free = _EMPTY
                agent.free_q = {}
                agent.plain = True
                break
            continue
        _stage2_role(
            core, agent, role, headroom, offers=offers, record=record, now=now, pending=pending
        )
    if pending:
        _apply(core, pending)


class _Candidate:
    """What a role would be offered on an agent: the same for all its frameworks that agree on
    revocable resources, so it is computed once per (role, agent state, revocable)."""

    __slots__ = ("guaranteed", "offer", "offer_q", "unreserved", "usable_q")

    def __init__(
        self,
        usable_q: Quantities,
        offer: Resources,
        unreserved: Quantities,
        guaranteed: Quantities,
    ) -> None:
        self.usable_q = usable_q
        self.offer = offer
        self.offer_q = quantities(offer)
        self.unreserved = unreserved
        self.guaranteed = guaranteed


def _stage2_candidate(
    core: AllocatorCore,
    role: str,
    usable: Resources,
    headroom: _Headroom | None,
    record: CycleRecord,
) -> _Candidate:
    """Reservations, non-scalars, revocables, and unreserved scalars within limit and headroom."""
    always, extra = _split(usable)
    room = core.quota.limit_room(core.tops[role])
    if room is not None:
        extra = shrink(extra, room, keep_missing=True)
    if headroom is not None and extra:
        shrunk = shrink(extra, headroom.surplus(), keep_missing=False)
        if shrunk != extra:
            record.held_back[role] = record.held_back.get(role, 0) + 1
            extra = shrunk
    offer = always + _scalars(extra) if extra else always
    return _Candidate(quantities(usable), offer, extra, {})


def _stage2_role(
    core: AllocatorCore,
    agent: AgentState,
    role: str,
    headroom: _Headroom | None,
    *,
    offers: Offers,
    record: CycleRecord,
    now: float,
    pending: list[tuple[str, str, Quantities]],
) -> None:
    """The general case of stage 2 for one role on one agent."""
    available = agent.free if agent.plain else agent.free.allocatable_to(role)
    if not available:
        return
    revocable_here = not agent.plain and bool(available.revocable())
    candidates: dict[bool, _Candidate] = {}
    for framework_id in core.fw_sorters[role].ordered():
        fw = core.frameworks[framework_id]
        if agent.has_gpus and not fw.gpu:
            continue
        with_revocable = fw.revocable and revocable_here
        candidate = candidates.get(with_revocable)
        if candidate is None:
            usable = available if with_revocable else available.non_revocable()
            candidate = _stage2_candidate(core, role, usable, headroom, record)
            candidates[with_revocable] = candidate
        if not candidate.offer:
            if not revocable_here:
                return  # Every framework of the role would be offered the same nothing.
            continue
        mins = core.min_allocatable_for(fw, role)
        if not allocatable(candidate.usable_q, mins):
            continue
        offer = candidate.offer
        if not _offerable(fw, role, agent, offer, candidate.offer_q, mins=mins, now=now):
            continue
        extra = candidate.unreserved
        _give(core, fw, role, agent, offer, unreserved=extra, offers=offers, record=record)
        pending.append((framework_id, role, candidate.offer_q))
        if headroom is not None:
            headroom.consume({}, extra)
        agent.set_free(agent.free - offer)
        available = agent.free.allocatable_to(role)
        if not available:
            return
        revocable_here = bool(available.revocable())
        candidates.clear()


def _offerable(
    fw: FrameworkState,
    role: str,
    agent: AgentState,
    offer: Resources,
    amounts: Quantities,
    *,
    mins: MinAllocatable,
    now: float,
) -> bool:
    """Whether ``offer`` (of ``amounts``) is big enough and not refused by ``fw``'s filters."""
    if not allocatable(amounts, mins):
        return False
    filters = fw.filters.get(role, {}).get(agent.agent_id)
    return not (filters and _is_filtered(filters, offer, now))


def _stage1_order(core: AllocatorCore, roles: list[str]) -> list[str]:
    sorter = core.role_sorter
    if isinstance(sorter, DRFSorter):
        return sorted(roles, key=lambda role: (sorter.share(role), sorter.count(role), role))
    wanted = set(roles)
    return [role for role in sorter.ordered() if role in wanted]


def _stage1_candidate(
    core: AllocatorCore, role: str, usable: Resources, unmet: Quantities, headroom: _Headroom
) -> _Candidate | None:
    """Toward the guarantee first, then bursting within the limit and the spare headroom."""
    always, scalars = _split(usable)
    guaranteed = shrink(scalars, unmet, keep_missing=False)
    if not guaranteed:
        return None
    extra = {n: v - guaranteed.get(n, 0) for n, v in scalars.items()}
    extra = {n: v for n, v in extra.items() if v > 0}
    room = core.quota.limit_room(role)
    if room is not None:
        room = {n: v - guaranteed.get(n, 0) for n, v in room.items()}
        extra = shrink(extra, room, keep_missing=True)
    if headroom.required and extra:
        extra = shrink(extra, headroom.surplus(), keep_missing=False)
    taken = dict(guaranteed)
    for name, value in extra.items():
        taken[name] = taken.get(name, 0) + value
    return _Candidate(quantities(usable), always + _scalars(taken), taken, guaranteed)


def _stage1_agent(
    core: AllocatorCore,
    agent: AgentState,
    roles: list[str],
    headroom: _Headroom,
    *,
    offers: Offers,
    record: CycleRecord,
    now: float,
) -> list[str]:
    """Stage 1 on one agent: roles short of their guarantees, in DRF order.

    Returns the roles still short afterwards.
    """
    quota = core.quota
    pending: list[tuple[str, str, Quantities]] = []
    short = []
    for role in _stage1_order(core, roles):
        unmet = quota.unmet_guarantees(role)
        if not unmet:
            continue
        if not agent.free:
            short.append(role)
            continue
        available = agent.free.allocatable_to(role)
        revocable_here = bool(available.revocable())
        candidates: dict[bool, _Candidate | None] = {}
        for framework_id in core.fw_sorters[role].ordered():
            if not available or not unmet:
                break
            fw = core.frameworks[framework_id]
            if agent.has_gpus and not fw.gpu:
                continue
            with_revocable = fw.revocable and revocable_here
            if with_revocable not in candidates:
                usable = available if with_revocable else available.non_revocable()
                candidates[with_revocable] = _stage1_candidate(core, role, usable, unmet, headroom)
            candidate = candidates[with_revocable]
            if candidate is None:
                if not revocable_here:
                    break  # Nothing here counts toward the guarantee, for any framework.
                continue
            mins = core.min_allocatable_for(fw, role)
            if not allocatable(candidate.usable_q, mins):
                continue
            offer = candidate.offer
            if not _offerable(fw, role, agent, offer, candidate.offer_q, mins=mins, now=now):
                continue
            taken = candidate.unreserved
            _give(core, fw, role, agent, offer, unreserved=taken, offers=offers, record=record)
            pending.append((framework_id, role, candidate.offer_q))
            headroom.consume(candidate.guaranteed, taken)
            agent.set_free(agent.free - offer)
            unmet = quota.unmet_guarantees(role)
            available = agent.free.allocatable_to(role)
            revocable_here = bool(available.revocable())
            candidates.clear()
        if unmet:
            short.append(role)
    if pending:
        _apply(core, pending)
    return short
