"""The allocator's records of agents and frameworks, and small helpers over quantities.

Everything here is plain data owned by one :class:`~master.allocator.hierarchical.
HierarchicalAllocator`; the cycle, the explanations and the invariant checks read it directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from protos.resources import Resources

from .filters import RefuseFilter
from .sorter import Quantities

__all__ = [
    "DEFAULT_MIN_ALLOCATABLE",
    "GPU_RESOURCES",
    "REVOCABLE_RESOURCES",
    "AgentState",
    "FrameworkState",
    "MinAllocatable",
    "Offers",
    "add_into",
    "allocatable",
    "min_allocatable",
    "parse_min_allocatable",
    "quantities",
    "subtract_from",
    "top_role",
]

GPU_RESOURCES = "GPU_RESOURCES"
"""Framework capability without which an agent with GPUs is never offered (Mesos's name)."""

REVOCABLE_RESOURCES = "REVOCABLE_RESOURCES"
"""Framework capability without which revocable resources are left out of its offers."""

Offers = dict[str, dict[str, dict[str, Resources]]]
"""What one cycle allocated: framework id -> role -> agent id -> resources."""

MinAllocatable = tuple[Quantities, ...]
"""Alternatives: an offer is worth making if it holds at least one of them entirely."""


def quantities(resources: Resources) -> Quantities:
    """The scalar totals of ``resources`` (over all reservations), in int thousandths."""
    return dict(resources.scalar_thousandths())  # Kept by ``resources``: no float round trip.


def add_into(target: dict[str, int], amounts: Mapping[str, int]) -> None:
    """``target += amounts`` in place."""
    for name, value in amounts.items():
        target[name] = target.get(name, 0) + value


def subtract_from(target: dict[str, int], amounts: Mapping[str, int]) -> None:
    """``target -= amounts`` in place, dropping names that reach zero or less."""
    for name, value in amounts.items():
        left = target.get(name, 0) - value
        if left > 0:
            target[name] = left
        else:
            target.pop(name, None)


def top_role(role: str) -> str:
    """The top-level ancestor of ``role`` (quota is set on these)."""
    return role.partition("/")[0]


def min_allocatable(
    alternatives: Iterable[str | Resources | Mapping[str, float]],
) -> MinAllocatable:
    """Alternatives as text (``"cpus:1;mem:32"``), Resources or ``{name: amount}``: quantities."""
    out: list[Quantities] = []
    for alternative in alternatives:
        if isinstance(alternative, str):
            out.extend(parse_min_allocatable(alternative))
        elif isinstance(alternative, Resources):
            out.append(quantities(alternative))
        else:
            amounts = {}
            for name, value in alternative.items():
                if not value >= 0:
                    raise ValueError(f"minimum allocatable {name}:{value} must be non-negative")
                amounts[name] = round(value * 1000)
            out.append(amounts)
    return tuple(out)


def parse_min_allocatable(text: str) -> MinAllocatable:
    """Parse Mesos's ``--min_allocatable_resources`` form: ``"cpus:0.01|mem:32"``.

    ``|`` separates alternatives, ``;`` the resources one alternative needs together.
    """
    alternatives = []
    for part in text.split("|"):
        if part.strip():
            resources = Resources.parse(part)
            if resources.reservation_roles() or resources != Resources.scalars(
                **resources.scalar_totals()
            ):
                raise ValueError(
                    f"invalid minimum allocatable {part.strip()!r}: only unreserved scalars"
                )
            alternatives.append(quantities(resources))
    return tuple(alternatives)


DEFAULT_MIN_ALLOCATABLE: MinAllocatable = ({"cpus": 10}, {"mem": 32_000})
"""Mesos's default ``--min_allocatable_resources``: ``cpus:0.01|mem:32``."""


def allocatable(amounts: Mapping[str, int], alternatives: MinAllocatable) -> bool:
    """Whether ``amounts`` (of a non-empty offer) hold one of the alternatives entirely."""
    if not alternatives:
        return True
    for alternative in alternatives:
        for name, value in alternative.items():
            if amounts.get(name, 0) < value:
                break
        else:
            return True
    return False


@dataclass(slots=True, eq=False)
class AgentState:
    """What the allocator knows of one agent.

    ``free`` is ``total`` minus everything offered or allocated; ``free_q`` its scalar quantities.
    ``plain`` says ``free`` holds no reservation and nothing revocable, so any role may take all
    of it as it is (the allocation cycle's fast path).
    """

    agent_id: str
    total: Resources
    total_q: Quantities
    has_gpus: bool
    capabilities: frozenset[str]
    active: bool = True
    free: Resources = Resources.EMPTY
    free_q: Quantities = field(default_factory=dict)
    plain: bool = True
    allocated: dict[tuple[str, str], Resources] = field(default_factory=dict)

    def set_free(self, free: Resources, free_q: Quantities | None = None) -> None:
        """Replace ``free`` and the values derived from it (``free_q``: its quantities, if the
        caller has them; they are shared, so nobody may change them in place)."""
        self.free = free
        self.free_q = quantities(free) if free_q is None else free_q
        self.plain = not free.reservation_roles() and not free.revocable()


@dataclass(slots=True, eq=False)
class FrameworkState:
    """What the allocator knows of one framework.

    A framework first seen through an agent's used resources (before it was added) exists with
    ``registered=False``: its allocations are tracked, but it is offered nothing.
    """

    framework_id: str
    roles: frozenset[str] = frozenset()
    capabilities: frozenset[str] = frozenset()
    gpu: bool = False
    revocable: bool = False
    registered: bool = False
    active: bool = False
    suppressed: set[str] = field(default_factory=set)
    min_allocatable: dict[str, MinAllocatable] = field(default_factory=dict)
    allocated: dict[str, dict[str, Resources]] = field(default_factory=dict)
    filters: dict[str, dict[str, list[RefuseFilter]]] = field(default_factory=dict)

    def set_capabilities(self, capabilities: Iterable[str]) -> None:
        """Replace the capabilities and the flags derived from them (``gpu``, ``revocable``)."""
        self.capabilities = frozenset(capabilities)
        self.gpu = GPU_RESOURCES in self.capabilities
        self.revocable = REVOCABLE_RESOURCES in self.capabilities

    def wants(self, role: str) -> bool:
        """Whether it should be offered resources for ``role`` now."""
        return (
            self.active and self.registered and role in self.roles and role not in self.suppressed
        )
