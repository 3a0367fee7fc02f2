"""Pure checks of what frameworks send: they raise before anything changes.

Call-level problems raise :class:`~master.core.errors.CallError` (INVALID_ARGUMENT) naming the
field as the call spells it. Task-level problems (a LAUNCH whose task is bad) raise
:class:`InvalidTaskError`, which the launch code turns into a TASK_ERROR update.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from master.core.errors import invalid
from master.core.model import MULTI_ROLE
from protos.resources import Resources, validate_role
from protos.v1 import mesos_pb2

__all__ = [
    "InvalidTaskError",
    "check_filters",
    "check_framework_info",
    "check_framework_update",
    "check_id",
    "check_roles_subset",
    "check_uuid",
    "min_allocatable_of",
    "parse_resources",
    "parse_task_resources",
    "require",
]

_MAX_FAILOVER_TIMEOUT = 100 * 365 * 86400.0  # Mesos's Duration tops out near 292 years.


class InvalidTaskError(ValueError):
    """InvalidTaskError: a task (or task group) in a LAUNCH cannot be launched (message: why)."""


def check_id(value: str, where: str) -> None:
    """Mesos's rules for framework-chosen ids: not empty, not ``.``/``..``, no ``/`` or NUL.

    Raises ValueError naming ``where``.
    """
    if not value:
        raise ValueError(f"{where} must not be empty")
    if value in (".", ".."):
        raise ValueError(f"{where} {value!r} is not a valid id")
    if "/" in value or "\x00" in value:
        raise ValueError(f"{where} {value!r} must not contain '/' or NUL")


def parse_resources(protos: Iterable[mesos_pb2.Resource], where: str) -> Resources:
    """Resources from messages; ValueError naming ``where`` and the bad resource if invalid."""
    try:
        return Resources.from_protos(protos)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


_PARSED: dict[bytes, Resources] = {}
_PARSED_MAX = 4096


def parse_task_resources(protos: Sequence[mesos_pb2.Resource], where: str) -> Resources:
    """:func:`parse_resources`, remembering recent results by their wire bytes.

    Launches repeat the same few resource sets thousands of times; looking the bytes up costs a
    tenth of parsing them. ``Resources`` is immutable, so sharing one value is safe.
    """
    key = b"".join([r.SerializeToString() for r in protos])
    parsed = _PARSED.get(key)
    if parsed is None:
        parsed = parse_resources(protos, where)
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[key] = parsed
    return parsed


def _check_role(role: str, where: str) -> None:
    try:
        validate_role(role)
    except ValueError as error:
        raise invalid(f"{where}: {error}") from None


def _framework_roles(info: mesos_pb2.FrameworkInfo, where: str) -> frozenset[str]:
    multi_role = any(c.type == MULTI_ROLE for c in info.capabilities)
    if multi_role:
        if info.HasField("role"):
            raise invalid(f"{where}.role must not be set by a MULTI_ROLE framework (use roles)")
        seen: set[str] = set()
        for i, role in enumerate(info.roles):
            _check_role(role, f"{where}.roles[{i}]")
            if role in seen:
                raise invalid(f"{where}.roles[{i}]: role {role!r} is listed twice")
            seen.add(role)
        if not seen:
            raise invalid(f"{where}.roles: a MULTI_ROLE framework needs at least one role")
        return frozenset(seen)
    if info.roles:
        raise invalid(f"{where}.roles needs the MULTI_ROLE capability (or set role instead)")
    _check_role(info.role, f"{where}.role")
    return frozenset({info.role})


def check_framework_info(info: mesos_pb2.FrameworkInfo, where: str) -> frozenset[str]:
    """Check a FrameworkInfo from SUBSCRIBE or UPDATE_FRAMEWORK; return the framework's roles."""
    if not info.HasField("name"):
        raise invalid(f"{where}.name is required")
    timeout = info.failover_timeout
    if not (math.isfinite(timeout) and 0 <= timeout <= _MAX_FAILOVER_TIMEOUT):
        raise invalid(
            f"{where}.failover_timeout {timeout} must be a finite number of seconds"
            f" between 0 and {_MAX_FAILOVER_TIMEOUT:.0f}"
        )
    roles = _framework_roles(info, where)
    for role, filters in info.offer_filters.items():
        if role not in roles:
            raise invalid(f"{where}.offer_filters: {role!r} is not a role of the framework")
        for i, alternative in enumerate(filters.min_allocatable_resources.quantities):
            for name, scalar in alternative.quantities.items():
                if not (math.isfinite(scalar.value) and scalar.value >= 0):
                    raise invalid(
                        f"{where}.offer_filters[{role!r}].min_allocatable_resources"
                        f".quantities[{i}][{name!r}] {scalar.value} must be finite and >= 0"
                    )
    return roles


def check_framework_update(
    old: mesos_pb2.FrameworkInfo, new: mesos_pb2.FrameworkInfo, where: str
) -> None:
    """Fields a framework may not change by failover or UPDATE_FRAMEWORK (Mesos's rules)."""
    for name in ("user", "principal", "checkpoint"):
        if getattr(old, name) != getattr(new, name) or old.HasField(name) != new.HasField(name):
            raise invalid(
                f"{where}.{name} cannot change (was {getattr(old, name)!r},"
                f" now {getattr(new, name)!r})"
            )


def check_roles_subset(roles: Sequence[str], allowed: frozenset[str], where: str) -> frozenset[str]:
    """``roles`` as a set, each one a role of the framework."""
    for i, role in enumerate(roles):
        if role not in allowed:
            raise invalid(f"{where}[{i}]: {role!r} is not a role of the framework")
    return frozenset(roles)


def check_filters(filters: mesos_pb2.Filters | None, where: str) -> float | None:
    """The ``refuse_seconds`` of optional Filters (None: the allocator's default, 5 s)."""
    if filters is None or not filters.HasField("refuse_seconds"):
        return None
    seconds = filters.refuse_seconds
    if math.isnan(seconds) or math.isinf(seconds):
        raise invalid(f"{where}.refuse_seconds must be a finite number, got {seconds}")
    return seconds


def check_uuid(uuid: bytes, where: str) -> None:
    """An acknowledged update's uuid: 16 raw bytes (master-generated updates have none)."""
    if not uuid:
        raise invalid(
            f"{where} is empty: only updates carrying a uuid are acknowledged"
            " (master-generated updates have none)"
        )
    if len(uuid) != 16:
        raise invalid(f"{where} must be 16 bytes, got {len(uuid)}")


def min_allocatable_of(info: mesos_pb2.FrameworkInfo) -> dict[str, list[dict[str, float]]]:
    """Per-role minimum offer sizes from ``offer_filters``, in the allocator's form."""
    out: dict[str, list[dict[str, float]]] = {}
    for role, filters in info.offer_filters.items():
        if filters.HasField("min_allocatable_resources"):
            out[role] = [
                {name: scalar.value for name, scalar in alternative.quantities.items()}
                for alternative in filters.min_allocatable_resources.quantities
            ]
    return out


def require(condition: bool, message: str) -> None:
    """Raise INVALID_ARGUMENT ``message`` unless ``condition``."""
    if not condition:
        raise invalid(message)
