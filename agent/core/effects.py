"""Effects: what the agent's core asks its runtime to do, as plain frozen values.

The core never performs I/O. Each event handler returns a list of effects, and the runtime
carries them out **in order** — order matters: a checkpoint effect comes before the message that
depends on it being on disk. Timers are named by a tuple key; setting a key again replaces its
timer, and when it fires the runtime hands the key back as ``TimerFired(key)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from protos.resources import Resources
from protos.v1 import agent_internal_pb2, executor_pb2, mesos_pb2

__all__ = [
    "AppendUpdateRecord",
    "CancelTimer",
    "CheckpointAgent",
    "CheckpointContainerState",
    "CheckpointExecutor",
    "CheckpointFramework",
    "CheckpointTask",
    "CloseExecutorStream",
    "DestroyContainer",
    "Effect",
    "ForwardUpdate",
    "LaunchContainer",
    "LookForContainer",
    "RemoveExecutorCheckpoint",
    "RemoveFrameworkCheckpoint",
    "ScheduleSandboxGC",
    "SendToExecutor",
    "SendToMaster",
    "SetTimer",
    "SignalContainer",
    "StartHealthCheck",
    "StopAgent",
    "StopHealthCheck",
    "TimerKey",
    "UpdateContainer",
    "UpdateRecord",
]

TimerKey = tuple[str, ...]


@dataclass(frozen=True)
class UpdateRecord:
    """UpdateRecord is one entry of a task's ``task.updates`` log: an update or an ack (uuid)."""

    kind: Literal["update", "ack"]
    payload: mesos_pb2.TaskStatus | bytes


@dataclass(frozen=True)
class SetTimer:
    """SetTimer asks for ``TimerFired(key)`` at time ``at`` (replacing any timer of that key)."""

    key: TimerKey
    at: float


@dataclass(frozen=True)
class CancelTimer:
    """CancelTimer cancels the timer of ``key`` if one is set."""

    key: TimerKey


@dataclass(frozen=True)
class ForwardUpdate:
    """ForwardUpdate sends a task's oldest unacknowledged update to the master."""

    framework_id: str
    executor_id: str | None
    status: mesos_pb2.TaskStatus
    latest_state: mesos_pb2.TaskState.ValueType


@dataclass(frozen=True)
class AppendUpdateRecord:
    """AppendUpdateRecord appends (and fsyncs) a record to a checkpointed task's update log."""

    framework_id: str
    executor_id: str | None
    container_id: str | None
    task_id: str
    kind: Literal["update", "ack"]
    payload: mesos_pb2.TaskStatus | bytes

    @property
    def record(self) -> UpdateRecord:
        """The log record to append."""
        return UpdateRecord(self.kind, self.payload)


@dataclass(frozen=True)
class SendToMaster:
    """SendToMaster sends a message on the master stream (dropped while disconnected)."""

    message: agent_internal_pb2.AgentMessage


@dataclass(frozen=True)
class SendToExecutor:
    """SendToExecutor sends an event to a subscribed executor."""

    framework_id: str
    executor_id: str
    event: executor_pb2.Event


@dataclass(frozen=True)
class CloseExecutorStream:
    """CloseExecutorStream ends an executor's event stream (it is gone or replaced)."""

    framework_id: str
    executor_id: str


@dataclass(frozen=True)
class LaunchContainer:
    """LaunchContainer starts a container running ``command`` in a fresh sandbox.

    With ``task_id`` set it is a command task whose executor the agent plays itself; otherwise
    it is an executor process that will subscribe to the executor API. ``resources`` set the
    container's limits. The runtime answers with ``ContainerLaunched`` or
    ``ContainerLaunchFailed`` (also when it cannot even prepare the container), and later
    ``ContainerExited``.

    ``parent_container_id`` is set for a task of the default executor: its container is nested
    in that run of the executor, and its sandbox is the run's ``tasks/<task_id>``.
    """

    framework_id: str
    executor_id: str
    container_id: str
    command: mesos_pb2.CommandInfo
    resources: Resources
    user: str | None
    task_id: str | None
    checkpoint: bool
    shutdown_grace_period: float
    parent_container_id: str | None = None


