"""The agent's records of frameworks, executors and tasks, and the rules that are pure functions.

An agent holds, per framework, its executors; per executor, the tasks it runs. A *command task*
(a TaskInfo with a CommandInfo) gets an executor record of kind ``COMMAND`` whose id is the
task's id: the agent plays that executor itself, running the command directly in the container.
A *custom* executor is a process the framework provides; it subscribes to the executor API.

Executor life cycle (``ExecutorPhase``)::

    LAUNCHING --launched--> REGISTERING --subscribed--> RUNNING
        |                        |                         |
        +------------------------+---- shutdown/kill ----> TERMINATING
        |                        |                         |
        +--------- container exited (any phase) ---------> TERMINATED --all streams closed--> gone

Command executors skip REGISTERING (their process is the task). After an agent restart a
recovered custom executor waits in REGISTERING for its re-subscription.

The *default executor* (kind ``DEFAULT``: an ExecutorInfo of type DEFAULT without a command)
runs task groups, and the agent plays it too: it has no process of its own, starts RUNNING, and
each of its tasks runs in a :class:`NestedContainer` of its own. It ends (TERMINATED) once every
task is terminal and every nested container gone; ``container_id`` is then only the id of its
run (the sandbox and checkpoint directory its tasks live under).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from enum import Enum

from agent.core.status_updates import is_terminal
from protos.resources import Resources
from protos.v1 import mesos_pb2

__all__ = [
    "COMMAND_EXECUTOR_LABEL",
    "DEFAULT_KILL_GRACE_PERIOD",
    "ContainerExit",
    "ExecutorKind",
    "ExecutorPhase",
    "ExecutorRecord",
    "FrameworkRecord",
    "InvalidCall",
    "NestedContainer",
    "NotAllowedNow",
    "TaskRecord",
    "Termination",
    "UnknownTarget",
    "command_executor_info",
    "command_task_outcome",
    "executor_kind",
    "grace_period",
    "wait_status",
]

DEFAULT_KILL_GRACE_PERIOD = 3.0  # Mesos's command executor default (src/launcher/executor.cpp).
COMMAND_EXECUTOR_LABEL = "emporion.command-executor"  # Marks the ExecutorInfo the agent made.


class InvalidCall(ValueError):  # noqa: N818 - reads as "an invalid call", like Mesos's Error
    """InvalidCall: an executor's call is malformed or not allowed now; nothing changed."""


class NotAllowedNow(InvalidCall):
    """NotAllowedNow: a well-formed call the executor's or task's current state forbids."""


class UnknownTarget(LookupError):  # noqa: N818
    """UnknownTarget: the framework, executor or task a call names is not on this agent."""


class ExecutorKind(Enum):
    """Who runs an executor: the agent itself (COMMAND, DEFAULT) or a framework's process."""

    COMMAND = "command"  # One command task; the agent runs its command in the container.
    DEFAULT = "default"  # Task groups; the agent runs each task in a nested container.
    CUSTOM = "custom"


class ExecutorPhase(Enum):
    """Where an executor is in its life (see the module docstring)."""

    LAUNCHING = "launching"
    REGISTERING = "registering"
    RUNNING = "running"
    TERMINATING = "terminating"
    TERMINATED = "terminated"


@dataclass(frozen=True)
class ContainerExit:
    """ContainerExit says how a container's main process ended (``None`` fields: unknown)."""

    status: int | None = None
    signal: int | None = None
    oom_killed: bool = False
    message: str | None = None
    disk_exceeded: bool = False
    """The agent killed the container for using more disk than its ``disk`` resource."""

    def describe(self) -> str:
        """A short phrase such as ``exited with status 1`` or ``terminated by signal 9 (KILL)``."""
        if self.status is not None:
            return f"exited with status {self.status}"
        if self.signal is not None:
            return f"terminated by signal {self.signal} ({signal_name(self.signal)})"
        return "ended with an unknown status"


def signal_name(number: int) -> str:
    """``KILL`` for 9; the number itself if it names no signal."""
    try:
        return signal.Signals(number).name.removeprefix("SIG")
    except ValueError:
        return str(number)


