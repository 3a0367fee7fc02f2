"""Resources: an immutable, hashable bag of named cluster resources (Mesos's ``Resources``).

A ``Resources`` value maps a :class:`ResourceKey` (resource name, reservation stack, revocable
flag) to one value. Scalars are kept as **int thousandths**: Mesos treats scalars as fixed point
with three decimal digits, and integers make that exact, so ``0.1 + 0.2 == 0.3`` and subtracting
what was added gives back exactly what was there, however many times the allocator does it
(floats would drift and leave ``cpus:0.000000001`` crumbs behind). Ranges are kept as a sorted
tuple of merged, non-adjacent inclusive ``(begin, end)`` pairs, sets as ``frozenset[str]``. Zero
scalars, empty ranges and empty sets are never stored, so equal bags have equal dicts.

Validation happens once, where values come in (:meth:`Resources.parse`,
:meth:`Resources.from_protos`, :meth:`Resources.scalars`); arithmetic trusts its operands and
does no per-operation checks, because it runs in the allocator's hot path.

Text form (the agent's ``--resources`` flag, extended so that ``str()`` round-trips)::

    cpus:4;mem:4096;ports:[31000-32000];bugs(debug):{a,b};cpus(eng,eng/web[dynamic:alice]){REV}:1

A role in parentheses is a static reservation; a stack lists its refinements outermost first;
``role[dynamic]`` / ``role[dynamic:principal]`` mark dynamic reservations; ``{REV}`` marks
revocable resources. In roles, principals and set items, ``%(),;:[]{}`` and whitespace are written
as ``%XX`` escapes.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, ClassVar, Literal, NamedTuple
from urllib.parse import quote, unquote

from google.protobuf import json_format

from protos.v1 import mesos_pb2

__all__ = [
    "RangesValue",
    "Reservation",
    "ResourceKey",
    "Resources",
    "is_ancestor_or_self",
    "validate_role",
]

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
                problem = f"component '{component}' starts with a dash"
            elif not _INVALID_ROLE_CHARS.isdisjoint(component):
                problem = f"component '{component}' contains whitespace or DEL"
            if problem:
                break
    if problem:
        raise ValueError(f"invalid role {role!r}: {problem}")


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
    n = math.floor(value * 1000 + 0.5)
    if n > _MAX_THOUSANDTHS:
        raise ValueError("value is too large")
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


# -- text -----------------------------------------------------------------------------------------


def _escape(text: str) -> str:
    return "".join(
        quote(c, safe="") if c in _SPECIAL or c.isspace() or not c.isprintable() else c
        for c in text
    )


def _unescape(text: str) -> str:
    return unquote(text, errors="strict") if "%" in text else text


def _format_scalar(n: int) -> str:
    whole, frac = divmod(n, 1000)
    return f"{whole}.{frac:03d}".rstrip("0") if frac else str(whole)


def _format_key(key: ResourceKey) -> str:
    text = key.name
    if key.reservations:
        entries = []
        for r in key.reservations:
            entry = _escape(r.role)
            if r.type != "static" or r.principal is not None:
                principal = "" if r.principal is None else ":" + _escape(r.principal)
                entry += f"[{r.type}{principal}]"
            entries.append(entry)
        text += "(" + ",".join(entries) + ")"
    return text + "{REV}" if key.revocable else text


def _format_value(value: _Value) -> str:
    if type(value) is int:
        return _format_scalar(value)
    if isinstance(value, tuple):
        return "[" + ",".join(f"{lo}-{hi}" for lo, hi in value) + "]"
    assert isinstance(value, frozenset)
    return "{" + ",".join(sorted(_escape(item) for item in value)) + "}"


def _sort_key(key: ResourceKey) -> tuple[Any, ...]:
    """Canonical order: unreserved first, then by reservation stack; by name within a stack."""
    stack = [(r.role, r.type, r.principal is not None, r.principal or "") for r in key.reservations]
    return (stack, key.name, key.revocable)


def _parse_reservation(entry: str) -> Reservation:
    role, principal, kind = entry, None, "static"
    if entry.endswith("]") and "[" in entry:
        role, _, spec = entry[:-1].partition("[")
        kind, colon, raw = (part.strip() for part in spec.partition(":"))
        if kind not in ("static", "dynamic"):
            raise ValueError(f"unknown reservation type {kind!r}")
        principal = _unescape(raw) if colon else None
    role = _unescape(role.strip())
    if role == "*":
        raise ValueError("role '*' cannot be part of a reservation stack")
    return Reservation(role, "dynamic" if kind == "dynamic" else "static", principal)


def _parse_scalar(text: str) -> int:
    if not _NUMBER_RE.fullmatch(text):
        if text.lstrip("+-").lower() in ("nan", "inf", "infinity"):
            raise ValueError("value must be a finite number")
        raise ValueError("value is not a number, a [range] or a {set}")
    try:
        value = Decimal(text)
        if value < 0 and value != 0:
            raise ValueError("value must be non-negative")
        if value > _MAX_THOUSANDTHS // 1000:
            raise ValueError("value is too large")
        return int((value * 1000).to_integral_value(rounding="ROUND_HALF_UP"))
    except InvalidOperation:
        raise ValueError("value is not a number") from None


def _parse_ranges(text: str) -> RangesValue:
    pairs = []
    if not text.strip():
        return ()
    for raw in text.split(","):
        part = raw.strip()
        lo, dash, hi = (x.strip() for x in part.partition("-"))
        if not _DIGITS_RE.fullmatch(lo) or not _DIGITS_RE.fullmatch(hi if dash else lo):
            raise ValueError(f"bad range {part!r}")
        begin, end = int(lo), int(hi if dash else lo)
        if begin > end:
            raise ValueError(f"range {part!r} has begin > end")
        if end > _MAX_RANGE_END:
            raise ValueError(f"range {part!r} does not fit in 64 bits")
        pairs.append((begin, end))
    return _merge_ranges(pairs)


def _parse_set(text: str) -> frozenset[str]:
    if not text.strip():
        return frozenset()
    items = [item.strip() for item in text.split(",")]
    if "" in items:
        raise ValueError("set has an empty item")
    return frozenset(_unescape(item) for item in items)


def _parse_item(token: str, default_stack: tuple[Reservation, ...]) -> tuple[ResourceKey, _Value]:
    colon, paren = token.find(":"), token.find("(")
    if colon < 0:
        raise ValueError("missing ':'")
    stack = default_stack
    if 0 <= paren < colon:
        close = token.find(")", paren)
        colon = token.find(":", close)
        if close < 0 or colon < 0:
            raise ValueError("mismatched parentheses or missing ':'")
        entries = token[paren + 1 : close]
        stack = () if entries.strip() == "*" else tuple(map(_parse_reservation, entries.split(",")))
        _validate_stack(stack)
        head, rest = token[:paren].strip(), token[close + 1 : colon].strip()
    else:
        head, rest = token[:colon].strip(), ""
        if head.endswith("{REV}"):
            head, rest = head[:-5].strip(), "{REV}"
    if rest not in ("", "{REV}"):
        raise ValueError(f"unexpected {rest!r} before ':'")
    if not _NAME_RE.fullmatch(head):
        raise ValueError(f"bad resource name {head!r}")
    text = token[colon + 1 :].strip()
    value: _Value
    if text.startswith("["):
        if not text.endswith("]"):
            raise ValueError("ranges must end with ']'")
        value = _parse_ranges(text[1:-1])
    elif text.startswith("{"):
        if not text.endswith("}"):
            raise ValueError("sets must end with '}'")
        value = _parse_set(text[1:-1])
    else:
        value = _parse_scalar(text)
    return ResourceKey(head, stack, rest == "{REV}"), value


# -- protos ---------------------------------------------------------------------------------------


def _reservation_from_proto(info: mesos_pb2.Resource.ReservationInfo, where: str) -> Reservation:
    if len(info.labels.labels):
        raise ValueError(f"{where}.labels: reservation labels are not supported")
    if not info.HasField("role"):
        raise ValueError(f"{where}.role must be set")
    if info.type not in (_STATIC, _DYNAMIC):
        raise ValueError(f"{where}.type must be STATIC or DYNAMIC")
    principal = info.principal if info.HasField("principal") else None
    return Reservation(info.role, "static" if info.type == _STATIC else "dynamic", principal)


def _from_proto(proto: mesos_pb2.Resource) -> tuple[ResourceKey, _Value]:
    for field in ("disk", "shared", "provider_id"):
        if proto.HasField(field):
            raise ValueError(f"field '{field}' is not supported")
    if not proto.name:
        raise ValueError("field 'name' must be set")
    if not _NAME_RE.fullmatch(proto.name):
        raise ValueError(f"field 'name' {proto.name!r} contains whitespace or %(),;:[]{{}}")
    stack = tuple(
        _reservation_from_proto(info, f"reservations[{i}]")
        for i, info in enumerate(proto.reservations)
    )
    if proto.HasField("role") and proto.role != "*" and not stack:  # Pre-refinement format.
        legacy = proto.reservation
        if len(legacy.labels.labels):
            raise ValueError("reservation.labels: reservation labels are not supported")
        principal = legacy.principal if legacy.HasField("principal") else None
        kind: Literal["static", "dynamic"] = (
            "dynamic" if proto.HasField("reservation") else "static"
        )
        stack = (Reservation(proto.role, kind, principal),)
    elif proto.HasField("role") and stack and proto.role != stack[-1].role:
        raise ValueError(f"field 'role' {proto.role!r} does not match 'reservations'")
    elif proto.HasField("reservation") and not stack:
        raise ValueError("field 'reservation' needs a reserved 'role'")
    _validate_stack(stack)
    type_name = mesos_pb2.Value.Type.Name(proto.type)
    if type_name == "TEXT":
        raise ValueError("field 'type': TEXT resources are not supported")
    if [f for f in ("scalar", "ranges", "set") if proto.HasField(f)] != [type_name.lower()]:
        raise ValueError(f"a {type_name} resource must set '{type_name.lower()}' and only it")
    value: _Value
    if proto.type == mesos_pb2.Value.SCALAR:
        try:
            value = _thousandths(proto.scalar.value)
        except ValueError as error:
            raise ValueError(f"field 'scalar.value' {proto.scalar.value!r}: {error}") from None
    elif proto.type == mesos_pb2.Value.RANGES:
        pairs = [(r.begin, r.end) for r in proto.ranges.range]
        for i, (lo, hi) in enumerate(pairs):
            if lo > hi:
                raise ValueError(f"field 'ranges.range[{i}]' has begin {lo} > end {hi}")
        value = _merge_ranges(pairs)
        if sum(hi - lo + 1 for lo, hi in pairs) != sum(hi - lo + 1 for lo, hi in value):
            raise ValueError("field 'ranges' has overlapping ranges")
    else:
        value = frozenset(proto.set.item)
        if len(value) != len(proto.set.item):
            raise ValueError("field 'set.item' has duplicate items")
        if "" in value:
            raise ValueError("field 'set.item' has an empty item")
    return ResourceKey(proto.name, stack, proto.HasField("revocable")), value


# -- the type -------------------------------------------------------------------------------------


class Resources:
    """Resources is an immutable bag of resources: scalars, ranges and sets, keyed by reservation.

    Build one with :meth:`parse`, :meth:`scalars` or :meth:`from_protos`; combine with ``+``
    and ``-`` (saturating); compare with ``==`` and :meth:`contains`. Instances are hashable.
    """

    __slots__ = ("_hash", "_items", "_totals")
    _items: dict[ResourceKey, _Value]
    _totals: dict[str, int] | None
    _hash: int | None

    EMPTY: ClassVar[Resources]

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Resources is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Resources is immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_make, (self._items,))

    # -- construction --

    @classmethod
    def parse(cls, text: str, default_role: str = "*") -> Resources:
        """Parse the agent's ``--resources`` text (or Mesos's JSON array of Resource objects).

        Resources without a role in parentheses are statically reserved to ``default_role``
        (``"*"``: unreserved). Repeated keys add up. Raises ValueError naming the bad token.
        """
        validate_role(default_role)
        default_stack = () if default_role == "*" else (Reservation(default_role),)
        if text.lstrip().startswith("["):
            return cls._parse_json(text, default_role)
        items: dict[ResourceKey, _Value] = {}
        for raw in text.split(";"):
            if token := raw.strip():
                try:
                    key, value = _parse_item(token, default_stack)
                    _accumulate(items, key, value)
                except ValueError as error:
                    raise ValueError(f"invalid resource {token!r}: {error}") from None
        _check_types(items)
        return _make(items)

    @classmethod
    def _parse_json(cls, text: str, default_role: str) -> Resources:
        try:
            array = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"invalid resources JSON: {error}") from None
        if not isinstance(array, list):
            raise ValueError("invalid resources JSON: not an array")
        protos = []
        for i, obj in enumerate(array):
            proto = mesos_pb2.Resource()
            try:
                if not isinstance(obj, dict):
                    raise json_format.ParseError("not an object")
                json_format.ParseDict(obj, proto)
            except json_format.ParseError as error:
                raise ValueError(f"invalid resource #{i} in JSON: {error}") from None
            if not proto.HasField("role") and not proto.reservations:
                proto.role = default_role
            protos.append(proto)
        return cls.from_protos(protos)

    @classmethod
    def scalars(cls, **values: float) -> Resources:
        """Unreserved scalars from keyword arguments: ``Resources.scalars(cpus=1, mem=128)``."""
        items: dict[ResourceKey, _Value] = {}
        for name, value in values.items():
            try:
                if not _NAME_RE.fullmatch(name):
                    raise ValueError("bad resource name")
                n = _thousandths(float(value))
            except ValueError as error:
                raise ValueError(f"invalid resource '{name}:{value}': {error}") from None
            if n:
                items[ResourceKey(name)] = n
        return _make(items)

    @classmethod
    def from_protos(cls, resources: Iterable[mesos_pb2.Resource]) -> Resources:
        """Resources from ``mesos.v1.Resource`` messages, validated; repeated keys add up.

        Accepts both the ``reservations`` stack and the legacy ``role``/``reservation`` fields;
        ignores ``allocation_info``; rejects ``disk``, ``shared`` and ``provider_id``. Raises
        ValueError naming the resource and the bad field.
        """
        items: dict[ResourceKey, _Value] = {}
        for index, proto in enumerate(resources):
            try:
                key, value = _from_proto(proto)
                _accumulate(items, key, value)
            except ValueError as error:
                raise ValueError(f"invalid resource #{index} {proto.name!r}: {error}") from None
        _check_types(items)
        return _make(items)

    def to_protos(self, allocation_role: str | None = None) -> list[mesos_pb2.Resource]:
        """``mesos.v1.Resource`` messages in canonical order, one per key (reservations as a stack).

        ``allocation_role`` sets ``allocation_info.role`` on each (as in offers).
        """
        out = []
        for key in sorted(self._items, key=_sort_key):
            value = self._items[key]
            proto = mesos_pb2.Resource(name=key.name)
            if type(value) is int:
                proto.type = mesos_pb2.Value.SCALAR
                proto.scalar.value = value / 1000
            elif isinstance(value, tuple):
                proto.type = mesos_pb2.Value.RANGES
                proto.ranges.range.extend(
                    mesos_pb2.Value.Range(begin=lo, end=hi) for lo, hi in value
                )
            else:
                assert isinstance(value, frozenset)
                proto.type = mesos_pb2.Value.SET
                proto.set.item.extend(sorted(value))
            for r in key.reservations:
                info = proto.reservations.add(
                    role=r.role, type=_STATIC if r.type == "static" else _DYNAMIC
                )
                if r.principal is not None:
                    info.principal = r.principal
            if key.revocable:
                proto.revocable.SetInParent()
            if allocation_role is not None:
                proto.allocation_info.role = allocation_role
            out.append(proto)
        return out

    # -- text, equality --

    def __str__(self) -> str:
        """The canonical text form; ``Resources.parse(str(r)) == r``."""
        items = self._items
        return ";".join(
            f"{_format_key(k)}:{_format_value(items[k])}" for k in sorted(items, key=_sort_key)
        )

    def __repr__(self) -> str:
        return f"Resources({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Resources):
            return self is other or self._items == other._items
        return NotImplemented

    def __hash__(self) -> int:
        h = self._hash
        if h is None:
            h = hash(frozenset(self._items.items()))
            _set_hash(self, h)
        return h

    def __bool__(self) -> bool:
        return bool(self._items)

    def __len__(self) -> int:
        """The number of distinct keys (name, reservations, revocable)."""
        return len(self._items)

    # -- arithmetic --

    def __add__(self, other: Resources) -> Resources:
        """The union of two bags: scalars add, ranges and sets are unioned."""
        if not isinstance(other, Resources):
            return NotImplemented
        if not other._items:
            return self
        if not self._items:
            return other
        items = self._items.copy()
        get = items.get
        for key, value in other._items.items():
            current = get(key)
            if current is None:
                items[key] = value
            elif type(current) is int and type(value) is int:
                items[key] = current + value
            else:
                items[key] = _add_value(key, current, value)
        return _make(items)

    def __sub__(self, other: Resources) -> Resources:
        """What is left of ``self`` after taking ``other`` away; never negative (saturating)."""
        if not isinstance(other, Resources):
            return NotImplemented
        if not other._items or not self._items:
            return self
        items = self._items.copy()
        get = items.get
        for key, value in other._items.items():
            current = get(key)
            if current is None:
                continue
            if type(current) is int and type(value) is int:
                if current > value:
                    items[key] = current - value
                else:
                    del items[key]
                continue
            left: _Value
            if isinstance(current, tuple) and isinstance(value, tuple):
                left = _subtract_ranges(current, value)
            elif isinstance(current, frozenset) and isinstance(value, frozenset):
                left = current - value
            else:
                raise ValueError(f"resource {key.name!r} has values of different types")
            if left:
                items[key] = left
            else:
                del items[key]
        return _make(items)

    def contains(self, other: Resources) -> bool:
        """Whether every item of ``other`` fits inside the item of ``self`` with the same key."""
        items = self._items
        for key, value in other._items.items():
            current = items.get(key)
            if current is None:
                return False
            if type(current) is int:
                if current < value:  # type: ignore[operator]
                    return False
            elif isinstance(current, tuple):
                if current != value and not _ranges_contain(current, value):  # type: ignore[arg-type]
                    return False
            elif not current >= value:  # type: ignore[operator]
                return False
        return True

    # -- queries --

    def _scalar_totals(self) -> dict[str, int]:
        totals = self._totals
        if totals is None:
            totals = {}
            for key, value in self._items.items():
                if type(value) is int:
                    totals[key.name] = totals.get(key.name, 0) + value
            _set_totals(self, totals)
        return totals

    def get(self, name: str) -> float:
        """The total of scalar ``name`` over all reservations (0.0 if absent)."""
        return self._scalar_totals().get(name, 0) / 1000

    def scalar_totals(self) -> dict[str, float]:
        """Scalar name -> total over all reservations (scalars only)."""
        return {name: n / 1000 for name, n in self._scalar_totals().items()}

    def scalar_thousandths(self) -> Mapping[str, int]:
        """Scalar name -> exact total in int thousandths (read-only view, computed once)."""
        return MappingProxyType(self._scalar_totals())

    def names(self) -> frozenset[str]:
        """The names of all resources present."""
        return frozenset(key.name for key in self._items)

    def ranges(self, name: str) -> RangesValue:
        """The ranges of ``name``, merged over all reservations (``()`` if absent)."""
        parts = [v for k, v in self._items.items() if k.name == name and isinstance(v, tuple)]
        return parts[0] if len(parts) == 1 else _merge_ranges(p for part in parts for p in part)

    def set_items(self, name: str) -> frozenset[str]:
        """The items of set ``name``, unioned over all reservations (empty if absent)."""
        parts = [v for k, v in self._items.items() if k.name == name and isinstance(v, frozenset)]
        return frozenset().union(*parts)

    def items(self) -> Iterator[tuple[ResourceKey, float | RangesValue | frozenset[str]]]:
        """Each (key, value) in canonical order; scalar values as floats."""
        for key in sorted(self._items, key=_sort_key):
            value = self._items[key]
            yield key, value / 1000 if type(value) is int else value

    def reservation_roles(self) -> frozenset[str]:
        """The roles that resources are reserved to (tops of the reservation stacks)."""
        return frozenset(key.reservations[-1].role for key in self._items if key.reservations)

    # -- filters --

    def filter(self, predicate: Callable[[ResourceKey], bool]) -> Resources:
        """The part of this bag whose keys satisfy ``predicate``."""
        items = {k: v for k, v in self._items.items() if predicate(k)}
        return self if len(items) == len(self._items) else _make(items)

    def unreserved(self) -> Resources:
        """The unreserved part (reservation stack empty)."""
        return self.filter(lambda k: not k.reservations)

    def reserved(self, role: str | None = None) -> Resources:
        """The reserved part: all of it, or only what is reserved to exactly ``role``."""
        if role is None:
            return self.filter(lambda k: bool(k.reservations))
        return self.filter(lambda k: bool(k.reservations) and k.reservations[-1].role == role)

    def allocatable_to(self, role: str) -> Resources:
        """What ``role`` may use: unreserved, or reserved to ``role`` or one of its ancestors."""
        return self.filter(
            lambda k: not k.reservations or is_ancestor_or_self(k.reservations[-1].role, role)
        )

    def revocable(self) -> Resources:
        """The revocable part (oversubscribed resources)."""
        return self.filter(lambda k: k.revocable)

    def non_revocable(self) -> Resources:
        """The non-revocable part."""
        return self.filter(lambda k: not k.revocable)

    # -- transformations --

    def _rekey(self, rekey: Callable[[ResourceKey], ResourceKey]) -> Resources:
        items: dict[ResourceKey, _Value] = {}
        for key, value in self._items.items():
            _accumulate(items, rekey(key), value)
        return _make(items)

    def flatten(self) -> Resources:
        """The same resources with every reservation dropped (revocable flags kept)."""
        if not any(key.reservations for key in self._items):
            return self
        return self._rekey(lambda k: k._replace(reservations=()) if k.reservations else k)

    def push_reservation(self, reservation: Reservation) -> Resources:
        """Every resource reserved one level further to ``reservation`` (a RESERVE operation).

        Raises ValueError if it does not refine an existing reservation.
        """

        def push(key: ResourceKey) -> ResourceKey:
            stack = (*key.reservations, reservation)
            _validate_stack(stack)
            return key._replace(reservations=stack)

        return self._rekey(push)

    def pop_reservation(self) -> Resources:
        """Every resource with its innermost reservation removed (an UNRESERVE operation).

        Raises ValueError if some resource is unreserved.
        """

        def pop(key: ResourceKey) -> ResourceKey:
            if not key.reservations:
                raise ValueError(f"resource {key.name!r} is not reserved")
            return key._replace(reservations=key.reservations[:-1])

        return self._rekey(pop)

    def dominant_share(self, total: Resources) -> float:
        """DRF's dominant share: the largest ``self.get(n) / total.get(n)`` over scalars ``n``.

        Names with no (or zero) total are ignored; 0.0 when nothing counts.
        """
        totals = total._scalar_totals()
        share = 0.0
        for name, n in self._scalar_totals().items():
            t = totals.get(name)
            if t and n / t > share:
                share = n / t
        return share


_new = object.__new__
_set_items: Callable[[Resources, dict[ResourceKey, _Value]], None] = Resources.__dict__[
    "_items"
].__set__
_set_totals: Callable[[Resources, dict[str, int] | None], None] = Resources.__dict__[
    "_totals"
].__set__
_set_hash: Callable[[Resources, int | None], None] = Resources.__dict__["_hash"].__set__


def _make(items: dict[ResourceKey, _Value]) -> Resources:
    """A Resources around ``items`` (already validated, no empty values), without copying."""
    r: Resources = _new(Resources)
    _set_items(r, items)
    _set_totals(r, None)
    _set_hash(r, None)
    return r


Resources.EMPTY = _make({})
