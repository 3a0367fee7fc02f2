"""Quota: guarantees and limits on top-level roles, and the ledger that enforces them.

As in Mesos (1.9+ ``QuotaConfig``), quota is set on top-level roles only and on unreserved,
non-revocable scalars only. A role's *consumption* is everything reserved to it or its subroles
(allocated or not: a reservation is bound to the role) plus its subtree's unreserved allocation.

* **Limits** are never exceeded by an allocation: an agent's unreserved scalars are chopped so
  that consumption stays at or under every limit. Names without a limit are unlimited.
* **Guarantees** are served first (stage 1 of the cycle), and the rest of the cycle holds back
  enough unreserved resources (*headroom*) to meet every role's unmet guarantee later:
  ``required = sum over roles of max(guarantee - consumption, 0)`` must stay within
  ``available = unreserved total - unreserved allocated``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from protos.resources import Resources, validate_role

from .sorter import Quantities
from .state import add_into, quantities, subtract_from, top_role

__all__ = [
    "Quota",
    "QuotaLedger",
    "QuotaSpec",
    "format_quantities",
    "make_quota",
    "quota_quantities",
    "shrink",
]


def format_quantities(amounts: Mapping[str, int]) -> str:
    """``{"cpus": 1500}`` as ``"cpus:1.5"`` (sorted, ``;``-separated)."""
    return ";".join(f"{name}:{value / 1000:g}" for name, value in sorted(amounts.items()))


@dataclass(frozen=True, slots=True)
class Quota:
    """Quota of one top-level role: ``guarantees`` and ``limits`` in thousandths."""

    guarantees: Quantities = field(default_factory=dict)
    limits: Quantities = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.guarantees or self.limits)


def quota_quantities(resources: Resources) -> Quantities:
    """The unreserved, non-revocable scalar part of ``resources``, as quantities."""
    return quantities(resources.filter(lambda key: not key.reservations and not key.revocable))


QuotaSpec = Resources | Mapping[str, float]
"""Quota amounts: Resources, or ``{name: amount}`` (which can say 0, as Resources cannot)."""


def _amounts(role: str, what: str, spec: Mapping[str, float]) -> Quantities:
    out = {}
    for name, value in spec.items():
        if not name or not isinstance(value, int | float) or not 0 <= value < 2**53 / 1000:
            raise ValueError(f"quota {what} for role {role!r}: bad amount {name!r}: {value!r}")
        out[name] = round(value * 1000)
    return out


def make_quota(role: str, guarantees: QuotaSpec, limits: QuotaSpec) -> Quota:
    """A validated Quota; raises ValueError saying exactly what is wrong.

    Zero guarantees mean nothing and are dropped; a zero limit forbids that resource.
    """
    validate_role(role)
    if role == "*":
        raise ValueError("quota cannot be set on role '*'")
    if "/" in role:
        raise ValueError(f"quota can only be set on top-level roles, not on {role!r}")
    parts = {}
    for what, resources in (("guarantees", guarantees), ("limits", limits)):
        if not isinstance(resources, Resources):
            parts[what] = _amounts(role, what, resources)
            continue
        if resources.reservation_roles():
            raise ValueError(f"quota {what} for role {role!r} must be unreserved: {resources}")
        if resources.revocable():
            raise ValueError(f"quota {what} for role {role!r} cannot be revocable: {resources}")
        plain = Resources.scalars(**resources.scalar_totals())
        if plain != resources:
            raise ValueError(
                f"quota {what} for role {role!r} must be scalars only, not {resources - plain}"
            )
        parts[what] = quantities(resources)
    parts["guarantees"] = {n: v for n, v in parts["guarantees"].items() if v}
    for name, guarantee in sorted(parts["guarantees"].items()):
        limit = parts["limits"].get(name)
        if limit is not None and guarantee > limit:
            raise ValueError(
                f"quota for role {role!r}: guarantee {name}:{guarantee / 1000:g}"
                f" exceeds limit {name}:{limit / 1000:g}"
            )
    return Quota(parts["guarantees"], parts["limits"])


def shrink(amounts: Mapping[str, int], cap: Mapping[str, int], *, keep_missing: bool) -> Quantities:
    """``amounts`` cut down to ``cap`` name by name.

    Names missing from ``cap`` are kept whole (``keep_missing``: a limit that does not mention
    them) or dropped (a headroom with none of them to spare).
    """
    out = {}
    for name, value in amounts.items():
        bound = cap.get(name)
        if bound is None:
            if keep_missing:
                out[name] = value
        elif bound > 0:
            out[name] = min(value, bound)
    return out


class QuotaLedger:
    """QuotaLedger keeps the quotas and every figure needed to enforce them, incrementally."""

    def __init__(self) -> None:
        self.quotas: dict[str, Quota] = {}
        # Reservations by top-level role, from the agents' totals.
        self.reserved: dict[str, Quantities] = {}
        # Unreserved non-revocable allocation by top-level role, and cluster-wide. Tracked only
        # while some quota is set (``tracking``), so a cluster without quota pays nothing for it.
        self.tracking = False
        self.allocated: dict[str, Quantities] = {}
        # Cluster-wide unreserved non-revocable totals, and how much of them is allocated.
        self.unreserved_total: Quantities = {}
        self.unreserved_allocated: Quantities = {}
        # Roles pushed over a limit by something other than an allocation (an agent coming back
        # with running tasks, a forced lower limit); ``validate`` tolerates them.
        self.over_limit_ok: set[str] = set()

    # -- agents -------------------------------------------------------------------------------

    def add_agent(self, total: Resources) -> None:
        """Count an agent's reservations and unreserved resources."""
        for role in total.reservation_roles():
            add_into(self.reserved.setdefault(top_role(role), {}), quantities(total.reserved(role)))
        add_into(self.unreserved_total, quota_quantities(total))

    def remove_agent(self, total: Resources) -> None:
        """Forget an agent's reservations and unreserved resources."""
        for role in total.reservation_roles():
            top = top_role(role)
            subtract_from(self.reserved.setdefault(top, {}), quantities(total.reserved(role)))
            if not self.reserved[top]:
                del self.reserved[top]
        subtract_from(self.unreserved_total, quota_quantities(total))

    # -- allocations --------------------------------------------------------------------------

    def start_tracking(self, allocations: Iterable[tuple[str, Resources]]) -> None:
        """Begin tracking allocations, given all current (role, resources) allocations."""
        if self.tracking:
            return
        self.tracking = True
        for role, resources in allocations:
            self.track(top_role(role), quota_quantities(resources))

    def stop_tracking(self) -> None:
        """Stop tracking allocations (no quota is left)."""
        self.tracking = False
        self.allocated.clear()
        self.unreserved_allocated.clear()

    def track(self, top: str, unreserved: Mapping[str, int]) -> None:
        """Record an unreserved allocation to a role under the top-level role ``top``."""
        if unreserved and self.tracking:
            add_into(self.allocated.setdefault(top, {}), unreserved)
            add_into(self.unreserved_allocated, unreserved)

    def untrack(self, top: str, unreserved: Mapping[str, int]) -> None:
        """Record that an unreserved allocation came back."""
        if unreserved and self.tracking:
            allocated = self.allocated.get(top, {})
            subtract_from(allocated, unreserved)
            if not allocated:
                self.allocated.pop(top, None)
            subtract_from(self.unreserved_allocated, unreserved)

    # -- figures ------------------------------------------------------------------------------

    def consumed(self, top: str) -> Quantities:
        """Reservations plus unreserved allocation of a top-level role's subtree."""
        out = dict(self.reserved.get(top, {}))
        add_into(out, self.allocated.get(top, {}))
        return out

    def limit_room(self, top: str) -> Quantities | None:
        """How much more each limited name may grow for ``top``; None when it has no limits."""
        quota = self.quotas.get(top)
        if quota is None or not quota.limits:
            return None
        consumed = self.consumed(top)
        return {name: max(limit - consumed.get(name, 0), 0) for name, limit in quota.limits.items()}

    def unmet_guarantees(self, top: str) -> Quantities:
        """What ``top`` still needs to reach its guarantees (empty when met or none)."""
        quota = self.quotas.get(top)
        if quota is None or not quota.guarantees:
            return {}
        consumed = self.consumed(top)
        return {
            name: guarantee - consumed.get(name, 0)
            for name, guarantee in quota.guarantees.items()
            if guarantee > consumed.get(name, 0)
        }

    def required_headroom(self) -> Quantities:
        """Unreserved resources to hold back for unmet guarantees of every role."""
        out: Quantities = {}
        for top, quota in self.quotas.items():
            if quota.guarantees:
                add_into(out, self.unmet_guarantees(top))
        return out

    def available_headroom(self) -> Quantities:
        """Unreserved, non-revocable resources that nobody holds."""
        allocated = self.unreserved_allocated
        out = {}
        for name, total in self.unreserved_total.items():
            left = total - allocated.get(name, 0)
            if left > 0:
                out[name] = left
        return out

    def tolerate_overruns(self) -> None:
        """Accept the roles now over a limit: something other than an allocation put them there
        (an agent with reservations or running tasks, a forced lower limit)."""
        self.over_limit_ok = {top for top in self.quotas if self.over_limits(top)}

    def forget_overruns(self) -> None:
        """Stop tolerating roles that came back under their limits."""
        self.over_limit_ok = {top for top in self.over_limit_ok if self.over_limits(top)}

    def over_limits(self, top: str) -> Quantities:
        """Names on which ``top`` consumes more than its limit (with the consumption)."""
        quota = self.quotas.get(top)
        if quota is None or not quota.limits:
            return {}
        consumed = self.consumed(top)
        return {n: consumed[n] for n, limit in quota.limits.items() if consumed.get(n, 0) > limit}