def wait_status(exit: ContainerExit) -> int:
    """The exit as a POSIX wait status (as Mesos reports an executor's exit to the master)."""
    if exit.status is not None:
        return (exit.status & 0xFF) << 8
    if exit.signal is not None:
        return exit.signal & 0x7F
    return -1


@dataclass(frozen=True)
class Termination:
    """Termination is why the agent is ending an executor: what its live tasks become on exit."""

    state: mesos_pb2.TaskState.ValueType
    reason: mesos_pb2.TaskStatus.Reason.ValueType
    message: str


@dataclass
class NestedContainer:
    """NestedContainer is the container one task of the default executor runs in.

    ``launched``: its process was started (or found again after a restart); ``gone``: it ended
    or never started, and nothing of it remains; ``exit`` says how it ended.
    """

    container_id: str
    launched: bool = False
    gone: bool = False
    exit: ContainerExit | None = None

    @property
    def live(self) -> bool:
        """Whether the container is being launched or runs."""
        return not self.gone


@dataclass
class TaskRecord:
    """TaskRecord is the agent's view of one task, from RunTask until its terminal update's ack.

    ``state`` is the newest state the agent knows (STAGING until the first update).
    ``launched`` says the executor has been given the task (always true for command tasks once
    their container runs). ``group`` names the other tasks launched with it atomically.
    Tasks of the default executor also have ``container``, their own nested container;
    ``pending_termination`` is the terminal update decided before their container ended (a
    failed launch, a kill during launch, an agent stop), and ``group_kill_cause`` why the task
    is being killed with its group.
    """

    framework_id: str
    task_id: str
    executor_id: str
    info: mesos_pb2.TaskInfo
    resources: Resources
    state: mesos_pb2.TaskState.ValueType = mesos_pb2.TASK_STAGING
    launched: bool = False
    group: tuple[str, ...] = ()
    kill_requested: bool = False
    kill_sent: bool = False
    kill_policy: mesos_pb2.KillPolicy | None = None
    killed_by_health_check: bool = False
    completion_time_reached: bool = False
    container: NestedContainer | None = None
    pending_termination: Termination | None = None
    group_kill_cause: str | None = None

    @property
    def terminal(self) -> bool:
        """Whether the task has reached a terminal state (its update may still be unacked)."""
        return is_terminal(self.state)


