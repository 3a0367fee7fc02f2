"""The agent's state and the bookkeeping every event handler shares.

:class:`AgentStateBase` holds the frameworks, executors and tasks, the status update manager and
the agent's resources, with the helpers that keep them consistent (sending an update, failing an
executor's tasks, retiring finished executors and frameworks) and :meth:`validate`. The event
handlers are added by :mod:`agent.core.launches`, :mod:`agent.core.master_events` and
:mod:`agent.core.executor_events`;
:class:`agent.core.agent.AgentState` puts them together.
"""

from __future__ import annotations

import uuid as _uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from agent.core.backoff import RetrySchedule
from agent.core.effects import (
    CancelTimer,
    CloseExecutorStream,
    Effect,
    RemoveExecutorCheckpoint,
    RemoveFrameworkCheckpoint,
    ScheduleSandboxGC,
    StopHealthCheck,
    UpdateContainer,
)
from agent.core.messages import make_status
from agent.core.model import (
    ExecutorKind,
    ExecutorPhase,
    ExecutorRecord,
    FrameworkRecord,
    TaskRecord,
)
from agent.core.status_updates import StatusUpdateManager, StreamOwner, is_terminal
from protos.resources import Resources
from protos.v1 import mesos_pb2

__all__ = ["AgentStateBase", "CoreSettings", "nested_task"]

_SOURCE_AGENT = mesos_pb2.TaskStatus.SOURCE_AGENT


@dataclass(frozen=True)
class CoreSettings:
    """Timeouts of the agent's core, in seconds (defaults are Mesos's)."""

    executor_registration_timeout: float = 60.0
    executor_reregistration_timeout: float = 2.0
    executor_shutdown_grace_period: float = 5.0
    status_update_retry: RetrySchedule = field(default_factory=RetrySchedule)


def nested_task(executor: ExecutorRecord, container_id: str) -> TaskRecord | None:
    """The task of a default executor that runs in the nested container ``container_id``."""
    for task in executor.tasks.values():
        if task.container is not None and task.container.container_id == container_id:
            return task
    return None


def _new_uuid() -> bytes:
    return _uuid.uuid4().bytes


def _new_container_id() -> str:
    return str(_uuid.uuid4())


