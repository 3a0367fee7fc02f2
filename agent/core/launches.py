"""Launches: what the agent does with RunTask and RunTaskGroup.

A launch is checked (shape, ids, resources against what is unallocated), matched to its
executor (a running one, or a new record: the agent's own for a command task or a task group
with a DEFAULT executor, a custom one started from its ExecutorInfo), recorded and
checkpointed, then started or queued for the executor. A launch the agent cannot run gets a
precise update instead and changes nothing; one reusing the id of a task the agent still runs
gets a LaunchRefused message instead (the id's update stream belongs to that task). Either
way, if it named an executor that is not running here, the master (which counts that executor
from the moment it sent the launch) gets an ExitedExecutor for it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from agent.core.default_executor import launch_group
from agent.core.effects import (
    CheckpointExecutor,
    CheckpointFramework,
    CheckpointTask,
    Effect,
    LaunchContainer,
    SendToExecutor,
    SendToMaster,
    UpdateContainer,
)
from agent.core.lifecycle import hold, send_to_master_surely, send_update
from agent.core.messages import (
    exited_executor_message,
    launch_event,
    launch_group_event,
    launch_refused_message,
)
from agent.core.model import (
    ExecutorKind,
    ExecutorPhase,
    ExecutorRecord,
    FrameworkRecord,
    NestedContainer,
    TaskRecord,
    command_executor_info,
)
from agent.core.state import AgentState
from agent.core.validation import (
    TaskRejected,
    compatible_executors,
    parse_resources,
    validate_executor_info,
    validate_task_id,
    validate_task_info,
)
from protos.resources import Resources
from protos.v1 import agent_internal_pb2, mesos_pb2

__all__ = [
    "deliver",
    "launch_executor",
    "unlaunched_executor",
    "drop_state",
    "run_task",
    "run_task_group",
    "task_id_in_use",
]

log = logging.getLogger(__name__)

_Reason = mesos_pb2.TaskStatus
_DEFAULT = mesos_pb2.ExecutorInfo.DEFAULT
_PARTITION_AWARE = mesos_pb2.FrameworkInfo.Capability.PARTITION_AWARE


def drop_state(info: mesos_pb2.FrameworkInfo | None) -> mesos_pb2.TaskState.ValueType:
    """TASK_DROPPED for partition-aware frameworks, TASK_LOST for the others (as Mesos)."""
    if info is not None and any(c.type == _PARTITION_AWARE for c in info.capabilities):
        return mesos_pb2.TASK_DROPPED
    return mesos_pb2.TASK_LOST


@dataclass(frozen=True)
class _Launch:
    """One RunTask or RunTaskGroup, unpacked."""

    framework_id: str
    framework_info: mesos_pb2.FrameworkInfo
    tasks: list[mesos_pb2.TaskInfo]
    executor_info: mesos_pb2.ExecutorInfo | None
    launch_executor: bool | None
    group: bool

    @property
    def task_ids(self) -> list[str]:
        return [t.task_id.value for t in self.tasks]


def run_task(state: AgentState, run: agent_internal_pb2.RunTask, now: float) -> list[Effect]:
    """Launch one task (starting its executor if needed), or say why it cannot run."""
    task = run.task
    framework_id = run.framework_id.value or run.framework_info.id.value
    if not framework_id or not task.task_id.value:
        log.warning("Ignoring RunTask without framework_id or task.task_id")
        return []
    executor: mesos_pb2.ExecutorInfo | None = None
    if run.HasField("executor"):
        executor = run.executor
    elif task.HasField("executor"):
        executor = task.executor
    launch = run.launch_executor if run.HasField("launch_executor") else None
    return _run(
        state, _Launch(framework_id, run.framework_info, [task], executor, launch, False), now
    )


def run_task_group(
    state: AgentState, run: agent_internal_pb2.RunTaskGroup, now: float
) -> list[Effect]:
    """Launch a task group atomically in one executor, or reject all of it."""
    framework_id = run.framework_info.id.value or run.executor.framework_id.value
    tasks = list(run.task_group.tasks)
    if not framework_id or not tasks:
        log.warning("Ignoring RunTaskGroup without framework id or tasks")
        return []
    launch = run.launch_executor if run.HasField("launch_executor") else None
    return _run(
        state, _Launch(framework_id, run.framework_info, tasks, run.executor, launch, True), now
    )


def _run(state: AgentState, launch: _Launch, now: float) -> list[Effect]:
    framework_id = launch.framework_id
    framework = state.frameworks.get(framework_id)
    if framework is not None and framework.shutting_down:
        # A terminating framework cannot acknowledge updates, so none is sent (as Mesos).
        log.warning("Ignoring launch for framework %s: it is shutting down", framework_id)
        return []
    info = framework.info if framework is not None else launch.framework_info
    in_use = [
        tid for tid in dict.fromkeys(launch.task_ids) if task_id_in_use(state, framework_id, tid)
    ]
    if in_use:
        return _refuse_duplicates(state, framework, launch, in_use, now)
    try:
        resources = _check_launch(state, launch)
        executor = _resolve_executor(state, framework, launch)
        new_executor = framework is None or executor.executor_id not in framework.executors
        needed = resources + executor.resources if new_executor else resources
        if not state.fits(needed):
            free = state.total.flatten() - state.allocated().flatten()
            raise TaskRejected(
                f"task needs {needed.flatten()} but the agent has only {free} unallocated"
            )
    except TaskRejected as rejected:
        effects: list[Effect] = []
        for task_id in dict.fromkeys(launch.task_ids):  # Each id once, in order.
            effects += send_update(
                state,
                framework_id,
                task_id,
                None,
                rejected.state if rejected.state != mesos_pb2.TASK_LOST else drop_state(info),
                now=now,
                reason=rejected.reason,
                message=rejected.message,
            )
        return effects + unlaunched_executor(state, framework_id, launch.executor_info)
    return _admit(state, framework, launch, executor, now)


def unlaunched_executor(
    state: AgentState, framework_id: str, executor_info: mesos_pb2.ExecutorInfo | None
) -> list[Effect]:
    """A launch naming an executor that is not here was refused: the master, which counts the
    executor from the moment it sent the launch, is told it ended (it never started)."""
    executor_id = executor_info.executor_id.value if executor_info is not None else ""
    framework = state.frameworks.get(framework_id)
    if not executor_id or (framework is not None and executor_id in framework.executors):
        return []
    return send_to_master_surely(state, exited_executor_message(framework_id, executor_id, None))


def task_id_in_use(state: AgentState, framework_id: str, task_id: str) -> bool:
    framework = state.frameworks.get(framework_id)
    if framework is not None and framework.find_task(task_id) is not None:
        return True
    return state.updates.get(framework_id, task_id) is not None


def _refuse_duplicates(
    state: AgentState,
    framework: FrameworkRecord | None,
    launch: _Launch,
    in_use: list[str],
    now: float,
) -> list[Effect]:
    """A launch reusing the id of a task the agent still holds.

    An identical TaskInfo is the same launch delivered twice and is ignored. Otherwise the
    refusal goes out as a LaunchRefused message, not a status update: the id's update
    stream belongs to the task that holds it (a terminal update there would end that task's
    stream), and the master must not apply it to that task either.
    """
    if framework is not None and all(
        (held := framework.find_task(t.task_id.value)) is not None and held.info == t
        for t in launch.tasks
    ):
        log.info("Ignoring a repeated launch of %s", ", ".join(in_use))
        return []
    framework_id = launch.framework_id
    effects: list[Effect] = []
    for task_id in dict.fromkeys(launch.task_ids):  # Each id once: a group may repeat one.
        if not task_id:
            continue  # Nothing to address an answer to.
        if task_id in in_use:
            message = (
                f"task_id {task_id!r} is in use by a task on this agent that has not"
                " finished; this launch was refused and that task is unaffected"
            )
            reason = (
                _Reason.REASON_TASK_GROUP_INVALID if launch.group else _Reason.REASON_TASK_INVALID
            )
            effects.append(
                SendToMaster(launch_refused_message(framework_id, task_id, message, reason))
            )
        elif launch.group:
            effects += send_update(
                state,
                framework_id,
                task_id,
                None,
                mesos_pb2.TASK_ERROR,
                now=now,
                reason=_Reason.REASON_TASK_GROUP_INVALID,
                message=f"task group refused: task ids {in_use} are in use on this agent",
            )
    return effects + unlaunched_executor(state, framework_id, launch.executor_info)


def _check_launch(state: AgentState, launch: _Launch) -> Resources:
    """Validate the launch's TaskInfos; return the resources the tasks need."""
    tasks, executor_info, group = launch.tasks, launch.executor_info, launch.group
    ids = [t.task_id.value for t in tasks]
    if len(set(ids)) != len(ids):
        raise TaskRejected(
            f"task_group.tasks has duplicate task ids: {sorted(ids)}",
            reason=_Reason.REASON_TASK_GROUP_INVALID,
        )
    default = executor_info is not None and executor_info.type == _DEFAULT
    invalid = _Reason.REASON_TASK_GROUP_INVALID if group else _Reason.REASON_TASK_INVALID
    if default and executor_info is not None and executor_info.HasField("command"):
        raise TaskRejected(
            "executor.command must not be set for a DEFAULT executor: the agent runs the"
            " default executor itself (use type CUSTOM to run your own executor)",
            reason=invalid,
        )
    if default and not group:
        raise TaskRejected(
            "a task with a DEFAULT executor must be launched in a task group (LAUNCH_GROUP)"
        )
    resources = Resources.EMPTY
    for index, task in enumerate(tasks):
        where = f"task_group.tasks[{index}]" if group else "task"
        if group and task.HasField("executor"):
            raise TaskRejected(
                f"{where}.executor must be unset: the group's executor is given next to it",
                reason=_Reason.REASON_TASK_GROUP_INVALID,
            )
        if not group:
            validate_task_info(task, executor_info is not None, where)
        elif default:
            if not task.HasField("command"):
                raise TaskRejected(
                    f"{where}.command must be set: the default executor runs each task's"
                    " command in a container of its own",
                    reason=invalid,
                )
            validate_task_info(task, False, where)
        else:
            validate_task_id(task.task_id.value, where)
        resources = resources + parse_resources(task.resources, where)
    if executor_info is not None:
        validate_executor_info(executor_info, launch.framework_id)
        parse_resources(executor_info.resources, "executor")
    elif group:
        raise TaskRejected(
            "task group without an executor", reason=_Reason.REASON_TASK_GROUP_INVALID
        )
    return resources


