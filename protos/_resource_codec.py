"""The text and protobuf forms of :mod:`protos.resources` values (parsing and formatting).

Private to :mod:`protos.resources`: every function here works on the validated value layer of
:mod:`protos._resource_values` and raises ValueError naming the bad token or field.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from urllib.parse import quote, unquote

from protos._resource_values import (
    _DIGITS_RE,
    _DYNAMIC,
    _MAX_RANGE_END,
    _MAX_THOUSANDTHS,
    _NAME_RE,
    _NUMBER_RE,
    _SPECIAL,
    _STATIC,
    RangesValue,
    Reservation,
    ResourceKey,
    _merge_ranges,
    _quoted,
    _thousandths,
    _validate_stack,
    _Value,
)
from protos.v1 import mesos_pb2

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
        raise ValueError(f"field 'name' {_quoted(proto.name)} contains whitespace or %(),;:[]{{}}")
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
        raise ValueError(f"field 'role' {_quoted(proto.role)} does not match 'reservations'")
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
