"""Explanations: why a framework received nothing, or less than it could use, in the last cycle.

"Why is my task pending?" is the question operators ask most of any scheduler. The answer is
assembled *lazily*: the hot path only keeps a :class:`CycleRecord` of what it gave away (the
offers it returns anyway, plus each receiver's share at the moment it was first served), and
:func:`explain` reads that record together with the allocator's current state (activity,
suppression, filters, quota, free resources) when someone asks. The cost of asking grows with
the free agents and the last cycle's offers; the cycle itself pays only a dict entry per served
(framework, role).

Each reason is a frozen dataclass with a :class:`ReasonCode`, typed fields, a human ``message``
and :meth:`Explanation.to_dict` for the web UI and the CLI.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar

from protos.resources import Resources

from .quota import format_quantities
from .sorter import Quantities
from .state import Offers, allocatable, quantities

if TYPE_CHECKING:
    from .core import AllocatorCore
    from .state import AgentState, FrameworkState

__all__ = [
    "CycleRecord",
    "Explanation",
    "Filtered",
    "GpuGated",
    "Inactive",
    "NoActiveAgents",
    "NoAgentLargeEnough",
    "OutrankedByDRF",
    "QuotaHeadroom",
    "QuotaLimit",
    "ReasonCode",
    "RecoveryPaused",
    "Suppressed",
    "Winner",
    "explain",
]

MAX_WINNERS = 10
"""How many of the frameworks served ahead of the asking one an explanation names."""


class ReasonCode(StrEnum):
    """ReasonCode names why resources did not reach a framework."""

    INACTIVE = "INACTIVE"
    RECOVERY_PAUSED = "RECOVERY_PAUSED"
    NO_ACTIVE_AGENTS = "NO_ACTIVE_AGENTS"
    SUPPRESSED = "SUPPRESSED"
    FILTERED = "FILTERED"
    QUOTA_LIMIT = "QUOTA_LIMIT"
    QUOTA_HEADROOM = "QUOTA_HEADROOM"
    NO_AGENT_LARGE_ENOUGH = "NO_AGENT_LARGE_ENOUGH"
    GPU_GATED = "GPU_GATED"
    OUTRANKED_BY_DRF = "OUTRANKED_BY_DRF"


@dataclass(slots=True)
class CycleRecord:
    """CycleRecord is what one cycle leaves behind for :func:`explain`.

    ``shares`` holds, per served (framework, role), the framework's share in the role just
    before its first allocation of the cycle; ``role_shares`` the same for roles. ``held_back``
    counts, per role, the agents on which headroom for others' guarantees cut an offer.
    """

    number: int
    now: float
    offers: Offers
    considered: int
    shares: dict[tuple[str, str], float] = field(default_factory=dict)
    role_shares: dict[str, float] = field(default_factory=dict)
    held_back: dict[str, int] = field(default_factory=dict)


def _units(amounts: Mapping[str, int]) -> dict[str, float]:
    return {name: value / 1000 for name, value in sorted(amounts.items())}


@dataclass(frozen=True, kw_only=True)
class Explanation:
    """Explanation is one reason; subclasses carry the fields of their :class:`ReasonCode`."""

    code: ClassVar[ReasonCode]
    framework_id: str
    cycle: int

    @property
    def message(self) -> str:
        """One sentence for a human."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready form: ``code``, ``message`` and every field."""
        out: dict[str, object] = {"code": self.code.value, "message": self.message}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = [v.to_dict() if isinstance(v, Winner) else v for v in value]
            out[f.name] = value
        return out


@dataclass(frozen=True, kw_only=True)
class Inactive(Explanation):
    """The framework is deactivated (disconnected, or failing over)."""

    code: ClassVar[ReasonCode] = ReasonCode.INACTIVE

    @property
    def message(self) -> str:
        return f"framework {self.framework_id} is inactive, so it is offered nothing"


@dataclass(frozen=True, kw_only=True)
class RecoveryPaused(Explanation):
    """A new leader makes no offers until the ``expected`` agents are back (``agents`` are), or
    ``wanted`` of them and no more come, or until ``until`` (:mod:`master.allocator.pause`)."""

    code: ClassVar[ReasonCode] = ReasonCode.RECOVERY_PAUSED
    agents: int
    wanted: int
    expected: int
    until: float

    @property
    def message(self) -> str:
        return (
            f"allocation is paused while agents reregister with a new leading master:"
            f" {self.agents} of {self.expected} expected agents are back; offers resume once"
            f" all are, once {self.wanted} are and no more come, or at {_when(self.until)}"
        )