@dataclass
class ExecutorRecord:
    """ExecutorRecord is one executor on the agent and the tasks it holds.

    ``tasks`` holds every task not yet finished with (queued, running, or terminal but not yet
    acknowledged). ``queue`` lists the launches waiting for the executor to subscribe, each a
    tuple of task ids (several for a task group).
    """

    framework_id: str
    executor_id: str
    kind: ExecutorKind
    info: mesos_pb2.ExecutorInfo
    container_id: str
    resources: Resources
    checkpoint: bool
    phase: ExecutorPhase = ExecutorPhase.LAUNCHING
    tasks: dict[str, TaskRecord] = field(default_factory=dict)
    queue: list[tuple[str, ...]] = field(default_factory=list)
    connected: bool = False
    recovered: bool = False
    shutdown_requested: bool = False
    pending_termination: Termination | None = None
    exit: ContainerExit | None = None

    @property
    def key(self) -> tuple[str, str]:
        """``(framework_id, executor_id)``."""
        return (self.framework_id, self.executor_id)

    @property
    def live(self) -> bool:
        """Whether new tasks may go to this executor."""
        return self.phase not in (ExecutorPhase.TERMINATING, ExecutorPhase.TERMINATED)

    def task_resources(self) -> Resources:
        """The resources of the executor's non-terminal tasks."""
        total = Resources.EMPTY
        for task in self.tasks.values():
            if not task.terminal:
                total = total + task.resources
        return total

    def container_resources(self) -> Resources:
        """What the container may use: the executor's own resources plus its live tasks'."""
        return self.resources + self.task_resources()

    def validate(self) -> None:
        """Check the executor's invariants; raise AssertionError naming the broken one."""
        where = f"executor {self.executor_id!r} of framework {self.framework_id!r}"
        for task_id, task in self.tasks.items():
            assert task.task_id == task_id, f"{where}: task filed under {task_id!r}"
            assert task.executor_id == self.executor_id, f"{where}: foreign task {task_id!r}"
            assert task.framework_id == self.framework_id, f"{where}: foreign task {task_id!r}"
        queued = [t for group in self.queue for t in group]
        assert len(queued) == len(set(queued)), f"{where}: task queued twice"
        for task_id in queued:
            assert task_id in self.tasks, f"{where}: queued task {task_id!r} unknown"
            assert not self.tasks[task_id].launched, f"{where}: queued task {task_id!r} launched"
        if self.kind is ExecutorKind.COMMAND:
            assert not self.queue, f"{where}: command executors queue nothing"
            assert set(self.tasks) <= {self.executor_id}, f"{where}: command executor tasks"
        for task in self.tasks.values():
            nested = (self.kind is ExecutorKind.DEFAULT) == (task.container is not None)
            assert nested, f"{where}: task {task.task_id!r} nested container mismatch"
            if task.container is not None:
                # A task is reported ended only once its container is gone.
                if task.terminal:
                    assert task.container.gone, f"{where}: {task.task_id!r} ended, container not"
                elif task.state not in (mesos_pb2.TASK_STAGING, mesos_pb2.TASK_STARTING):
                    assert task.container.launched, f"{where}: {task.task_id!r} never launched"
        if self.kind is ExecutorKind.DEFAULT:
            assert not self.queue, f"{where}: the default executor queues nothing"
            if self.phase is not ExecutorPhase.TERMINATED:
                assert self.phase in (ExecutorPhase.RUNNING, ExecutorPhase.TERMINATING), (
                    f"{where}: default executor in phase {self.phase.value}"
                )
        if self.connected:
            assert self.kind is ExecutorKind.CUSTOM, f"{where}: command executor connected"
            assert self.phase is not ExecutorPhase.TERMINATED, f"{where}: connected after exit"
        if self.phase is ExecutorPhase.TERMINATED:
            assert self.exit is not None, f"{where}: terminated without an exit"
            for task in self.tasks.values():
                assert task.terminal, f"{where}: live task {task.task_id!r} after exit"


@dataclass
class FrameworkRecord:
    """FrameworkRecord is a framework with executors on this agent."""

    framework_id: str
    info: mesos_pb2.FrameworkInfo
    executors: dict[str, ExecutorRecord] = field(default_factory=dict)
    shutting_down: bool = False
    task_index: dict[str, str] = field(default_factory=dict)
    """Task id -> the executor holding it, kept by :meth:`add_task` and :meth:`remove_task`
    so that finding a task does not grow with the framework's executors."""

    @property
    def checkpoint(self) -> bool:
        """Whether this framework's state is checkpointed (FrameworkInfo.checkpoint)."""
        return self.info.checkpoint

    def has_capability(self, capability: mesos_pb2.FrameworkInfo.Capability.Type.ValueType) -> bool:
        """Whether the framework declared ``capability``."""
        return any(c.type == capability for c in self.info.capabilities)

    def find_task(self, task_id: str) -> TaskRecord | None:
        """The task with this id in any of the framework's executors."""
        executor = self.executors.get(self.task_index.get(task_id, ""))
        return executor.tasks.get(task_id) if executor is not None else None

    def add_task(self, executor: ExecutorRecord, task: TaskRecord) -> None:
        """File ``task`` under ``executor`` (one of this framework's)."""
        executor.tasks[task.task_id] = task
        self.task_index[task.task_id] = executor.executor_id

    def remove_task(self, executor: ExecutorRecord, task_id: str) -> TaskRecord | None:
        """Forget the task ``task_id`` of ``executor``; return it (None if it had none)."""
        task = executor.tasks.pop(task_id, None)
        if task is not None and self.task_index.get(task_id) == executor.executor_id:
            del self.task_index[task_id]
        return task

    def validate(self) -> None:
        """Check the task index; raise AssertionError naming what is wrong."""
        filed = {t: e.executor_id for e in self.executors.values() for t in e.tasks}
        count = sum(len(e.tasks) for e in self.executors.values())
        assert count == len(filed), f"framework {self.framework_id!r}: a task id held twice"
        assert filed == self.task_index, f"framework {self.framework_id!r}: task index out of date"


