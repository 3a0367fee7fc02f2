"""Pure checks of what frameworks send: they raise before anything changes.

Call-level problems raise :class:`~master.core.errors.CallError` (INVALID_ARGUMENT) naming the
field as the call spells it. Task-level problems (a LAUNCH whose task is bad) raise
:class:`InvalidTaskError`, which the launch code turns into a TASK_ERROR update. Input quoted in
a message goes through :func:`~master.core.errors.shown` (a bounded prefix).

Bounds on what a framework sends, so that no field can make the master store, log or forward
megabytes, nor an agent fail to make a directory (``docs/master.md`` lists them):

* ids the agent turns into path components (task, executor and framework ids): Mesos's rules
  (``src/common/validation.cpp``: not empty, no control character, no ``/`` or backslash), and
  neither ``.`` nor ``..``, and at most :data:`MAX_ID_BYTES` (a file name's limit, NAME_MAX);
* FrameworkInfo: a non-empty ``name`` of at most :data:`MAX_NAME_BYTES`; ``user``,
  ``principal``, ``hostname`` and each role at most :data:`MAX_FIELD_BYTES`; ``webui_url`` at
  most :data:`MAX_URL_BYTES`; the whole message (labels, capabilities, filters) at most
  :data:`MAX_FRAMEWORK_INFO_BYTES`;
* resources: the well-known ones have their Mesos types (``cpus``, ``mem``, ``disk``, ``gpus``
  scalars, ``gpus`` whole, ``ports`` ranges); scalars finite, non-negative and at most 2**53
  thousandths (checked by :meth:`protos.resources.Resources.from_protos`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence

from master.core.errors import invalid, shown
from master.core.model import MULTI_ROLE, Task
from protos.limits import MAX_MESSAGE_BYTES
from protos.resources import Resources, validate_role
from protos.v1 import mesos_pb2

__all__ = [
    "MAX_FIELD_BYTES",
    "MAX_FRAMEWORK_INFO_BYTES",
    "MAX_ID_BYTES",
    "MAX_NAME_BYTES",
    "MAX_URL_BYTES",
    "InvalidTaskError",
    "check_filters",
    "check_framework_info",
    "check_framework_update",
    "check_id",
    "check_launch_ids",
    "check_launch_size",
    "check_roles_subset",
    "check_uuid",
    "combined_resources",
    "fits_in",
    "min_allocatable_of",
    "parse_resources",
    "parse_task_resources",
    "require",
]

_MAX_FAILOVER_TIMEOUT = 100 * 365 * 86400.0  # Mesos's Duration tops out near 292 years.

MAX_ID_BYTES = 255
"""Longest task, executor or framework id (UTF-8 bytes): the agent makes a directory of each, and
a file name has at most 255 bytes (NAME_MAX) on Linux file systems."""
MAX_NAME_BYTES = 1024
"""Longest FrameworkInfo.name (UTF-8 bytes)."""
MAX_FIELD_BYTES = 255
"""Longest FrameworkInfo user, principal, hostname and role (UTF-8 bytes)."""
MAX_URL_BYTES = 4096
"""Longest FrameworkInfo.webui_url (UTF-8 bytes)."""
MAX_FRAMEWORK_INFO_BYTES = 64 * 1024
"""Largest serialized FrameworkInfo: it is stored in the registry and sent with every launch."""

_BAD_ID_CHAR = re.compile(r"[\x00-\x1f\x7f/\\]")
"""Characters no id may hold: control characters (C's ``iscntrl``), ``/`` and backslash."""

_SCALAR, _RANGES = mesos_pb2.Value.SCALAR, mesos_pb2.Value.RANGES
_KNOWN_TYPES = {"cpus": _SCALAR, "mem": _SCALAR, "disk": _SCALAR, "gpus": _SCALAR, "ports": _RANGES}
"""The types Mesos gives the well-known resources (an agent can hold no other kind of them)."""


class InvalidTaskError(ValueError):
    """InvalidTaskError: a task (or task group) in a LAUNCH cannot be launched (message: why)."""


def check_id(value: str, where: str) -> None:
    """Framework-chosen ids become path components on the agent (see the module docstring).

    Raises ValueError naming ``where``.
    """
    if not value:
        raise ValueError(f"{where} must not be empty")
    size = len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))
    if size > MAX_ID_BYTES:
        raise ValueError(
            f"{where} {shown(value)} is {size} bytes long; an id is at most {MAX_ID_BYTES} bytes"
            " (the agent makes a directory of it)"
        )
    if value in (".", ".."):
        raise ValueError(f"{where} {value!r} is not a valid id (it names a directory)")
    bad = _BAD_ID_CHAR.search(value)
    if bad is not None:
        raise ValueError(
            f"{where} {shown(value)} must not contain {bad.group()!r}"
            " (an id holds no '/', backslash or control character)"
        )


