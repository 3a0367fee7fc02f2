"""AgentState: everything the agent's core holds, as one dataclass, and the queries over it.

The frameworks on this agent, their executors and tasks, the status update manager, the index
of containers, and whether the master link is up. The function modules of this package
(:mod:`~agent.core.lifecycle`, :mod:`~agent.core.launches`, :mod:`~agent.core.master_events`,
:mod:`~agent.core.executor_events`, :mod:`~agent.core.default_executor`,
:mod:`~agent.core.timers`, :mod:`~agent.core.restart`) change it; only
:func:`agent.core.handle` calls them. The methods here only read: lookups, the resources in
use, and :meth:`AgentState.validate`, the invariants tests check after every step.
"""

from __future__ import annotations

import uuid as _uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from agent.core.backoff import RetrySchedule
from agent.core.model import (
    ExecutorKind,
    ExecutorPhase,
    ExecutorRecord,
    FrameworkRecord,
    TaskRecord,
)
from agent.core.status_updates import StatusUpdateManager
from protos.resources import Resources
from protos.v1 import agent_internal_pb2, mesos_pb2

__all__ = ["MAX_COMPLETED_FRAMEWORKS", "AgentState", "CoreSettings", "nested_task"]

MAX_COMPLETED_FRAMEWORKS = 50
"""How many forgotten frameworks' users the agent remembers (Mesos's agent keeps 50)."""


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


@dataclass(eq=False, repr=False)
class AgentState:
    """AgentState: what the agent runs (see the module docstring).

    ``agent_info`` is this agent's description (hostname, port, resources, attributes); its
    ``id`` is set once the master has registered the agent. ``new_uuid`` and
    ``new_container_id`` are the only sources of fresh values (seams for deterministic tests
    and simulations; both must stay unique across restarts of the agent).
    """

    total: Resources
    agent_info: mesos_pb2.AgentInfo
    settings: CoreSettings = field(default_factory=CoreSettings)
    new_uuid: Callable[[], bytes] = _new_uuid
    new_container_id: Callable[[], str] = _new_container_id
    updates: StatusUpdateManager = field(init=False)
    frameworks: dict[str, FrameworkRecord] = field(init=False, default_factory=dict)
    containers: dict[str, tuple[str, str]] = field(init=False, default_factory=dict)
    """Container id -> (framework id, executor id) of every container that may run."""
    connected: bool = field(init=False, default=False)
    recovering: bool = field(init=False, default=False)
    """Between RecoverFromCheckpoint and RecoveryDone."""
    scalars_in_use: dict[str, int] = field(init=False, default_factory=dict)
    """Non-revocable scalars held (``allocated()``'s), in int thousandths by name: kept up to
    date by :func:`~agent.core.lifecycle.hold` and ``release`` so that a launch is checked in
    time independent of how many tasks run (``validate`` recomputes it)."""
    held_for_master: list[agent_internal_pb2.AgentMessage] = field(init=False, default_factory=list)
    """Messages the master must get that came up while no session was open (an executor's
    exit): sent as soon as the next one is, after the (re)registration reply."""
    faults: int = field(init=False, default=0)
    """How many events a handler failed on (each logged and contained by ``handle``)."""
    last_fault: str | None = field(init=False, default=None)
    tasks_ended: dict[int, int] = field(init=False, default_factory=dict)
    """Terminal TaskState -> how many tasks reached it since the agent started (its metrics)."""
    completed_framework_users: dict[str, str] = field(init=False, default_factory=dict)
    """The user of each of the last ``MAX_COMPLETED_FRAMEWORKS`` frameworks the agent forgot
    (oldest first), as Mesos's agent keeps its completed frameworks: their sandboxes stay until
    the GC, and the file API authorizes reading them by that user (``access_sandboxes``)."""

    def __post_init__(self) -> None:
        self.updates = StatusUpdateManager(self.settings.status_update_retry)
        self._total_scalars = dict(self.total.non_revocable().scalar_thousandths())

    # -- lookups --

    def framework_user(self, framework_id: str) -> str | None:
        """The user of a framework the agent runs or has recently run (None: unknown)."""
        framework = self.frameworks.get(framework_id)
        if framework is not None:
            return framework.info.user
        return self.completed_framework_users.get(framework_id)

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
        """Whether ``needed`` fits in what is not allocated (reservations ignored).

        Scalars are checked against ``scalars_in_use``; only a launch that also needs ranges
        or sets (ports) sums up everything held.
        """
        wanted = needed.non_revocable()
        scalars = wanted.scalar_thousandths()
        if len(scalars) < len(wanted.names()):
            want = (self.allocated() + needed).flatten().non_revocable()
            return self.total.flatten().contains(want)
        in_use, total = self.scalars_in_use, self._total_scalars
        return all(in_use.get(name, 0) + n <= total.get(name, 0) for name, n in scalars.items())

    # -- invariants --

    def validate(self) -> None:
        """Check the whole agent state; raise AssertionError naming the first broken invariant."""
        self.updates.validate()
        seen_containers: dict[str, tuple[str, str]] = {}
        for framework_id, framework in self.frameworks.items():
            assert framework.framework_id == framework_id, f"framework filed under {framework_id}"
            framework.validate()
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
        held = {n: v for n, v in self.scalars_in_use.items() if v}
        assert held == dict(self.allocated().non_revocable().scalar_thousandths()), (
            f"scalars in use {held} are not what is allocated ({self.allocated()})"
        )
        if self.connected:
            assert self.agent_id is not None, "connected without an agent id"
        assert self.updates.paused == (not self.connected), "update manager pause out of sync"
