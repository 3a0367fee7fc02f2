"""Building scheduler Calls from plain arguments, checked before anything is sent.

Each builder returns a ``mesos.v1.scheduler.Call`` with its ``type`` and the matching payload
set (present even when empty, as the master requires) and no ``framework_id`` (the session adds
it). Wrong argument types raise TypeError and missing ids
ValueError, both naming the argument, so a mistake shows at the line that made it rather than
as a refusal from the master later. Ids may be given as protobuf ids or as plain strings.

:data:`UNARY_METHODS` maps each call type to the Scheduler service method that carries it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from protos.v1 import mesos_pb2, scheduler_pb2

__all__ = [
    "UNARY_METHODS",
    "accept",
    "acknowledge",
    "acknowledge_operation_status",
    "agent_id_of",
    "call_name",
    "decline",
    "launch",
    "message",
    "offer_ids_of",
    "reconcile",
    "request",
    "revive",
    "roles_of",
    "shutdown",
    "subscribe",
    "suppress",
    "task_id_of",
    "teardown",
    "update_framework",
]

Call = scheduler_pb2.Call
_Id = TypeVar(
    "_Id",
    mesos_pb2.OfferID,
    mesos_pb2.TaskID,
    mesos_pb2.AgentID,
    mesos_pb2.ExecutorID,
    mesos_pb2.FrameworkID,
)

# Call type -> method of the Scheduler gRPC service (SUBSCRIBE is the streaming one).
UNARY_METHODS: dict[int, str] = {
    Call.TEARDOWN: "Teardown",
    Call.ACCEPT: "Accept",
    Call.DECLINE: "Decline",
    Call.ACCEPT_INVERSE_OFFERS: "AcceptInverseOffers",
    Call.DECLINE_INVERSE_OFFERS: "DeclineInverseOffers",
    Call.REVIVE: "Revive",
    Call.KILL: "Kill",
    Call.SHUTDOWN: "Shutdown",
    Call.ACKNOWLEDGE: "Acknowledge",
    Call.ACKNOWLEDGE_OPERATION_STATUS: "AcknowledgeOperationStatus",
    Call.RECONCILE: "Reconcile",
    Call.RECONCILE_OPERATIONS: "ReconcileOperations",
    Call.MESSAGE: "Message",
    Call.REQUEST: "Request",
    Call.SUPPRESS: "Suppress",
    Call.UPDATE_FRAMEWORK: "UpdateFramework",
}


def call_name(call: scheduler_pb2.Call) -> str:
    """The call's type name (``"ACCEPT"``), for messages and logs."""
    try:
        return Call.Type.Name(call.type)
    except ValueError:
        return f"Call.Type({call.type})"


def _ident(cls: type[_Id], value: object, arg: str) -> _Id:
    """An id message of type ``cls`` from an instance or a non-empty str."""
    if isinstance(value, str):
        value = cls(value=value)
    if not isinstance(value, cls):
        raise TypeError(f"{arg} must be a {cls.__name__} or str, not {type(value).__name__}")
    if not value.value:
        raise ValueError(f"{arg} is empty")
    return value


def offer_ids_of(value: object, arg: str = "offer_ids") -> list[mesos_pb2.OfferID]:
    """One or more offer ids (OfferID, str, or an iterable of them) as a non-empty list."""
    if isinstance(value, mesos_pb2.OfferID | str):
        items: list[object] = [value]
    elif isinstance(value, Iterable):
        items = list(value)
    else:
        raise TypeError(f"{arg} must be OfferIDs or strs, not {type(value).__name__}")
    if not items:
        raise ValueError(f"{arg} is empty: give at least one offer id")
    ids = [_ident(mesos_pb2.OfferID, item, f"{arg}[{i}]") for i, item in enumerate(items)]
    seen: set[str] = set()
    for i, offer_id in enumerate(ids):
        if offer_id.value in seen:
            raise ValueError(f"{arg}[{i}] repeats offer {offer_id.value!r}")
        seen.add(offer_id.value)
    return ids