def grace_period(
    kill_policy: mesos_pb2.KillPolicy | None, task: mesos_pb2.TaskInfo | None
) -> float:
    """Seconds between SIGTERM and SIGKILL: KILL's policy, else the task's, else 3 s."""
    for policy in (kill_policy, task.kill_policy if task is not None else None):
        if policy is not None and policy.HasField("grace_period"):
            return max(0.0, policy.grace_period.nanoseconds / 1e9)
    return DEFAULT_KILL_GRACE_PERIOD


def executor_kind(info: mesos_pb2.ExecutorInfo) -> ExecutorKind:
    """COMMAND for the ExecutorInfo the agent made for a command task, DEFAULT for a DEFAULT
    executor without a command (the agent plays it), else CUSTOM."""
    for label in info.labels.labels:
        if label.key == COMMAND_EXECUTOR_LABEL:
            return ExecutorKind.COMMAND
    if info.type == mesos_pb2.ExecutorInfo.DEFAULT and not info.HasField("command"):
        return ExecutorKind.DEFAULT
    return ExecutorKind.CUSTOM


def command_executor_info(framework_id: str, task: mesos_pb2.TaskInfo) -> mesos_pb2.ExecutorInfo:
    """The ExecutorInfo the agent records for a command task (executor id = task id)."""
    info = mesos_pb2.ExecutorInfo(name=f"Command Executor (Task: {task.task_id.value})")
    info.executor_id.value = task.task_id.value
    info.framework_id.value = framework_id
    info.command.CopyFrom(task.command)
    info.labels.labels.add(key=COMMAND_EXECUTOR_LABEL, value="1")
    return info


def command_task_outcome(
    exit: ContainerExit, task: TaskRecord
) -> tuple[mesos_pb2.TaskState.ValueType, mesos_pb2.TaskStatus.Reason.ValueType | None, str]:
    """The terminal (state, reason, message) of a command task whose process ended with ``exit``.

    In order: an OOM kill fails the task with the memory reason, a kill for exceeding its disk
    limit with the disk reason; a kill by health checks, by
    the completion deadline or by request wins over the exit status (the process died of our
    signal); otherwise status 0 finishes, anything else fails.
    """
    if exit.oom_killed:
        detail = f": {exit.message}" if exit.message else ""
        return (
            mesos_pb2.TASK_FAILED,
            mesos_pb2.TaskStatus.REASON_CONTAINER_LIMITATION_MEMORY,
            f"Memory limit exceeded{detail}",
        )
    if exit.disk_exceeded:
        detail = f": {exit.message}" if exit.message else ""
        return (
            mesos_pb2.TASK_FAILED,
            mesos_pb2.TaskStatus.REASON_CONTAINER_LIMITATION_DISK,
            f"Disk limit exceeded{detail}",
        )
    if task.killed_by_health_check:
        return (
            mesos_pb2.TASK_KILLED,
            mesos_pb2.TaskStatus.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED,
            "Task killed after failing its health checks",
        )
    if task.completion_time_reached:
        return (
            mesos_pb2.TASK_FAILED,
            mesos_pb2.TaskStatus.REASON_MAX_COMPLETION_TIME_REACHED,
            "Task killed after reaching its max_completion_time",
        )
    if task.kill_requested:
        return (mesos_pb2.TASK_KILLED, None, f"Command {exit.describe()}")
    if exit.status == 0:
        return (mesos_pb2.TASK_FINISHED, None, "Command exited with status 0")
    if exit.status is not None or exit.signal is not None:
        return (mesos_pb2.TASK_FAILED, None, f"Command {exit.describe()}")
    message = exit.message or "The command ended with an unknown exit status"
    return (
        mesos_pb2.TASK_FAILED,
        mesos_pb2.TaskStatus.REASON_EXECUTOR_TERMINATED,
        message[:1].upper() + message[1:],
    )