def _resolve_executor(
    state: AgentState, framework: FrameworkRecord | None, launch: _Launch
) -> ExecutorRecord:
    """The executor the tasks go to: a running one, or a new record (phase LAUNCHING)."""
    framework_id, tasks, executor_info = launch.framework_id, launch.tasks, launch.executor_info
    launch_executor = launch.launch_executor
    checkpoint = framework.checkpoint if framework is not None else False
    if executor_info is None:  # A command task: the agent plays its executor.
        task = tasks[0]
        executor_id = task.task_id.value
        if framework is not None and executor_id in framework.executors:
            raise TaskRejected(
                f"cannot reuse executor {executor_id!r}, still present for an earlier task"
                " with this id, for a command task",
                state=mesos_pb2.TASK_LOST,
            )
        return ExecutorRecord(
            framework_id,
            executor_id,
            ExecutorKind.COMMAND,
            command_executor_info(framework_id, task),
            state.new_container_id(),
            Resources.EMPTY,
            checkpoint,
        )
    executor_id = executor_info.executor_id.value
    running = framework.executors.get(executor_id) if framework is not None else None
    if running is not None:
        if not running.live or launch_executor:
            raise TaskRejected(
                f"executor {executor_id!r} is {running.phase.value}; the master expected"
                " to launch a new one"
                if launch_executor
                else f"executor {executor_id!r} is {running.phase.value}",
                state=mesos_pb2.TASK_LOST,
                reason=_Reason.REASON_EXECUTOR_TERMINATED,
            )
        if running.kind is ExecutorKind.COMMAND or not compatible_executors(
            running.info, executor_info
        ):
            raise TaskRejected(
                f"executor {executor_id!r} is running on this agent with a different ExecutorInfo"
            )
        return running
    if launch_executor is False:
        raise TaskRejected(
            f"executor {executor_id!r} is not running and the master expected no launch",
            state=mesos_pb2.TASK_LOST,
            reason=_Reason.REASON_EXECUTOR_TERMINATED,
        )
    default = executor_info.type == _DEFAULT
    if not default and not executor_info.HasField("command"):
        raise TaskRejected(
            f"unknown executor {executor_id!r}: it is not running on this agent and"
            " executor.command is unset, so it cannot be started"
        )
    info = mesos_pb2.ExecutorInfo()
    info.CopyFrom(executor_info)
    info.framework_id.value = framework_id
    return ExecutorRecord(
        framework_id,
        executor_id,
        ExecutorKind.DEFAULT if default else ExecutorKind.CUSTOM,
        info,
        state.new_container_id(),  # A default executor's run: its tasks' sandboxes.
        Resources.from_protos(executor_info.resources),
        checkpoint,
        # The agent plays the default executor: nothing to start, nothing to register.
        phase=ExecutorPhase.RUNNING if default else ExecutorPhase.LAUNCHING,
    )


