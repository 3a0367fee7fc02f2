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

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from google.protobuf import json_format

from protos._resource_codec import (
    _format_key,
    _format_value,
    _from_proto,
    _parse_item,
    _sort_key,
)
from protos._resource_values import (
    _DYNAMIC,
    _NAME_RE,
    _STATIC,
    RangesValue,
    Reservation,
    ResourceKey,
    _accumulate,
    _add_value,
    _check_types,
    _merge_ranges,
    _quoted,
    _ranges_contain,
    _subtract_ranges,
    _thousandths,
    _validate_stack,
    _Value,
    is_ancestor_or_self,
    validate_role,
)
from protos.v1 import mesos_pb2

__all__ = [
    "KNOWN_NAMES",
    "RangesValue",
    "Reservation",
    "ResourceKey",
    "Resources",
    "is_ancestor_or_self",
    "likely_typos",
    "validate_role",
]

_TYPE_NAMES: dict[type, str] = {int: "SCALAR", tuple: "RANGES", frozenset: "SET"}

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
                raise ValueError(
                    f"invalid resource #{index} {_quoted(proto.name)}: {error}"
                ) from None
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

    def type_conflict(self, other: Resources) -> tuple[str, str, str] | None:
        """A resource name both hold with different types: ``(name, type here, type in other)``
        with types ``SCALAR``/``RANGES``/``SET``, or None.

        Each bag holds one type per name, but two bags built apart may disagree (``cpus`` as
        ranges in a task, as a scalar in an offer); ``+``, ``-`` and :meth:`contains` assume
        they do not, so code combining bags from different sources asks this first.
        """
        items = self._items
        kinds: dict[str, type] | None = None
        for key, value in other._items.items():
            current = items.get(key)
            if current is not None:  # The usual case; one type per name here covers the rest.
                kind: type | None = type(current)
            else:
                if kinds is None:
                    kinds = {}
                    for k, v in items.items():
                        kinds.setdefault(k.name, type(v))
                kind = kinds.get(key.name)
            if kind is not None and kind is not type(value):
                return key.name, _TYPE_NAMES[kind], _TYPE_NAMES[type(value)]
        return None

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


KNOWN_NAMES = ("cpus", "mem", "disk", "ports", "gpus")
"""The resource names the agent detects and frameworks commonly ask for."""


def _one_edit_apart(a: str, b: str) -> bool:
    """Whether ``a`` becomes ``b`` by one insertion, deletion, substitution or swap."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (
            len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]]
            and a[diff[1]] == b[diff[0]]
        )  # fmt: skip
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def likely_typos(resources: Resources) -> list[str]:
    """Warnings for names one edit away from a known one (``cpu`` for ``cpus``).

    Custom resource names are allowed, so a typo would otherwise be offered quietly as a new
    resource nobody asks for; whoever parses an operator's text says these once.
    """
    found = []
    for name in sorted(resources.names()):
        if name in KNOWN_NAMES:
            continue
        lower = name.lower()
        near = [lower] if lower in KNOWN_NAMES else []
        near = near or [known for known in KNOWN_NAMES if _one_edit_apart(lower, known)]
        if near:
            found.append(
                f"resource {name!r} is not a known one: did you mean {' or '.join(near)}?"
                " (custom names are allowed, so it is offered as given)"
            )
    return found