@dataclass(frozen=True, kw_only=True)
class NoActiveAgents(Explanation):
    """No agent is active."""

    code: ClassVar[ReasonCode] = ReasonCode.NO_ACTIVE_AGENTS

    @property
    def message(self) -> str:
        return "there are no active agents"


@dataclass(frozen=True, kw_only=True)
class Suppressed(Explanation):
    """The framework suppressed offers for ``roles``."""

    code: ClassVar[ReasonCode] = ReasonCode.SUPPRESSED
    roles: tuple[str, ...]

    @property
    def message(self) -> str:
        return f"offers are suppressed for role(s) {', '.join(self.roles)}; REVIVE to get offers"


@dataclass(frozen=True, kw_only=True)
class Filtered(Explanation):
    """Its own refuse filters withhold ``agents`` of the ``candidates`` with free resources."""

    code: ClassVar[ReasonCode] = ReasonCode.FILTERED
    role: str
    agents: int
    candidates: int
    earliest_expiry: float

    @property
    def message(self) -> str:
        which = (
            f"all {self.candidates}"
            if self.agents == self.candidates
            else f"{self.agents} of {self.candidates}"
        )
        return (
            f"{which} agent(s) with free resources for role {self.role} are filtered by the"
            f" framework's own declines; the first filter expires at {_when(self.earliest_expiry)}"
            " (REVIVE clears them)"
        )


@dataclass(frozen=True, kw_only=True)
class QuotaLimit(Explanation):
    """The role's top-level ancestor consumes all its quota limit on some resources."""

    code: ClassVar[ReasonCode] = ReasonCode.QUOTA_LIMIT
    role: str
    quota_role: str
    limits: Mapping[str, float]
    consumed: Mapping[str, float]

    @property
    def message(self) -> str:
        at = ", ".join(
            f"{n} {self.consumed.get(n, 0):g}/{self.limits[n]:g}" for n in sorted(self.limits)
        )
        return f"role {self.quota_role} is at its quota limit ({at}), so role {self.role} gets none"


@dataclass(frozen=True, kw_only=True)
class QuotaHeadroom(Explanation):
    """Free resources on ``agents`` are held back for other roles' unmet quota guarantees."""

    code: ClassVar[ReasonCode] = ReasonCode.QUOTA_HEADROOM
    role: str
    agents: int

    @property
    def message(self) -> str:
        return (
            f"free resources on {self.agents} agent(s) are held back for other roles' unmet"
            f" quota guarantees (role {self.role})"
        )


@dataclass(frozen=True, kw_only=True)
class NoAgentLargeEnough(Explanation):
    """No agent has enough free resources for the role's minimum allocatable resources."""

    code: ClassVar[ReasonCode] = ReasonCode.NO_AGENT_LARGE_ENOUGH
    role: str
    candidates: int
    min_allocatable: tuple[Mapping[str, float], ...]
    largest_free: Mapping[str, float]

    @property
    def message(self) -> str:
        wanted = " or ".join(
            format_quantities({n: round(v * 1000) for n, v in alt.items()})
            for alt in self.min_allocatable
        )
        if not self.candidates:
            return f"no active agent has free resources for role {self.role}"
        largest = format_quantities({n: round(v * 1000) for n, v in self.largest_free.items()})
        return (
            f"none of the {self.candidates} agent(s) with free resources for role {self.role}"
            f" has the minimum {wanted} free (at most {largest})"
        )


@dataclass(frozen=True, kw_only=True)
class GpuGated(Explanation):
    """Free resources are only on GPU agents, and the framework lacks GPU_RESOURCES."""

    code: ClassVar[ReasonCode] = ReasonCode.GPU_GATED
    role: str
    agents: int

    @property
    def message(self) -> str:
        return (
            f"{self.agents} agent(s) with free resources for role {self.role} have GPUs, and the"
            " framework lacks the GPU_RESOURCES capability"
        )


