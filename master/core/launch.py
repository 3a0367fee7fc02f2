"""ACCEPT and DECLINE: operations on offers (LAUNCH, LAUNCH_GROUP, RESERVE, UNRESERVE).

An ACCEPT is checked in full before anything changes:

* A malformed call (no offer ids, an id listed twice, an unsupported operation, a bad filter,
  a bad RESERVE or UNRESERVE, more tasks than ``--max-tasks-per-accept``, a task id used twice in
  the call or by a task of the framework that has not ended) is refused with INVALID_ARGUMENT
  and changes nothing. A reused task id is refused for the whole call, not with TASK_ERROR as
  Mesos does: an update for that id would tell the scheduler that the task using it has ended.
* Offers that are unknown (expired, rescinded, already used, another framework's), on different
  agents or for different roles make every task of the call TASK_ERROR with
  REASON_INVALID_OFFERS; the valid offers named are taken back (their resources recovered, as
  Mesos does, since the framework considers them used). Without tasks the call is refused.
* Otherwise the operations are applied in order to the offers' combined resources. A task that
  cannot be launched (an id the agent cannot make a directory of, neither or both of command and
  executor, no resources, resources of another role or not in what is left of the offers, a
  RunTask message to the agent over :data:`~protos.limits.MAX_MESSAGE_BYTES`, ...) gets
  TASK_ERROR with REASON_TASK_INVALID (a task group: REASON_TASK_GROUP_INVALID for all its
  tasks) and takes nothing. What no operation used goes back to the allocator with the call's
  filters.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from master.core.agents import dynamic_part, run_task_message
from master.core.errors import invalid, shown
from master.core.events import master_status, update_event
from master.core.model import Agent, Executor, Framework, Task
from master.core.offers import consume_offer, remove_offers
from master.core.state import MasterState
from master.core.validation import (
    InvalidTaskError,
    check_filters,
    check_id,
    check_launch_ids,
    check_launch_size,
    combined_resources,
    fits_in,
    parse_resources,
    parse_task_resources,
)
from master.registry.state import UpdateReservations
from protos.resources import Resources
from protos.v1 import agent_internal_pb2, mesos_pb2, scheduler_pb2

__all__ = ["accept", "decline"]

_Op = mesos_pb2.Offer.Operation
_Reason = mesos_pb2.TaskStatus
_SUPPORTED: dict[int, Literal["launch", "launch_group", "reserve", "unreserve"]] = {
    _Op.LAUNCH: "launch",
    _Op.LAUNCH_GROUP: "launch_group",
    _Op.RESERVE: "reserve",
    _Op.UNRESERVE: "unreserve",
}


@dataclass(slots=True)
class _Launch:
    """One task to launch (or refuse with ``error``)."""

    task: mesos_pb2.TaskInfo
    resources: Resources = Resources.EMPTY
    executor: mesos_pb2.ExecutorInfo | None = None
    executor_resources: Resources | None = None  # Set when the executor is new.
    error: str | None = None


@dataclass(slots=True)
class _Group:
    """A task group to launch in ``executor`` (or refuse with ``error``)."""

    executor: mesos_pb2.ExecutorInfo
    tasks: list[mesos_pb2.TaskInfo]
    resources: list[Resources] = field(default_factory=list)
    executor_resources: Resources | None = None
    error: str | None = None


@dataclass(slots=True)
class _Convert:
    """A RESERVE or UNRESERVE: allocated ``old`` becomes ``new``."""

    old: Resources
    new: Resources


@dataclass(slots=True)
class _Plan:
    """The checked steps of an ACCEPT, and what is left of the offers after them."""

    available: Resources
    info_bytes: int
    """Bytes of what every RunTask message carries besides its tasks and executor."""
    steps: list[_Launch | _Group | _Convert] = field(default_factory=list)
    executors: dict[str, mesos_pb2.ExecutorInfo] = field(default_factory=dict)


def _check_operation(op: mesos_pb2.Offer.Operation, where: str) -> None:
    name = _SUPPORTED.get(op.type)
    if name is None:
        type_name = _Op.Type.Name(op.type) if op.type in _Op.Type.values() else str(op.type)
        raise invalid(f"{where}.type {type_name} is not supported")
    if not op.HasField(name):
        raise invalid(f"{where}.{name} is required for a {_Op.Type.Name(op.type)} operation")
    if op.HasField("id"):
        raise invalid(f"{where}.id: operation feedback is not supported")
    if op.type == _Op.LAUNCH_GROUP and not op.launch_group.task_group.tasks:
        raise invalid(f"{where}.launch_group.task_group.tasks must not be empty")


def _tasks_of(operations: list[mesos_pb2.Offer.Operation]) -> list[mesos_pb2.TaskInfo]:
    return [task for _, task in _where_tasks(operations)]


def _where_tasks(
    operations: list[mesos_pb2.Offer.Operation],
) -> list[tuple[str, mesos_pb2.TaskInfo]]:
    """Every task the operations launch, with the field that holds it."""
    tasks: list[tuple[str, mesos_pb2.TaskInfo]] = []
    for i, op in enumerate(operations):
        if op.type == _Op.LAUNCH:
            where = f"accept.operations[{i}].launch.task_infos"
            tasks.extend((f"{where}[{j}]", task) for j, task in enumerate(op.launch.task_infos))
        elif op.type == _Op.LAUNCH_GROUP:
            where = f"accept.operations[{i}].launch_group.task_group.tasks"
            tasks.extend(
                (f"{where}[{j}]", task) for j, task in enumerate(op.launch_group.task_group.tasks)
            )
    return tasks


def _task_error(
    state: MasterState,
    fw: Framework,
    task: mesos_pb2.TaskInfo,
    reason: int,
    message: str,
    *,
    agent_id: str | None,
    now: float,
) -> None:
    status = master_status(
        task.task_id.value, mesos_pb2.TASK_ERROR, reason, message, now, agent_id=agent_id
    )
    state.history.task_refused(fw.framework_id, task, status)
    state.send_event(fw, update_event(status))


def accept(state: MasterState, fw: Framework, call: scheduler_pb2.Call, now: float) -> None:
    """ACCEPT (see the module docstring). Raises CallError for a malformed call."""
    if not call.HasField("accept"):
        raise invalid("accept is required in an ACCEPT call")
    payload = call.accept
    offer_ids = [o.value for o in payload.offer_ids]
    if not offer_ids:
        raise invalid("accept.offer_ids: at least one offer id is required")
    if len(set(offer_ids)) != len(offer_ids):
        seen: set[str] = set()
        for i, offer_id in enumerate(offer_ids):
            if offer_id in seen:
                raise invalid(f"accept.offer_ids[{i}]: offer {shown(offer_id)} is listed twice")
            seen.add(offer_id)
    refuse = check_filters(
        payload.filters if payload.HasField("filters") else None, "accept.filters"
    )
    operations = list(payload.operations)
    for i, op in enumerate(operations):
        _check_operation(op, f"accept.operations[{i}]")
    check_launch_ids(fw.tasks, _where_tasks(operations), state.config.max_tasks_per_accept)
    offers = []
    problem = None
    for i, offer_id in enumerate(offer_ids):
        offer = state.offers.get(offer_id)
        if offer is None or offer.framework_id != fw.framework_id:
            problem = (
                f"accept.offer_ids[{i}]: offer {shown(offer_id)} is not an outstanding offer of"
                " this framework (it expired, was rescinded or was already used)"
            )
            continue
        offers.append(offer)
    if problem is None:
        first = offers[0]
        for i, offer in enumerate(offers):
            if offer.agent_id != first.agent_id:
                problem = (
                    f"accept.offer_ids[{i}]: offer {offer.offer_id!r} is for agent"
                    f" {offer.agent_id!r}, not {first.agent_id!r} like offer_ids[0]"
                )
                break
            if offer.role != first.role:
                problem = (
                    f"accept.offer_ids[{i}]: offer {offer.offer_id!r} is for role"
                    f" {offer.role!r}, not {first.role!r} like offer_ids[0]"
                )
                break
    if problem is not None:
        tasks = _tasks_of(operations)
        if not tasks:
            raise invalid(problem)
        remove_offers(state, offers, now, rescind=False)
        for task in tasks:
            _task_error(
                state, fw, task, _Reason.REASON_INVALID_OFFERS, problem, agent_id=None, now=now
            )
        return
    agent = state.agents[offers[0].agent_id]
    role = offers[0].role
    available = Resources.EMPTY
    for offer in offers:
        available = available + offer.resources
    info_bytes = fw.info.ByteSize() + len(fw.framework_id.encode()) + len(agent.agent_id.encode())
    plan = _plan(fw, agent, role, operations, _Plan(available, info_bytes))
    for offer in offers:
        state.history.offer_answered(offer, now)
        consume_offer(state, offer)
    for step in plan.steps:
        if isinstance(step, _Launch):
            _apply_launch(state, fw, agent, role, step, now=now)
        elif isinstance(step, _Group):
            _apply_group(state, fw, agent, role, step, now=now)
        else:
            _apply_convert(state, fw, agent, role, step)
    if plan.available:
        state.allocator.recover_resources(
            fw.framework_id, agent.agent_id, plan.available, refuse, now, role=role
        )
        state.allocation_wanted = True


def decline(state: MasterState, fw: Framework, call: scheduler_pb2.Call, now: float) -> None:
    """DECLINE: give offers back with the call's filters (unknown offer ids are skipped, since
    they may have been rescinded while the call was on its way, as Mesos does)."""
    if not call.HasField("decline"):
        raise invalid("decline is required in a DECLINE call")
    payload = call.decline
    refuse = check_filters(
        payload.filters if payload.HasField("filters") else None, "decline.filters"
    )
    declined = []
    for offer_id in dict.fromkeys(o.value for o in payload.offer_ids):
        offer = state.offers.get(offer_id)
        if offer is not None and offer.framework_id == fw.framework_id:
            state.history.offer_answered(offer, now)
            declined.append(offer)
    remove_offers(state, declined, now, refuse_seconds=refuse, rescind=False, offer_soon=False)


# -- planning -----------------------------------------------------------------------------------


def _plan(
    fw: Framework,
    agent: Agent,
    role: str,
    operations: list[mesos_pb2.Offer.Operation],
    plan: _Plan,
) -> _Plan:
    for i, op in enumerate(operations):
        where = f"accept.operations[{i}]"
        if op.type == _Op.LAUNCH:
            for task in op.launch.task_infos:
                plan.steps.append(_plan_task(fw, agent, role, task, plan))
        elif op.type == _Op.LAUNCH_GROUP:
            plan.steps.append(_plan_group(fw, agent, role, op.launch_group, plan))
        elif op.type == _Op.RESERVE:
            plan.steps.append(_plan_reserve(fw, role, op.reserve, plan, where))
        else:
            plan.steps.append(_plan_unreserve(op.unreserve, plan, where))
    return plan


def _check_task(agent: Agent, role: str, task: mesos_pb2.TaskInfo) -> Resources:
    """The task's resources; InvalidTaskError if its id, agent or resources are bad.

    Mesos's rule: a task uses some resources (zero scalars count as none: they are dropped).
    """
    try:
        check_id(task.task_id.value, "task_id")
    except ValueError as error:
        raise InvalidTaskError(str(error)) from None
    if task.HasField("agent_id") and task.agent_id.value != agent.agent_id:
        raise InvalidTaskError(
            f"Task uses agent_id {shown(task.agent_id.value)}, not the offers' agent"
            f" {agent.agent_id!r}"
        )
    try:
        resources = parse_task_resources(task.resources, "resources", role)
    except ValueError as error:
        raise InvalidTaskError(str(error)) from None
    if not resources:
        raise InvalidTaskError(
            "Task uses no resources"
            + (" (every one it names is zero)" if len(task.resources) else "")
        )
    return resources


def _check_executor(
    fw: Framework, agent: Agent, role: str, executor: mesos_pb2.ExecutorInfo, plan: _Plan
) -> Resources | None:
    """The resources of a new executor, or None if it already runs (or is being launched)."""
    executor_id = executor.executor_id.value
    try:
        check_id(executor_id, "executor.executor_id")
    except ValueError as error:
        raise InvalidTaskError(str(error)) from None
    if not executor.HasField("framework_id"):
        executor.framework_id.value = fw.framework_id
    elif executor.framework_id.value != fw.framework_id:
        raise InvalidTaskError(
            f"executor.framework_id {shown(executor.framework_id.value)} is not the framework's id"
        )
    try:
        resources = parse_task_resources(executor.resources, "executor.resources", role)
    except ValueError as error:
        raise InvalidTaskError(str(error)) from None
    _tag(executor.resources, role)  # As the stored info is tagged, so they compare equal.
    running = agent.executors.get((fw.framework_id, executor_id))
    known = running.info if running is not None else plan.executors.get(executor_id)
    if running is not None or known is not None:
        if known is not None and known != executor:
            raise InvalidTaskError(
                f"ExecutorInfo of {shown(executor_id)} differs from the one of the executor"
                " already running (or launched) with that id"
            )
        return None
    return resources


def _fits_call(available: Resources, needed: Resources, where: str) -> bool:
    """:func:`fits_in` for a RESERVE or UNRESERVE: a type conflict refuses the call."""
    try:
        return fits_in(available, needed)
    except InvalidTaskError as error:
        raise invalid(f"{where}: {error}") from None


def _take(plan: _Plan, needed: Resources) -> None:
    if not fits_in(plan.available, needed):
        raise InvalidTaskError(f"Task uses more resources {needed} than available {plan.available}")
    plan.available = plan.available - needed


def _plan_task(
    fw: Framework, agent: Agent, role: str, task: mesos_pb2.TaskInfo, plan: _Plan
) -> _Launch:
    step = _Launch(task)
    try:
        step.resources = _check_task(agent, role, task)
        has_executor, has_command = task.HasField("executor"), task.HasField("command")
        if has_executor == has_command:
            raise InvalidTaskError(
                "Task should have at least one (but not both) of CommandInfo or ExecutorInfo"
            )
        parts = [step.resources]
        if has_executor:
            executor = task.executor
            if executor.type != mesos_pb2.ExecutorInfo.DEFAULT and not executor.HasField("command"):
                raise InvalidTaskError("executor.command is required for a custom executor")
            step.executor = executor
            step.executor_resources = _check_executor(fw, agent, role, executor, plan)
            if step.executor_resources is not None:
                parts.append(step.executor_resources)
        check_launch_size(
            plan.info_bytes, role, (task,), None
        )  # task.executor is part of the task.
        _take(plan, combined_resources(parts))
    except InvalidTaskError as error:
        step.error = str(error)
        return step
    if step.executor is not None and step.executor_resources is not None:
        plan.executors[step.executor.executor_id.value] = step.executor
    return step


def _plan_group(
    fw: Framework,
    agent: Agent,
    role: str,
    launch: mesos_pb2.Offer.Operation.LaunchGroup,
    plan: _Plan,
) -> _Group:
    step = _Group(launch.executor, list(launch.task_group.tasks))
    try:
        if not launch.HasField("executor"):
            raise InvalidTaskError("launch_group.executor is required")
        if launch.executor.type != mesos_pb2.ExecutorInfo.DEFAULT:
            raise InvalidTaskError("launch_group.executor.type must be DEFAULT")
        for task in step.tasks:
            task_id = shown(task.task_id.value)
            try:
                resources = _check_task(agent, role, task)
            except InvalidTaskError as error:
                raise InvalidTaskError(f"task {task_id} in the group: {error}") from None
            if task.HasField("executor"):
                raise InvalidTaskError(f"task {task_id} in a group must not set an executor")
            if not task.HasField("command"):
                raise InvalidTaskError(f"task {task_id} in a group needs a command")
            step.resources.append(resources)
        parts = list(step.resources)
        step.executor_resources = _check_executor(fw, agent, role, launch.executor, plan)
        if step.executor_resources is not None:
            parts.append(step.executor_resources)
        check_launch_size(plan.info_bytes, role, step.tasks, launch.executor)
        _take(plan, combined_resources(parts))
    except InvalidTaskError as error:
        step.error = str(error)
        return step
    if step.executor_resources is not None:
        plan.executors[launch.executor.executor_id.value] = launch.executor
    return step


def _plan_reserve(
    fw: Framework,
    role: str,
    reserve: mesos_pb2.Offer.Operation.Reserve,
    plan: _Plan,
    where: str,
) -> _Convert:
    try:
        target = parse_resources(reserve.resources, f"{where}.reserve.resources")
        if not target:
            raise ValueError(f"{where}.reserve.resources must not be empty")
        for key, _ in target.items():
            top = key.reservations[-1] if key.reservations else None
            if top is None or top.type != "dynamic" or top.role != role:
                raise ValueError(
                    f"{where}.reserve.resources: {shown(key.name)} must be dynamically reserved"
                    f" to the offers' role {role!r}"
                )
            if fw.info.HasField("principal") and top.principal != fw.info.principal:
                raise ValueError(
                    f"{where}.reserve.resources: {shown(key.name)} must name the framework's"
                    f" principal {fw.info.principal!r}"
                )
        source = target.pop_reservation()
        if reserve.source:
            given = parse_resources(reserve.source, f"{where}.reserve.source")
            if given != source:
                raise ValueError(f"{where}.reserve.source {given} is not {source}")
    except ValueError as error:
        raise invalid(str(error)) from None
    if not _fits_call(plan.available, source, f"{where}.reserve"):
        raise invalid(f"{where}.reserve: {source} is not left in the offers ({plan.available})")
    plan.available = plan.available - source + target
    return _Convert(source, target)


def _plan_unreserve(
    unreserve: mesos_pb2.Offer.Operation.Unreserve, plan: _Plan, where: str
) -> _Convert:
    try:
        reserved = parse_resources(unreserve.resources, f"{where}.unreserve.resources")
        if not reserved:
            raise ValueError(f"{where}.unreserve.resources must not be empty")
        if dynamic_part(reserved) != reserved:
            raise ValueError(f"{where}.unreserve.resources must all be dynamically reserved")
        target = reserved.pop_reservation()
    except ValueError as error:
        raise invalid(str(error)) from None
    if not _fits_call(plan.available, reserved, f"{where}.unreserve"):
        raise invalid(f"{where}.unreserve: {reserved} is not left in the offers ({plan.available})")
    plan.available = plan.available - reserved + target
    return _Convert(reserved, target)


# -- applying -----------------------------------------------------------------------------------


def _tag(resources: Iterable[mesos_pb2.Resource], role: str) -> None:
    """Stamp ``allocation_info.role`` on resource messages (agents report it back)."""
    for resource in resources:
        resource.allocation_info.role = role


def _new_executor(
    fw: Framework, agent: Agent, role: str, info: mesos_pb2.ExecutorInfo, resources: Resources
) -> Executor:
    _tag(info.resources, role)
    executor = Executor(
        info.executor_id.value, fw.framework_id, agent.agent_id, role, resources, info
    )
    agent.executors[(fw.framework_id, executor.executor_id)] = executor
    fw.executors[(agent.agent_id, executor.executor_id)] = executor
    return executor


def _add_task(
    fw: Framework,
    agent: Agent,
    role: str,
    info: mesos_pb2.TaskInfo,
    resources: Resources,
    *,
    executor_id: str | None,
) -> Task:
    task_id = info.task_id.value
    task = Task(task_id, fw.framework_id, agent.agent_id, executor_id, role, resources, info=info)
    fw.tasks[task_id] = task
    agent.tasks[(fw.framework_id, task_id)] = task
    if executor_id is not None:
        executor = agent.executors.get((fw.framework_id, executor_id))
        if executor is not None:
            executor.tasks.add(task_id)
    return task


def _apply_launch(
    state: MasterState, fw: Framework, agent: Agent, role: str, step: _Launch, *, now: float
) -> None:
    task = step.task
    if step.error is not None:
        _task_error(
            state,
            fw,
            task,
            _Reason.REASON_TASK_INVALID,
            step.error,
            agent_id=agent.agent_id,
            now=now,
        )
        return
    if not task.HasField("agent_id"):
        task.agent_id.value = agent.agent_id
    _tag(task.resources, role)
    executor_id = None
    if step.executor is not None:
        executor_id = step.executor.executor_id.value
        if step.executor_resources is not None:
            _new_executor(fw, agent, role, step.executor, step.executor_resources)
    added = _add_task(fw, agent, role, task, step.resources, executor_id=executor_id)
    state.history.task_launched(added, now)
    message = run_task_message(fw, agent, task)
    if step.executor is not None:
        run = message.run_task
        run.executor.CopyFrom(step.executor)
        run.launch_executor = step.executor_resources is not None
    state.send_to_agent(agent, message)


def _apply_group(
    state: MasterState, fw: Framework, agent: Agent, role: str, step: _Group, *, now: float
) -> None:
    if step.error is not None:
        for task in step.tasks:
            _task_error(
                state,
                fw,
                task,
                _Reason.REASON_TASK_GROUP_INVALID,
                step.error,
                agent_id=agent.agent_id,
                now=now,
            )
        return
    if step.executor_resources is not None:
        _new_executor(fw, agent, role, step.executor, step.executor_resources)
    executor_id = step.executor.executor_id.value
    message = agent_internal_pb2.MasterMessage()
    run = message.run_task_group
    run.framework_info.CopyFrom(fw.info)
    run.executor.CopyFrom(step.executor)
    run.launch_executor = step.executor_resources is not None
    for task, resources in zip(step.tasks, step.resources, strict=True):
        if not task.HasField("agent_id"):
            task.agent_id.value = agent.agent_id
        _tag(task.resources, role)
        added = _add_task(fw, agent, role, task, resources, executor_id=executor_id)
        state.history.task_launched(added, now)
        run.task_group.tasks.add().CopyFrom(task)
    agent.launch_seq += 1
    run.launch_seq = agent.launch_seq
    state.send_to_agent(agent, message)


def _apply_convert(
    state: MasterState, fw: Framework, agent: Agent, role: str, step: _Convert
) -> None:
    state.allocator.update_allocation(fw.framework_id, agent.agent_id, role, step.old, step.new)
    agent.total = agent.total - step.old + step.new
    agent.reservations = dynamic_part(agent.total)
    protos = agent.reservations.to_protos()
    state.persist(UpdateReservations(agent.agent_id, tuple(protos)))
    message = agent_internal_pb2.MasterMessage()
    message.checkpoint_resources.resources.extend(protos)
    state.send_to_agent(agent, message)