@dataclass(frozen=True)
class SignalContainer:
    """SignalContainer sends ``signal`` to every process of a container."""

    container_id: str
    signal: int


@dataclass(frozen=True)
class DestroyContainer:
    """DestroyContainer kills every process of a container and removes it."""

    container_id: str


@dataclass(frozen=True)
class UpdateContainer:
    """UpdateContainer changes a container's limits (its executor gained or lost tasks)."""

    container_id: str
    resources: Resources


@dataclass(frozen=True)
class StartHealthCheck:
    """StartHealthCheck starts checking the health of a task the agent runs itself.

    For a task of the default executor ``executor_id`` and ``parent_container_id`` name the
    run its (nested) container belongs to; a command task's executor id is its task id.
    """

    framework_id: str
    task_id: str
    container_id: str
    check: mesos_pb2.HealthCheck
    executor_id: str | None = None
    parent_container_id: str | None = None


@dataclass(frozen=True)
class StopHealthCheck:
    """StopHealthCheck stops a task's health checks (it is ending)."""

    framework_id: str
    task_id: str


@dataclass(frozen=True)
class CheckpointAgent:
    """CheckpointAgent records the registered agent (``info.id`` set) as the one to recover."""

    info: mesos_pb2.AgentInfo


@dataclass(frozen=True)
class CheckpointContainerState:
    """CheckpointContainerState writes how to find a launched container again after a restart.

    ``container_id`` is the executor's run; for a task of the default executor ``task_id``
    names the task whose nested container it is (recorded with the task).
    """

    framework_id: str
    executor_id: str
    container_id: str
    task_id: str | None
    state: dict[str, object]


@dataclass(frozen=True)
class LookForContainer:
    """LookForContainer: after a restart, find a checkpointed container (``state``: how).

    The runtime answers with ``ContainerRecovered`` if it still runs, else ``ContainerExited``;
    once every one is answered, with ``RecoveryDone``.
    """

    container_id: str
    state: dict[str, object] | None


@dataclass(frozen=True)
class StopAgent:
    """StopAgent: the master shut this agent down; it leaves for good (``message``: why)."""

    message: str


@dataclass(frozen=True)
class CheckpointFramework:
    """CheckpointFramework writes ``framework.info``."""

    framework_id: str
    info: mesos_pb2.FrameworkInfo


@dataclass(frozen=True)
class CheckpointExecutor:
    """CheckpointExecutor writes ``executor.info`` and the new run's directory and ``latest``."""

    framework_id: str
    executor_id: str
    container_id: str
    info: mesos_pb2.ExecutorInfo


@dataclass(frozen=True)
class CheckpointTask:
    """CheckpointTask writes a task's ``task.info`` under its executor's run.

    A task of the default executor also records its nested container's id and its group
    (``task.container``), which recovery needs to find the container and keep the group's rules.
    """

    framework_id: str
    executor_id: str
    container_id: str
    info: mesos_pb2.TaskInfo
    nested_container_id: str | None = None
    group: tuple[str, ...] = ()


@dataclass(frozen=True)
class RemoveExecutorCheckpoint:
    """RemoveExecutorCheckpoint deletes a finished executor's checkpoint: nothing to recover."""

    framework_id: str
    executor_id: str


@dataclass(frozen=True)
class RemoveFrameworkCheckpoint:
    """RemoveFrameworkCheckpoint deletes a framework's checkpoint: it has nothing left here."""

    framework_id: str


@dataclass(frozen=True)
class ScheduleSandboxGC:
    """ScheduleSandboxGC hands a finished run's sandbox to the garbage collector."""

    framework_id: str
    executor_id: str
    container_id: str


Effect = (
    SetTimer
    | CancelTimer
    | ForwardUpdate
    | AppendUpdateRecord
    | SendToMaster
    | SendToExecutor
    | CloseExecutorStream
    | LaunchContainer
    | SignalContainer
    | DestroyContainer
    | UpdateContainer
    | StartHealthCheck
    | StopHealthCheck
    | CheckpointAgent
    | CheckpointContainerState
    | LookForContainer
    | StopAgent
    | CheckpointFramework
    | CheckpointExecutor
    | CheckpointTask
    | RemoveExecutorCheckpoint
    | RemoveFrameworkCheckpoint
    | ScheduleSandboxGC
)