def _check_known_types(protos: Sequence[mesos_pb2.Resource], where: str) -> None:
    for i, proto in enumerate(protos):
        expected = _KNOWN_TYPES.get(proto.name)
        if expected is not None and proto.type != expected:
            raise ValueError(
                f"{where}[{i}] {proto.name!r} must be a {mesos_pb2.Value.Type.Name(expected)}"
                f" resource, not {_type_name(proto.type)}"
            )
        if proto.name == "gpus" and not float(proto.scalar.value).is_integer():
            raise ValueError(
                f"{where}[{i}] 'gpus' must be a whole number, not {proto.scalar.value!r}"
            )


def _type_name(value: mesos_pb2.Value.Type.ValueType) -> str:
    values = mesos_pb2.Value.Type.values()
    return mesos_pb2.Value.Type.Name(value) if value in values else str(int(value))


def parse_resources(protos: Iterable[mesos_pb2.Resource], where: str) -> Resources:
    """Resources from messages; ValueError naming ``where`` and the bad resource if invalid."""
    protos = protos if isinstance(protos, Sequence) else list(protos)
    _check_known_types(protos, where)
    try:
        return Resources.from_protos(protos)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


_PARSED: dict[bytes, tuple[Resources, frozenset[str]]] = {}
_PARSED_MAX = 4096


def parse_task_resources(
    protos: Sequence[mesos_pb2.Resource], where: str, role: str | None = None
) -> Resources:
    """:func:`parse_resources`, remembering recent results by their wire bytes; with ``role``,
    resources that carry an ``allocation_info.role`` must carry that one.

    Launches repeat the same few resource sets thousands of times, as do agents of one shape
    registering by the thousand; looking the bytes up costs a tenth of parsing them.
    ``Resources`` is immutable, so sharing one value is safe.
    """
    key = b"".join([r.SerializeToString() for r in protos])
    parsed = _PARSED.get(key)
    if parsed is None:
        roles = frozenset(r.allocation_info.role for r in protos if r.HasField("allocation_info"))
        parsed = parse_resources(protos, where), roles
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[key] = parsed
    resources, roles = parsed
    if role is not None and roles and roles != {role}:
        for i, resource in enumerate(protos):
            if resource.HasField("allocation_info") and resource.allocation_info.role != role:
                raise ValueError(
                    f"{where}[{i}] {shown(resource.name)}: allocation_info.role"
                    f" {shown(resource.allocation_info.role)} is not the offers' role {role!r}"
                )
    return resources


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
                raise invalid(f"{where}.roles[{i}]: role {shown(role)} is listed twice")
            seen.add(role)
        if not seen:
            raise invalid(f"{where}.roles: a MULTI_ROLE framework needs at least one role")
        return frozenset(seen)
    if info.roles:
        raise invalid(f"{where}.roles needs the MULTI_ROLE capability (or set role instead)")
    _check_role(info.role, f"{where}.role")
    return frozenset({info.role})


def _check_length(value: str, limit: int, where: str) -> None:
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise invalid(f"{where} {shown(value)} is {size} bytes long; at most {limit} are allowed")


def _check_sizes(info: mesos_pb2.FrameworkInfo, where: str) -> None:
    _check_length(info.name, MAX_NAME_BYTES, f"{where}.name")
    for name in ("user", "principal", "hostname", "role"):
        _check_length(getattr(info, name), MAX_FIELD_BYTES, f"{where}.{name}")
    for i, role in enumerate(info.roles):
        _check_length(role, MAX_FIELD_BYTES, f"{where}.roles[{i}]")
    _check_length(info.webui_url, MAX_URL_BYTES, f"{where}.webui_url")
    size = info.ByteSize()
    if size > MAX_FRAMEWORK_INFO_BYTES:
        raise invalid(
            f"{where} is {size} bytes long; a FrameworkInfo is at most"
            f" {MAX_FRAMEWORK_INFO_BYTES} bytes (labels, capabilities and filters included)"
        )


def check_framework_info(info: mesos_pb2.FrameworkInfo, where: str) -> frozenset[str]:
    """Check a FrameworkInfo from SUBSCRIBE or UPDATE_FRAMEWORK; return the framework's roles."""
    if not info.HasField("name"):
        raise invalid(f"{where}.name is required")
    if not info.name:
        raise invalid(f"{where}.name must not be empty")
    _check_sizes(info, where)
    timeout = info.failover_timeout
    if not (math.isfinite(timeout) and 0 <= timeout <= _MAX_FAILOVER_TIMEOUT):
        raise invalid(
            f"{where}.failover_timeout {timeout} must be a finite number of seconds"
            f" between 0 and {_MAX_FAILOVER_TIMEOUT:.0f}"
        )
    roles = _framework_roles(info, where)
    for role, filters in info.offer_filters.items():
        if role not in roles:
            raise invalid(f"{where}.offer_filters: {shown(role)} is not a role of the framework")
        for i, alternative in enumerate(filters.min_allocatable_resources.quantities):
            for name, scalar in alternative.quantities.items():
                if not (math.isfinite(scalar.value) and scalar.value >= 0):
                    raise invalid(
                        f"{where}.offer_filters[{shown(role)}].min_allocatable_resources"
                        f".quantities[{i}][{shown(name)}] {scalar.value} must be finite and >= 0"
                    )
    return roles