def _admit(
    state: AgentState,
    framework: FrameworkRecord | None,
    launch: _Launch,
    executor: ExecutorRecord,
    now: float,
) -> list[Effect]:
    framework_id, tasks = launch.framework_id, launch.tasks
    effects: list[Effect] = []
    if framework is None:
        info = mesos_pb2.FrameworkInfo()
        info.CopyFrom(launch.framework_info)
        info.id.value = framework_id
        framework = FrameworkRecord(framework_id, info)
        state.frameworks[framework_id] = framework
        executor.checkpoint = framework.checkpoint
        if framework.checkpoint:
            effects.append(CheckpointFramework(framework_id, info))
    new_executor = executor.executor_id not in framework.executors
    if new_executor:
        framework.executors[executor.executor_id] = executor
        hold(state, executor.resources)
        if executor.kind is not ExecutorKind.DEFAULT:  # Only its tasks have containers.
            state.containers[executor.container_id] = executor.key
        if executor.checkpoint:
            effects.append(
                CheckpointExecutor(
                    framework_id, executor.executor_id, executor.container_id, executor.info
                )
            )
    ids = tuple(t.task_id.value for t in tasks)
    default = executor.kind is ExecutorKind.DEFAULT
    for task in tasks:
        record = TaskRecord(
            framework_id,
            task.task_id.value,
            executor.executor_id,
            task,
            Resources.from_protos(task.resources),
            group=ids if launch.group else (),
        )
        if default:
            record.container = NestedContainer(state.new_container_id())
        framework.add_task(executor, record)
        hold(state, record.resources)
        if executor.checkpoint:
            effects.append(
                CheckpointTask(
                    framework_id,
                    executor.executor_id,
                    executor.container_id,
                    task,
                    record.container.container_id if record.container else None,
                    record.group,
                )
            )
    if default:
        effects += launch_group(state, framework, executor, ids, now)
    elif new_executor:
        effects += _launch(state, framework, executor, now)
    elif executor.kind is ExecutorKind.CUSTOM:
        effects.append(UpdateContainer(executor.container_id, executor.container_resources()))
        if executor.connected and executor.phase is ExecutorPhase.RUNNING:
            effects += deliver(state, executor, ids)
        else:
            executor.queue.append(ids)
    return effects