@dataclass(frozen=True, slots=True)
class Winner:
    """A framework served ahead: its role, share and role share when first served, agents."""

    framework_id: str
    role: str
    share: float
    role_share: float
    agents: int

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready form."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, kw_only=True)
class OutrankedByDRF(Explanation):
    """Resources it could use went to frameworks ahead of it in DRF order (lower shares)."""

    code: ClassVar[ReasonCode] = ReasonCode.OUTRANKED_BY_DRF
    role: str
    share: float
    role_share: float
    agents: int
    winners: tuple[Winner, ...]

    @property
    def message(self) -> str:
        names = ", ".join(
            f"{w.framework_id} (role {w.role}, share {w.share:.3g}, role share {w.role_share:.3g})"
            for w in self.winners
        )
        return (
            f"{self.agents} agent(s) it could use went to frameworks ranked ahead by DRF"
            f" (its share in role {self.role} is {self.share:.3g}, role share"
            f" {self.role_share:.3g}): {names}"
        )


def explain(core: AllocatorCore, framework_id: str, now: float | None = None) -> list[Explanation]:
    """Why ``framework_id`` received nothing or less than it could use in the last cycle.

    Filters are judged as of ``now`` (default: the last cycle's time); a filter installed after
    the cycle (a decline of its offers) counts from its creation.
    """
    fw = core.frameworks.get(framework_id)
    if fw is None or not fw.registered:
        raise KeyError(f"unknown framework {framework_id!r}")
    record = core.last_cycle
    cycle = record.number if record is not None else 0
    if not fw.active:
        return [Inactive(framework_id=framework_id, cycle=cycle)]
    pause = core.pause
    if pause is not None:
        return [
            RecoveryPaused(
                framework_id=framework_id,
                cycle=cycle,
                agents=len(core.agents),
                wanted=pause.wanted,
                expected=pause.expected,
                until=pause.deadline,
            )
        ]
    if not core.active_agents:
        return [NoActiveAgents(framework_id=framework_id, cycle=cycle)]
    out: list[Explanation] = []
    suppressed = sorted(fw.suppressed & fw.roles)
    if suppressed:
        out.append(Suppressed(framework_id=framework_id, cycle=cycle, roles=tuple(suppressed)))
    free_agents = [
        agent
        for agent_id in dict.fromkeys((*core.dirty, *sorted(core.idle)))
        if (agent := core.agents.get(agent_id)) is not None and agent.active and agent.free
    ]
    at = now if now is not None else record.now if record is not None else 0.0
    for role in sorted(fw.roles - fw.suppressed):
        out.extend(_explain_role(core, fw, role, free_agents, cycle=cycle, now=at))
    return out


class _Tally:
    """How each agent the framework could have been offered fared, for one role."""

    def __init__(self, core: AllocatorCore, fw: FrameworkState, role: str, now: float) -> None:
        self.core, self.fw, self.role, self.now = core, fw, role, now
        self.mins = core.min_allocatable_for(fw, role)
        self.seen: set[str] = set()
        self.gpu = self.small = self.filtered = self.held = 0
        self.earliest = float("inf")
        self.largest: dict[str, int] = {}
        self.served: dict[tuple[str, str], int] = {}
        self.served_agents: set[str] = set()
        self._surplus: Quantities | None = None

    def classify(
        self, agent: AgentState, resources: Resources, winner: tuple[str, str] | None
    ) -> None:
        """Count one agent, with the resources the framework could have had on it."""
        fw = self.fw
        available = resources.allocatable_to(self.role)
        if not fw.revocable:
            available = available.non_revocable()
        if not available or agent.agent_id in self.seen:
            return
        self.seen.add(agent.agent_id)
        if agent.has_gpus and not fw.gpu:
            self.gpu += 1
            return
        amounts = quantities(available)
        if not allocatable(amounts, self.mins):
            self.small += 1
            for name, value in amounts.items():
                self.largest[name] = max(self.largest.get(name, 0), value)
            return
        matching = [
            f.expires_at
            for f in fw.filters.get(self.role, {}).get(agent.agent_id, ())
            if f.filters(available, max(self.now, f.created_at))
        ]
        if matching:
            self.filtered += 1
            self.earliest = min(self.earliest, *matching)
            return
        if winner is not None:
            self.served[winner] = self.served.get(winner, 0) + 1
            self.served_agents.add(agent.agent_id)
        elif self._held(amounts):
            self.held += 1

    def _held(self, amounts: Quantities) -> bool:
        quota = self.core.quota
        if self._surplus is None:
            required = quota.required_headroom()
            if not required:
                self._surplus = {}
            else:
                available = quota.available_headroom()
                self._surplus = {n: v - required.get(n, 0) for n, v in available.items()}
        return bool(self._surplus) and any(self._surplus.get(n, 0) <= 0 for n in amounts)


