"""The value layer of :mod:`protos.resources`: keys, reservations, exact scalars and ranges.

Private to :mod:`protos.resources` and its codec; import the public names from there.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, NamedTuple

from protos.v1 import mesos_pb2

RangesValue = tuple[tuple[int, int], ...]
_Value = int | RangesValue | frozenset[str]  # int = thousandths of a scalar

_MAX_THOUSANDTHS = 2**53  # Exact through a double (the proto form) up to here.
_MAX_RANGE_END = 2**64 - 1  # Range bounds are uint64 on the wire.
_INVALID_ROLE_CHARS = frozenset("\t\n\v\f\r \x7f")
_SPECIAL = frozenset("%(),;:[]{}")
_NAME_RE = re.compile(r"[^\s%(),;:\[\]{}]+")
_DIGITS_RE = re.compile(r"[0-9]+")
_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_STATIC = mesos_pb2.Resource.ReservationInfo.STATIC
_DYNAMIC = mesos_pb2.Resource.ReservationInfo.DYNAMIC


def _quoted(text: str, limit: int = 100) -> str:
    """``repr(text)`` of at most ``limit`` characters of it (errors never echo input in full)."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text)} chars)"


def validate_role(role: str) -> None:
    """Validate a role name by Mesos's rules (``src/common/roles.cpp``); raise ValueError if bad.

    ``"*"`` (unreserved) is valid. Otherwise: not empty, no leading, trailing or doubled ``/``,
    no ``.``, ``..`` or ``*`` path component, no component starting with ``-``, no whitespace
    or DEL.
    """
    if role == "*":
        return
    if not role:
        raise ValueError("invalid role '': role names cannot be empty")
    problem = None
    if role.startswith("/") or role.endswith("/"):
        problem = "cannot start or end with a slash"
    elif "//" in role:
        problem = "cannot contain two adjacent slashes"
    else:
        for component in role.split("/"):
            if component in (".", "..", "*"):
                problem = f"cannot include '{component}' as a component"
            elif component.startswith("-"):
                problem = f"component {_quoted(component)} starts with a dash"
            elif not _INVALID_ROLE_CHARS.isdisjoint(component):
                problem = f"component {_quoted(component)} contains whitespace or DEL"
            if problem:
                break
    if problem:
        raise ValueError(f"invalid role {_quoted(role)}: {problem}")


def is_ancestor_or_self(ancestor: str, role: str) -> bool:
    """Whether ``ancestor`` is ``role`` or one of its ancestors (``eng`` of ``eng/web``)."""
    return role == ancestor or (
        role.startswith(ancestor) and role[len(ancestor) : len(ancestor) + 1] == "/"
    )


@dataclass(frozen=True, slots=True)
class Reservation:
    """Reservation is one entry of a reservation stack: who the resource is reserved to, and how.

    ``static`` reservations come from the agent's ``--resources``; ``dynamic`` ones from RESERVE
    operations, optionally naming the ``principal`` that made them.
    """

    role: str
    type: Literal["static", "dynamic"] = "static"
    principal: str | None = None

    def __post_init__(self) -> None:
        validate_role(self.role)
        if self.role == "*":
            raise ValueError("invalid reservation: role '*' cannot be reserved")
        if self.type not in ("static", "dynamic"):
            raise ValueError(f"invalid reservation type {self.type!r}: not 'static' or 'dynamic'")


class ResourceKey(NamedTuple):
    """ResourceKey is what distinguishes two entries of a Resources: name, reservations, revocable.

    ``reservations`` is the reservation stack, outermost first; empty means unreserved.
    """

    name: str
    reservations: tuple[Reservation, ...] = ()
    revocable: bool = False

    @property
    def role(self) -> str:
        """The role the resource is reserved to (the top of the stack), or ``"*"``."""
        return self.reservations[-1].role if self.reservations else "*"


def _validate_stack(stack: tuple[Reservation, ...]) -> None:
    """Check that each reservation refines the one before it (Mesos's refinement rules)."""
    for outer, inner in itertools.pairwise(stack):
        if inner.type != "dynamic":
            raise ValueError(f"invalid refined reservation {inner.role!r}: must be dynamic")
        if inner.role == outer.role or not is_ancestor_or_self(outer.role, inner.role):
            raise ValueError(
                f"invalid refined reservation: role {inner.role!r} is not a refinement of"
                f" {outer.role!r}"
            )


# -- values ---------------------------------------------------------------------------------------


def _thousandths(value: float) -> int:
    """A validated non-negative finite float, rounded half-up to thousandths (Mesos's llround)."""
    if not math.isfinite(value):
        raise ValueError("value must be a finite number")
    if value < 0:
        raise ValueError("value must be non-negative")
    # Compared before scaling: a huge finite value (1e308) times 1000 is inf, and floor(inf)
    # raises OverflowError instead of saying what is wrong.
    n = math.floor(value * 1000 + 0.5) if value <= _MAX_THOUSANDTHS / 1000 else _MAX_THOUSANDTHS + 1
    if n > _MAX_THOUSANDTHS:
        raise ValueError(f"value is too large (at most {_MAX_THOUSANDTHS // 1000})")
    return n


def _merge_ranges(pairs: Iterable[tuple[int, int]]) -> RangesValue:
    """Sort and coalesce overlapping or adjacent inclusive ranges."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(pairs):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return tuple(out)


def _subtract_ranges(a: RangesValue, b: RangesValue) -> RangesValue:
    """The parts of merged ranges ``a`` that are not in merged ranges ``b``."""
    out: list[tuple[int, int]] = []
    j, nb = 0, len(b)
    for begin, hi in a:
        while j < nb and b[j][1] < begin:
            j += 1
        lo, k = begin, j
        while k < nb and b[k][0] <= hi:
            blo, bhi = b[k]
            if blo > lo:
                out.append((lo, blo - 1))
            lo = bhi + 1
            if lo > hi:
                break
            k += 1
        if lo <= hi:
            out.append((lo, hi))
    return tuple(out)


def _ranges_contain(a: RangesValue, b: RangesValue) -> bool:
    """Whether merged ranges ``a`` cover every number in ``b``."""
    i, na = 0, len(a)
    for lo, hi in b:
        while i < na and a[i][1] < lo:
            i += 1
        if i == na or a[i][0] > lo or a[i][1] < hi:
            return False
    return True


def _add_value(key: ResourceKey, x: _Value, y: _Value) -> _Value:
    if type(x) is int and type(y) is int:
        return x + y
    if isinstance(x, tuple) and isinstance(y, tuple):
        return _merge_ranges(x + y)
    if isinstance(x, frozenset) and isinstance(y, frozenset):
        return x | y
    raise ValueError(f"resource {key.name!r} has values of different types")


# Keys are interned so that keys of separately built Resources are the same object: dict lookups
# in the hot path then match by identity instead of comparing Reservation dataclasses.
_KEYS: dict[ResourceKey, ResourceKey] = {}
_MAX_KEYS = 100_000


def _accumulate(items: dict[ResourceKey, _Value], key: ResourceKey, value: _Value) -> None:
    if value:
        if len(_KEYS) >= _MAX_KEYS:
            _KEYS.clear()
        key = _KEYS.setdefault(key, key)
        current = items.get(key)
        items[key] = value if current is None else _add_value(key, current, value)


def _check_types(items: dict[ResourceKey, _Value]) -> None:
    """One type per resource name, whatever the reservations (``ports`` is always ranges)."""
    seen: dict[str, type] = {}
    for key, value in items.items():
        if seen.setdefault(key.name, type(value)) is not type(value):
            raise ValueError(f"resource {key.name!r} has values of different types")
