"""Small builders for the messages a scheduler writes most: resources, tasks, framework info.

They are re-exported by :mod:`framework_sdk.messages`; plain protobuf construction works just
as well (``messages.TaskID(value="t1")``). Every builder validates its input and raises
TypeError/ValueError naming the bad argument.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from protos.resources import Resources
from protos.v1 import mesos_pb2

__all__ = [
    "TERMINAL_STATES",
    "filters",
    "framework_info",
    "is_terminal",
    "offer_resources",
    "parse_resources",
    "ranges",
    "reason_name",
    "scalar",
    "set_items",
    "state_name",
    "task_info",
]

# Mesos's isTerminalState: the task will never change state again. TASK_LOST is listed because
# Mesos does, although a lost task can come back when its agent does (partition-aware frameworks
# get TASK_UNREACHABLE instead, which is not terminal).
TERMINAL_STATES: frozenset[int] = frozenset(
    {
        mesos_pb2.TASK_FINISHED,
        mesos_pb2.TASK_FAILED,
        mesos_pb2.TASK_KILLED,
        mesos_pb2.TASK_ERROR,
        mesos_pb2.TASK_LOST,
        mesos_pb2.TASK_DROPPED,
        mesos_pb2.TASK_GONE,
        mesos_pb2.TASK_GONE_BY_OPERATOR,
    }
)


def is_terminal(state: int) -> bool:
    """Whether a TaskState is terminal (the task's resources are released)."""
    return state in TERMINAL_STATES


def state_name(state: int) -> str:
    """The name of a TaskState value (``"TASK_FINISHED"``), or ``"TaskState(<n>)"`` if unknown."""
    try:
        return mesos_pb2.TaskState.Name(state)  # type: ignore[arg-type]
    except ValueError:
        return f"TaskState({state})"


def reason_name(reason: int) -> str:
    """The name of a TaskStatus.Reason value (``"REASON_RECONCILIATION"``)."""
    try:
        return mesos_pb2.TaskStatus.Reason.Name(reason)  # type: ignore[arg-type]
    except ValueError:
        return f"Reason({reason})"


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name or any(c.isspace() for c in name):
        raise ValueError(f"resource name must be a non-empty word, not {name!r}")
    return name


def scalar(name: str, value: float) -> mesos_pb2.Resource:
    """An unreserved scalar resource: ``scalar("cpus", 0.5)``."""
    _check_name(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"scalar {name!r}: value must be a number, not {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"scalar {name!r}: value must be finite and non-negative, not {value}")
    resource = mesos_pb2.Resource(name=name, type=mesos_pb2.Value.SCALAR)
    resource.scalar.value = float(value)
    return resource


def ranges(name: str, spans: Iterable[tuple[int, int]]) -> mesos_pb2.Resource:
    """An unreserved ranges resource: ``ranges("ports", [(31000, 31009)])`` (inclusive bounds)."""
    _check_name(name)
    resource = mesos_pb2.Resource(name=name, type=mesos_pb2.Value.RANGES)
    for index, span in enumerate(spans):
        begin, end = span
        if not (isinstance(begin, int) and isinstance(end, int)) or not 0 <= begin <= end:
            raise ValueError(f"ranges {name!r}: span #{index} {span!r} is not 0 <= begin <= end")
        resource.ranges.range.add(begin=begin, end=end)
    return resource


def set_items(name: str, items: Iterable[str]) -> mesos_pb2.Resource:
    """An unreserved set resource: ``set_items("disks", ["sda", "sdb"])``."""
    _check_name(name)
    values = list(items)
    if not all(isinstance(item, str) and item for item in values):
        raise ValueError(f"set {name!r}: items must be non-empty strings, not {values!r}")
    resource = mesos_pb2.Resource(name=name, type=mesos_pb2.Value.SET)
    resource.set.item.extend(sorted(set(values)))
    return resource


def parse_resources(
    resources: str | Resources, *, allocation_role: str | None = None
) -> list[mesos_pb2.Resource]:
    """``Resource`` messages from text (``"cpus:0.1;mem:32"``) or a :class:`Resources` value.

    ``allocation_role`` sets ``allocation_info.role`` on each, as a task launched from an offer
    for that role needs.
    """
    if isinstance(resources, str):
        resources = Resources.parse(resources)
    elif not isinstance(resources, Resources):
        raise TypeError(f"resources must be text or Resources, not {type(resources).__name__}")
    return resources.to_protos(allocation_role=allocation_role)


def offer_resources(offer: mesos_pb2.Offer) -> Resources:
    """An offer's resources as a :class:`Resources` value (for ``contains``, ``-``, ``+``)."""
    if not isinstance(offer, mesos_pb2.Offer):
        raise TypeError(f"offer must be an Offer, not {type(offer).__name__}")
    return Resources.from_protos(offer.resources)


def _offer_role(offer: mesos_pb2.Offer) -> str | None:
    return offer.allocation_info.role if offer.HasField("allocation_info") else None


def task_info(
    task_id: str | mesos_pb2.TaskID,
    offer: mesos_pb2.Offer,
    resources: str | Resources | Iterable[mesos_pb2.Resource],
    *,
    command: str | mesos_pb2.CommandInfo | None = None,
    executor: mesos_pb2.ExecutorInfo | None = None,
    name: str | None = None,
    data: bytes | None = None,
) -> mesos_pb2.TaskInfo:
    """A TaskInfo to launch on ``offer``'s agent, with exactly one of ``command`` and ``executor``.

    ``resources`` is text, a Resources value or Resource messages; text and Resources get the
    offer's allocation role. A ``command`` string runs under ``/bin/sh -c``. ``name`` defaults
    to the task id.
    """
    if isinstance(task_id, str):
        task_id = mesos_pb2.TaskID(value=task_id)
    if not isinstance(task_id, mesos_pb2.TaskID) or not task_id.value:
        raise ValueError(f"task_id must be a non-empty str or TaskID, not {task_id!r}")
    if not isinstance(offer, mesos_pb2.Offer):
        raise TypeError(f"offer must be an Offer, not {type(offer).__name__}")
    if (command is None) == (executor is None):
        raise ValueError(f"task {task_id.value!r}: give exactly one of command and executor")
    task = mesos_pb2.TaskInfo(name=name if name is not None else task_id.value)
    task.task_id.CopyFrom(task_id)
    task.agent_id.CopyFrom(offer.agent_id)
    if isinstance(resources, str | Resources):
        task.resources.extend(parse_resources(resources, allocation_role=_offer_role(offer)))
    else:
        items = list(resources)
        for index, item in enumerate(items):
            if not isinstance(item, mesos_pb2.Resource):
                raise TypeError(f"task {task_id.value!r}: resources[{index}] is not a Resource")
        task.resources.extend(items)
    if isinstance(command, str):
        task.command.value = command
        task.command.shell = True
    elif command is not None:
        task.command.CopyFrom(command)
    if executor is not None:
        task.executor.CopyFrom(executor)
    if data is not None:
        task.data = data
    return task


def framework_info(
    name: str,
    *,
    user: str = "",
    roles: Iterable[str] = (),
    failover_timeout: float = 0.0,
    checkpoint: bool = False,
    capabilities: Iterable[str | int] = (),
    principal: str | None = None,
    hostname: str | None = None,
    webui_url: str | None = None,
    framework_id: str | None = None,
) -> mesos_pb2.FrameworkInfo:
    """A FrameworkInfo. ``user=""`` lets the driver fill in the current user, as Mesos's does.

    ``roles`` makes it a MULTI_ROLE framework (the capability is added); ``capabilities`` are
    names (``"PARTITION_AWARE"``) or ``FrameworkInfo.Capability.Type`` values. Give
    ``framework_id`` to fail over an existing framework.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"framework name must be a non-empty str, not {name!r}")
    if not math.isfinite(failover_timeout) or failover_timeout < 0:
        raise ValueError(f"failover_timeout must be finite and >= 0, not {failover_timeout}")
    info = mesos_pb2.FrameworkInfo(
        name=name, user=user, failover_timeout=failover_timeout, checkpoint=checkpoint
    )
    caps: list[int] = []
    for capability in capabilities:
        if isinstance(capability, str):
            try:
                caps.append(mesos_pb2.FrameworkInfo.Capability.Type.Value(capability))
            except ValueError:
                raise ValueError(f"unknown framework capability {capability!r}") from None
        else:
            caps.append(int(capability))
    role_list = list(roles)
    if role_list:
        info.roles.extend(role_list)
        multi_role = mesos_pb2.FrameworkInfo.Capability.MULTI_ROLE
        if multi_role not in caps:
            caps.append(multi_role)
    for cap in caps:
        info.capabilities.add(type=cap)
    if principal is not None:
        info.principal = principal
    if hostname is not None:
        info.hostname = hostname
    if webui_url is not None:
        info.webui_url = webui_url
    if framework_id is not None:
        info.id.value = framework_id
    return info


def filters(refuse_seconds: float) -> mesos_pb2.Filters:
    """Filters for a decline or accept: do not re-offer these resources for ``refuse_seconds``."""
    if isinstance(refuse_seconds, bool) or not isinstance(refuse_seconds, int | float):
        raise TypeError(f"refuse_seconds must be a number, not {refuse_seconds!r}")
    if not math.isfinite(refuse_seconds) or refuse_seconds < 0:
        raise ValueError(f"refuse_seconds must be finite and >= 0, not {refuse_seconds}")
    return mesos_pb2.Filters(refuse_seconds=float(refuse_seconds))