def launch_executor(
    state: AgentState, framework: FrameworkRecord, executor: ExecutorRecord, now: float
) -> list[Effect]:
    """Launch the container of ``executor`` (a new one, or one whose container never started
    before an agent restart)."""
    return _launch(state, framework, executor, now)


def _launch(
    state: AgentState, framework: FrameworkRecord, executor: ExecutorRecord, now: float
) -> list[Effect]:
    effects: list[Effect] = []
    task_id: str | None = None
    user = framework.info.user or None
    if executor.kind is ExecutorKind.COMMAND:
        task = executor.tasks[executor.executor_id]
        task_id = task.task_id
        if task.info.command.HasField("user"):
            user = task.info.command.user or None
        if task.info.command.uris:
            # Fetching may take a while: say the task is being prepared.
            effects += send_update(
                state,
                framework.framework_id,
                task_id,
                executor.executor_id,
                mesos_pb2.TASK_STARTING,
                now=now,
                source=_Reason.SOURCE_EXECUTOR,
            )
    else:
        executor.queue.append(tuple(executor.tasks))
        if executor.info.command.HasField("user"):
            user = executor.info.command.user or None
    grace = state.shutdown_grace(executor)
    effects.append(
        LaunchContainer(
            framework.framework_id,
            executor.executor_id,
            executor.container_id,
            executor.info.command,
            executor.container_resources(),
            user,
            task_id,
            executor.checkpoint,
            grace,
        )
    )
    return effects


def deliver(state: AgentState, executor: ExecutorRecord, task_ids: tuple[str, ...]) -> list[Effect]:
    """Hand tasks to a subscribed executor (LAUNCH, or LAUNCH_GROUP for a group)."""
    tasks = [executor.tasks[t] for t in task_ids if t in executor.tasks]
    tasks = [t for t in tasks if not t.terminal]
    if not tasks:
        return []
    for task in tasks:
        task.launched = True
    if tasks[0].group:
        event = launch_group_event([t.info for t in tasks])
    else:
        event = launch_event(tasks[0].info)
    return [SendToExecutor(executor.framework_id, executor.executor_id, event)]