def check_framework_update(
    old: mesos_pb2.FrameworkInfo, new: mesos_pb2.FrameworkInfo, where: str
) -> None:
    """Fields a framework may not change by failover or UPDATE_FRAMEWORK (Mesos's rules)."""
    for name in ("user", "principal", "checkpoint"):
        if getattr(old, name) != getattr(new, name) or old.HasField(name) != new.HasField(name):
            raise invalid(
                f"{where}.{name} cannot change (was {shown(getattr(old, name))},"
                f" now {shown(getattr(new, name))})"
            )


def check_roles_subset(roles: Sequence[str], allowed: frozenset[str], where: str) -> frozenset[str]:
    """``roles`` as a set, each one a role of the framework."""
    for i, role in enumerate(roles):
        if role not in allowed:
            raise invalid(f"{where}[{i}]: {shown(role)} is not a role of the framework")
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


# -- launches -------------------------------------------------------------------------------------


def _state_name(state: int) -> str:
    return mesos_pb2.TaskState.Name(state)  # type: ignore[arg-type]


def check_launch_ids(
    live_tasks: Mapping[str, Task], tasks: Sequence[tuple[str, mesos_pb2.TaskInfo]], max_tasks: int
) -> None:
    """Refuse an ACCEPT that launches more than ``max_tasks`` tasks, or uses a task id twice or
    one of ``live_tasks`` (the framework's tasks the master tracks); ``tasks`` are (field, task).

    The whole call is refused, not the task with TASK_ERROR: an update for that id would tell
    the scheduler that the task already using it has ended.
    """
    if len(tasks) > max_tasks:
        raise invalid(
            f"accept: {len(tasks)} tasks in one ACCEPT are more than the master takes at once"
            f" ({max_tasks}, its --max-tasks-per-accept); launch them over several ACCEPTs"
        )
    first: dict[str, str] = {}
    for where, task in tasks:
        task_id = task.task_id.value
        earlier = first.setdefault(task_id, where)
        if earlier != where:
            raise invalid(
                f"{where}.task_id {shown(task_id)} is used by {earlier} too; task ids must be"
                " unique"
            )
        live = live_tasks.get(task_id)
        if live is not None:
            raise invalid(
                f"{where}.task_id {shown(task_id)} is the id of a task of this framework the"
                f" master still tracks ({_state_name(live.state)} on agent"
                f" {live.agent_id!r}); an id can be reused once its task's terminal update was"
                " acknowledged"
            )


def check_launch_size(
    info_bytes: int,
    role: str,
    tasks: Sequence[mesos_pb2.TaskInfo],
    executor: mesos_pb2.ExecutorInfo | None,
) -> None:
    """InvalidTaskError if the RunTask (RunTaskGroup) message of ``tasks`` would be over the
    message-size limit, which the agent's stream cannot carry.

    The size is a bound from above: the message as the agent gets it adds ``info_bytes`` (the
    FrameworkInfo and the ids), small framing, and on every resource ``allocation_info`` (at
    most ``8 + len(role)`` bytes each).
    """
    tag = 8 + len(role.encode())
    size = info_bytes + 64
    for task in tasks:
        size += task.ByteSize() + 16 + tag * len(task.resources)
    if executor is not None:
        size += executor.ByteSize() + 16 + tag * len(executor.resources)
    if size > MAX_MESSAGE_BYTES:
        what = "Task" if len(tasks) == 1 else "Task group"
        raise InvalidTaskError(
            f"{what} is too large for the agent: its launch message (with its executor and"
            f" FrameworkInfo) takes up to {size} bytes, more than the {MAX_MESSAGE_BYTES}-byte"
            " limit on every message (protos.limits.MAX_MESSAGE_BYTES); pass large data as a"
            " URI for the agent to fetch"
        )


def combined_resources(parts: Sequence[Resources]) -> Resources:
    """The sum of a task's (or group's) resources; InvalidTaskError if their types disagree."""
    if len(parts) == 1:
        return parts[0]
    total = Resources.EMPTY
    for part in parts:
        conflict = total.type_conflict(part)
        if conflict is not None:
            name, one, other = conflict
            raise InvalidTaskError(f"resource {shown(name)} is given as both {one} and {other}")
        total = total + part
    return total


def fits_in(available: Resources, needed: Resources) -> bool:
    """Whether ``needed`` is in ``available``; InvalidTaskError if their types disagree."""
    conflict = available.type_conflict(needed)
    if conflict is not None:
        name, offered, used = conflict
        raise InvalidTaskError(
            f"resource {shown(name)} is {used} in the task but {offered} in the offers"
        )
    return available.contains(needed)