def _explain_role(
    core: AllocatorCore,
    fw: FrameworkState,
    role: str,
    free_agents: list[AgentState],
    *,
    cycle: int,
    now: float,
) -> list[Explanation]:
    framework_id = fw.framework_id
    record = core.last_cycle
    out: list[Explanation] = []
    top = role.partition("/")[0]
    quota = core.quota.quotas.get(top)
    room = core.quota.limit_room(top)
    if quota is not None and room is not None and not all(room.values()):
        consumed = _units(core.quota.consumed(top))
        limits = _units(quota.limits)
        out.append(
            QuotaLimit(
                framework_id=framework_id,
                cycle=cycle,
                role=role,
                quota_role=top,
                limits=limits,
                consumed=consumed,
            )
        )
    tally = _Tally(core, fw, role, now)
    for agent in free_agents:
        tally.classify(agent, agent.free, None)
    if record is not None:
        for other_id, by_role in record.offers.items():
            if other_id == framework_id:
                continue
            for other_role, by_agent in by_role.items():
                for agent_id, resources in by_agent.items():
                    served_on = core.agents.get(agent_id)
                    if served_on is not None:
                        tally.classify(served_on, resources, (other_id, other_role))
    candidates = len(tally.seen)
    if tally.filtered:
        out.append(
            Filtered(
                framework_id=framework_id,
                cycle=cycle,
                role=role,
                agents=tally.filtered,
                candidates=candidates,
                earliest_expiry=tally.earliest,
            )
        )
    if tally.gpu:
        out.append(GpuGated(framework_id=framework_id, cycle=cycle, role=role, agents=tally.gpu))
    if tally.held:
        out.append(
            QuotaHeadroom(framework_id=framework_id, cycle=cycle, role=role, agents=tally.held)
        )
    if tally.served:
        out.append(_outranked(core, fw, role, tally, cycle))
    received = record is not None and bool(record.offers.get(framework_id, {}).get(role))
    if tally.small or (not candidates and not received and not out):
        out.append(
            NoAgentLargeEnough(
                framework_id=framework_id,
                cycle=cycle,
                role=role,
                candidates=candidates,
                min_allocatable=tuple(_units(alt) for alt in tally.mins),
                largest_free=_units(tally.largest),
            )
        )
    return out


def _outranked(
    core: AllocatorCore, fw: FrameworkState, role: str, tally: _Tally, cycle: int
) -> OutrankedByDRF:
    """The frameworks the last cycle served on agents ``fw`` could have used for ``role``."""
    record = core.last_cycle
    assert record is not None
    winners = sorted(
        (
            Winner(
                framework_id=other_id,
                role=other_role,
                share=record.shares.get((other_id, other_role), 0.0),
                role_share=record.role_shares.get(other_role, 0.0),
                agents=count,
            )
            for (other_id, other_role), count in tally.served.items()
        ),
        key=lambda w: (w.role_share, w.share, w.framework_id, w.role),
    )
    sorter = core.fw_sorters.get(role)
    share = record.shares.get((fw.framework_id, role))
    if share is None:
        share = sorter.share(fw.framework_id) if sorter is not None else 0.0
    role_share = record.role_shares.get(role)
    if role_share is None:
        role_share = core.role_sorter.share(role)
    return OutrankedByDRF(
        framework_id=fw.framework_id,
        cycle=cycle,
        role=role,
        share=share,
        role_share=role_share,
        agents=len(tally.served_agents),
        winners=tuple(winners[:MAX_WINNERS]),
    )


def _when(seconds: float) -> str:
    """A clock reading for people: UTC time for epoch seconds, else the bare number (a test's
    or simulation's clock)."""
    if seconds >= 1e9:
        moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
        return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"t={seconds:g}"