def task_id_of(value: object, arg: str = "task_id") -> mesos_pb2.TaskID:
    """A TaskID from a TaskID or a str."""
    return _ident(mesos_pb2.TaskID, value, arg)


def agent_id_of(value: object, arg: str = "agent_id") -> mesos_pb2.AgentID:
    """An AgentID from an AgentID or a str."""
    return _ident(mesos_pb2.AgentID, value, arg)


def roles_of(value: object, arg: str = "roles") -> list[str]:
    """Role names from None, one str, or an iterable of strs."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, Iterable):
        raise TypeError(f"{arg} must be role names, not {type(value).__name__}")
    roles = list(items)
    for i, role in enumerate(roles):
        if not isinstance(role, str) or not role:
            raise ValueError(f"{arg}[{i}] must be a non-empty role name, not {role!r}")
    return roles


def _filters(value: object) -> mesos_pb2.Filters | None:
    if value is None or isinstance(value, mesos_pb2.Filters):
        return value
    raise TypeError(f"filters must be a Filters or None, not {type(value).__name__}")


def _framework_info(value: object, arg: str = "framework_info") -> mesos_pb2.FrameworkInfo:
    if not isinstance(value, mesos_pb2.FrameworkInfo):
        raise TypeError(f"{arg} must be a FrameworkInfo, not {type(value).__name__}")
    if not value.name:
        raise ValueError(f"{arg}.name is empty")
    return value


def _offer_constraints(value: object) -> scheduler_pb2.OfferConstraints | None:
    if value is None or isinstance(value, scheduler_pb2.OfferConstraints):
        return value
    raise TypeError(f"offer_constraints must be OfferConstraints, not {type(value).__name__}")


def subscribe(
    framework_info: mesos_pb2.FrameworkInfo,
    suppressed_roles: Iterable[str] = (),
    offer_constraints: scheduler_pb2.OfferConstraints | None = None,
) -> scheduler_pb2.Call:
    """SUBSCRIBE with this framework info (its ``id`` set means failover)."""
    call = Call(type=Call.SUBSCRIBE)
    call.subscribe.framework_info.CopyFrom(_framework_info(framework_info))
    call.subscribe.suppressed_roles.extend(roles_of(suppressed_roles, "suppressed_roles"))
    if (constraints := _offer_constraints(offer_constraints)) is not None:
        call.subscribe.offer_constraints.CopyFrom(constraints)
    if framework_info.HasField("id"):
        call.framework_id.CopyFrom(framework_info.id)
    return call


def teardown() -> scheduler_pb2.Call:
    """TEARDOWN: remove the framework, killing all its tasks and executors."""
    return Call(type=Call.TEARDOWN)


def accept(
    offer_ids: object,
    operations: Iterable[mesos_pb2.Offer.Operation],
    filters: mesos_pb2.Filters | None = None,
) -> scheduler_pb2.Call:
    """ACCEPT: apply ``operations`` in order to the offers; no operations declines them."""
    call = Call(type=Call.ACCEPT)
    call.accept.offer_ids.extend(offer_ids_of(offer_ids))
    ops = list(operations)
    task_ids: set[str] = set()
    for i, op in enumerate(ops):
        if not isinstance(op, mesos_pb2.Offer.Operation):
            raise TypeError(f"operations[{i}] must be an Offer.Operation, not {type(op).__name__}")
        if op.type == mesos_pb2.Offer.Operation.UNKNOWN:
            raise ValueError(f"operations[{i}].type is not set")
        tasks = op.launch.task_infos if op.type == mesos_pb2.Offer.Operation.LAUNCH else []
        for j, task in enumerate(tasks):
            where = f"operations[{i}].launch.task_infos[{j}]"
            if not task.task_id.value:
                raise ValueError(f"{where}.task_id is not set")
            if task.task_id.value in task_ids:
                raise ValueError(f"{where}.task_id repeats task {task.task_id.value!r}")
            task_ids.add(task.task_id.value)
    call.accept.operations.extend(ops)
    if (checked := _filters(filters)) is not None:
        call.accept.filters.CopyFrom(checked)
    return call


def launch(
    offer_ids: object,
    tasks: Iterable[mesos_pb2.TaskInfo],
    filters: mesos_pb2.Filters | None = None,
) -> scheduler_pb2.Call:
    """ACCEPT with one LAUNCH of ``tasks`` (what ``launchTasks`` sends); no tasks declines."""
    task_list = list(tasks)
    for i, task in enumerate(task_list):
        if not isinstance(task, mesos_pb2.TaskInfo):
            raise TypeError(f"tasks[{i}] must be a TaskInfo, not {type(task).__name__}")
        if not task.task_id.value:
            raise ValueError(f"tasks[{i}].task_id is not set")
    operations = []
    if task_list:
        op = mesos_pb2.Offer.Operation(type=mesos_pb2.Offer.Operation.LAUNCH)
        op.launch.task_infos.extend(task_list)
        operations.append(op)
    return accept(offer_ids, operations, filters)


def decline(offer_ids: object, filters: mesos_pb2.Filters | None = None) -> scheduler_pb2.Call:
    """DECLINE the offers whole, refusing them for ``filters.refuse_seconds``."""
    call = Call(type=Call.DECLINE)
    call.decline.offer_ids.extend(offer_ids_of(offer_ids))
    if (checked := _filters(filters)) is not None:
        call.decline.filters.CopyFrom(checked)
    return call


def revive(roles: object = None) -> scheduler_pb2.Call:
    """REVIVE: clear filters and unsuppress these roles (all roles when none are given)."""
    call = Call(type=Call.REVIVE)
    call.revive.SetInParent()  # Present even when empty: the payload is required.
    call.revive.roles.extend(roles_of(roles))
    return call


def suppress(roles: object = None) -> scheduler_pb2.Call:
    """SUPPRESS: stop offers for these roles (all roles when none are given)."""
    call = Call(type=Call.SUPPRESS)
    call.suppress.SetInParent()
    call.suppress.roles.extend(roles_of(roles))
    return call


def kill(
    task_id: object,
    agent_id: object = None,
    kill_policy: mesos_pb2.KillPolicy | None = None,
) -> scheduler_pb2.Call:
    """KILL a task; ``kill_policy`` overrides the task's own."""
    call = Call(type=Call.KILL)
    call.kill.task_id.CopyFrom(task_id_of(task_id))
    if agent_id is not None:
        call.kill.agent_id.CopyFrom(agent_id_of(agent_id))
    if kill_policy is not None:
        if not isinstance(kill_policy, mesos_pb2.KillPolicy):
            raise TypeError(f"kill_policy must be a KillPolicy, not {type(kill_policy).__name__}")
        call.kill.kill_policy.CopyFrom(kill_policy)
    return call