class AgentStateBase:
    """AgentStateBase: what the agent runs, and the shared rules for changing it.

    Only the runtime's event loop calls into it; every method returns effects for the runtime.
    ``agent_info`` is this agent's description (hostname, port, resources, attributes); its
    ``id`` is set once the master has registered the agent.
    """

    def __init__(
        self,
        total: Resources,
        agent_info: mesos_pb2.AgentInfo,
        settings: CoreSettings | None = None,
        new_uuid: Callable[[], bytes] = _new_uuid,
        new_container_id: Callable[[], str] = _new_container_id,
    ) -> None:
        self.total = total
        self.agent_info = agent_info
        self.settings = settings or CoreSettings()
        self.new_uuid = new_uuid
        self.new_container_id = new_container_id
        self.updates = StatusUpdateManager(self.settings.status_update_retry)
        self.frameworks: dict[str, FrameworkRecord] = {}
        self.containers: dict[str, tuple[str, str]] = {}  # container id -> (framework, executor)
        self.connected = False
        self.recovering = False  # Between recover() and recovery_done().

    # -- lookups --

    @property
    def agent_id(self) -> str | None:
        """The id the master gave this agent, once registered."""
        return self.agent_info.id.value if self.agent_info.HasField("id") else None

    def executor(self, framework_id: str, executor_id: str) -> ExecutorRecord | None:
        """The executor with this id in this framework, if present."""
        framework = self.frameworks.get(framework_id)
        return framework.executors.get(executor_id) if framework is not None else None

    def executor_of_container(self, container_id: str) -> ExecutorRecord | None:
        """The executor running in ``container_id``, if any."""
        owner = self.containers.get(container_id)
        return self.executor(*owner) if owner is not None else None

    def container_owner(self, container_id: str) -> tuple[ExecutorRecord, TaskRecord | None] | None:
        """The executor of a container and, for a nested container, the task running in it."""
        executor = self.executor_of_container(container_id)
        if executor is None:
            return None
        return executor, nested_task(executor, container_id)

    def executors(self) -> Iterator[ExecutorRecord]:
        """Every executor on the agent."""
        for framework in list(self.frameworks.values()):
            yield from list(framework.executors.values())

    def shutdown_grace(self, executor: ExecutorRecord) -> float:
        """Seconds from SHUTDOWN to kill: the ExecutorInfo's, else the agent's setting."""
        if executor.info.HasField("shutdown_grace_period"):
            return max(0.0, executor.info.shutdown_grace_period.nanoseconds / 1e9)
        return self.settings.executor_shutdown_grace_period

    def allocated(self) -> Resources:
        """Resources held by live containers and non-terminal tasks."""
        total = Resources.EMPTY
        for executor in self.executors():
            if executor.phase is not ExecutorPhase.TERMINATED:
                total = total + executor.resources
            total = total + executor.task_resources()
        return total

    def fits(self, needed: Resources) -> bool:
        """Whether ``needed`` fits in what is not allocated (reservations ignored)."""
        want = (self.allocated() + needed).flatten().non_revocable()
        return self.total.flatten().contains(want)

    # -- status updates --

    def _send_update(
        self,
        framework_id: str,
        task_id: str,
        executor_id: str | None,
        state: mesos_pb2.TaskState.ValueType,
        now: float,
        *,
        source: mesos_pb2.TaskStatus.Source.ValueType = _SOURCE_AGENT,
        reason: mesos_pb2.TaskStatus.Reason.ValueType | None = None,
        message: str | None = None,
        healthy: bool | None = None,
        container_id: str | None = None,
    ) -> list[Effect]:
        """Create a reliable update for a task and hand it to the status update manager."""
        framework = self.frameworks.get(framework_id)
        executor = self.executor(framework_id, executor_id) if executor_id else None
        task = executor.tasks.get(task_id) if executor is not None else None
        status = make_status(
            task_id,
            state,
            source=source,
            now=now,
            uuid=self.new_uuid(),
            agent_id=self.agent_id,
            executor_id=executor_id,
            reason=reason,
            message=message,
            healthy=healthy,
            container_id=container_id,
        )
        owner = StreamOwner(framework_id, executor_id)
        if framework is not None and executor is not None:
            owner = StreamOwner(
                framework_id, executor_id, executor.container_id, executor.checkpoint
            )
        _, effects = self.updates.update(status, owner, now)
        if task is not None and executor is not None:
            effects += self._task_state_changed(executor, task, state)
        return effects

    def _task_state_changed(
        self, executor: ExecutorRecord, task: TaskRecord, state: mesos_pb2.TaskState.ValueType
    ) -> list[Effect]:
        """Record a task's new state; on a terminal one stop what watched it."""
        was_terminal = task.terminal
        task.state = state
        task.launched = True
        if not is_terminal(state) or was_terminal:
            return []
        effects: list[Effect] = [
            CancelTimer(("kill", task.framework_id, task.task_id)),
            CancelTimer(("max-completion", task.framework_id, task.task_id)),
        ]
        if executor.kind is not ExecutorKind.CUSTOM:
            effects.append(StopHealthCheck(task.framework_id, task.task_id))
        elif executor.phase in (ExecutorPhase.REGISTERING, ExecutorPhase.RUNNING):
            # The task's share of the container is released as soon as it is terminal.
            effects.append(UpdateContainer(executor.container_id, executor.container_resources()))
        return effects

    def _fail_live_tasks(
        self,
        executor: ExecutorRecord,
        state: mesos_pb2.TaskState.ValueType,
        reason: mesos_pb2.TaskStatus.Reason.ValueType,
        message: str,
        now: float,
    ) -> list[Effect]:
        """Send ``state`` for every task of ``executor`` that is not terminal yet."""
        executor.queue.clear()
        effects: list[Effect] = []
        for task in list(executor.tasks.values()):
            if not task.terminal:
                effects += self._send_update(
                    executor.framework_id,
                    task.task_id,
                    executor.executor_id,
                    state,
                    now,
                    reason=reason,
                    message=message,
                )
        return effects

    def _stream_closed(
        self, framework_id: str, task_id: str, executor_id: str | None
    ) -> list[Effect]:
        """A task's terminal update was acknowledged: forget the task, maybe its executor."""
        executor = self.executor(framework_id, executor_id) if executor_id else None
        if executor is None:
            return []
        executor.tasks.pop(task_id, None)
        return self._maybe_retire_executor(executor)

    def _maybe_retire_executor(self, executor: ExecutorRecord) -> list[Effect]:
        """Remove an executor whose container is gone and whose tasks are all done."""
        if executor.phase is not ExecutorPhase.TERMINATED or executor.tasks:
            return []
        framework = self.frameworks[executor.framework_id]
        del framework.executors[executor.executor_id]
        self.containers.pop(executor.container_id, None)
        effects: list[Effect] = [
            CancelTimer(("executor-registration", *executor.key)),
            CancelTimer(("executor-reregistration", *executor.key)),
            CancelTimer(("executor-shutdown", *executor.key)),
            ScheduleSandboxGC(executor.framework_id, executor.executor_id, executor.container_id),
        ]
        if executor.kind is ExecutorKind.CUSTOM:
            effects.append(CloseExecutorStream(*executor.key))
        if executor.checkpoint:
            effects.append(RemoveExecutorCheckpoint(*executor.key))
        return effects + self._maybe_retire_framework(framework)

    def _maybe_retire_framework(self, framework: FrameworkRecord) -> list[Effect]:
        """Remove a framework with no executors left (and, if shut down, its streams)."""
        if framework.executors:
            return []
        del self.frameworks[framework.framework_id]
        effects: list[Effect] = []
        if framework.shutting_down:
            for stream in self.updates:
                if stream.framework_id == framework.framework_id:
                    effects += self.updates.remove(stream.framework_id, stream.task_id)
        if framework.checkpoint:
            effects.append(RemoveFrameworkCheckpoint(framework.framework_id))
        return effects

    # -- invariants --

    def validate(self) -> None:
        """Check the whole agent state; raise AssertionError naming the first broken invariant."""
        self.updates.validate()
        seen_containers: dict[str, tuple[str, str]] = {}
        for framework_id, framework in self.frameworks.items():
            assert framework.framework_id == framework_id, f"framework filed under {framework_id}"
            for executor_id, executor in framework.executors.items():
                assert executor.executor_id == executor_id, f"executor filed under {executor_id}"
                assert executor.framework_id == framework_id, f"{executor_id}: wrong framework"
                executor.validate()
                containers = [executor.container_id]
                if executor.kind is ExecutorKind.DEFAULT:  # Only its tasks' containers run.
                    containers = [
                        t.container.container_id
                        for t in executor.tasks.values()
                        if t.container is not None and t.container.live
                    ]
                for container_id in containers:
                    assert container_id not in seen_containers, "container shared"
                    seen_containers[container_id] = executor.key
                if executor.checkpoint:
                    assert framework.checkpoint, f"{executor_id}: checkpoints, framework not"
                for task in executor.tasks.values():
                    stream = self.updates.get(framework_id, task.task_id)
                    if task.terminal:
                        assert stream is not None, f"task {task.task_id}: terminal, no stream"
                    if stream is not None and stream.latest_state is not None:
                        assert stream.latest_state == task.state, (
                            f"task {task.task_id}: state {task.state} but stream says"
                            f" {stream.latest_state}"
                        )
        assert seen_containers == self.containers, "container index out of date"
        if self.connected:
            assert self.agent_id is not None, "connected without an agent id"
        assert self.updates.paused == (not self.connected), "update manager pause out of sync"