def shutdown(executor_id: object, agent_id: object) -> scheduler_pb2.Call:
    """SHUTDOWN an executor (and its tasks) on an agent."""
    call = Call(type=Call.SHUTDOWN)
    call.shutdown.executor_id.CopyFrom(_ident(mesos_pb2.ExecutorID, executor_id, "executor_id"))
    call.shutdown.agent_id.CopyFrom(agent_id_of(agent_id))
    return call


def acknowledge(status: mesos_pb2.TaskStatus) -> scheduler_pb2.Call:
    """ACKNOWLEDGE a status update; it must carry a ``uuid`` and an ``agent_id``."""
    if not isinstance(status, mesos_pb2.TaskStatus):
        raise TypeError(f"status must be a TaskStatus, not {type(status).__name__}")
    if not status.uuid:
        raise ValueError(
            f"status of task {status.task_id.value!r} has no uuid: it needs no acknowledgement"
        )
    if not status.agent_id.value:
        raise ValueError(f"status of task {status.task_id.value!r} has no agent_id")
    call = Call(type=Call.ACKNOWLEDGE)
    call.acknowledge.agent_id.CopyFrom(status.agent_id)
    call.acknowledge.task_id.CopyFrom(task_id_of(status.task_id, "status.task_id"))
    call.acknowledge.uuid = status.uuid
    return call


def acknowledge_operation_status(status: mesos_pb2.OperationStatus) -> scheduler_pb2.Call:
    """ACKNOWLEDGE_OPERATION_STATUS of an operation update carrying a uuid."""
    if not isinstance(status, mesos_pb2.OperationStatus):
        raise TypeError(f"status must be an OperationStatus, not {type(status).__name__}")
    if not status.uuid.value:
        raise ValueError("operation status has no uuid: it needs no acknowledgement")
    call = Call(type=Call.ACKNOWLEDGE_OPERATION_STATUS)
    ack = call.acknowledge_operation_status
    ack.uuid = status.uuid.value
    ack.operation_id.CopyFrom(status.operation_id)
    if status.HasField("agent_id"):
        ack.agent_id.CopyFrom(status.agent_id)
    if status.HasField("resource_provider_id"):
        ack.resource_provider_id.CopyFrom(status.resource_provider_id)
    return call


def reconcile(tasks: Iterable[object] = ()) -> scheduler_pb2.Call:
    """RECONCILE these tasks (TaskStatus, TaskID or str each); none means every task."""
    if isinstance(tasks, str | mesos_pb2.TaskStatus | mesos_pb2.TaskID):
        raise TypeError("tasks must be a list of TaskStatus, TaskID or str, not a single one")
    call = Call(type=Call.RECONCILE)
    call.reconcile.SetInParent()  # Empty means implicit reconciliation, but must be present.
    for i, item in enumerate(tasks):
        entry = call.reconcile.tasks.add()
        if isinstance(item, mesos_pb2.TaskStatus):
            entry.task_id.CopyFrom(task_id_of(item.task_id, f"tasks[{i}].task_id"))
            if item.agent_id.value:
                entry.agent_id.CopyFrom(item.agent_id)
        else:
            entry.task_id.CopyFrom(task_id_of(item, f"tasks[{i}]"))
    return call


def message(agent_id: object, executor_id: object, data: bytes) -> scheduler_pb2.Call:
    """MESSAGE: opaque ``data`` for an executor (best effort)."""
    if not isinstance(data, bytes):
        raise TypeError(f"data must be bytes, not {type(data).__name__}")
    call = Call(type=Call.MESSAGE)
    call.message.agent_id.CopyFrom(agent_id_of(agent_id))
    call.message.executor_id.CopyFrom(_ident(mesos_pb2.ExecutorID, executor_id, "executor_id"))
    call.message.data = data
    return call


def request(requests: Iterable[mesos_pb2.Request]) -> scheduler_pb2.Call:
    """REQUEST resources (advisory; the allocator may ignore it, as Mesos's does)."""
    call = Call(type=Call.REQUEST)
    call.request.SetInParent()
    for i, item in enumerate(requests):
        if not isinstance(item, mesos_pb2.Request):
            raise TypeError(f"requests[{i}] must be a Request, not {type(item).__name__}")
        call.request.requests.add().CopyFrom(item)
    return call


def update_framework(
    framework_info: mesos_pb2.FrameworkInfo,
    suppressed_roles: Iterable[str] = (),
    offer_constraints: scheduler_pb2.OfferConstraints | None = None,
) -> scheduler_pb2.Call:
    """UPDATE_FRAMEWORK: replace the framework's info, suppressed roles and offer constraints."""
    call = Call(type=Call.UPDATE_FRAMEWORK)
    call.update_framework.framework_info.CopyFrom(_framework_info(framework_info))
    call.update_framework.suppressed_roles.extend(roles_of(suppressed_roles, "suppressed_roles"))
    if (constraints := _offer_constraints(offer_constraints)) is not None:
        call.update_framework.offer_constraints.CopyFrom(constraints)
    return call
