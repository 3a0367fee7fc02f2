"""Guards: what ``handle`` does when a handler fails, so that no outcome is left hanging.

A fault of the core (an exception a handler did not mean to raise) may leave the event's work
half done. Where someone waits for that work's outcome, a guard taken *before* the handler ran
settles it afterwards, with effects that make it explicit:

* a launch (RunTask, RunTaskGroup) is undone: the records it added (tasks, a new executor, a
  new framework, their update streams) are forgotten, and each of its tasks ends TASK_FAILED
  with REASON_CONTAINER_LAUNCH_FAILED naming the fault: none stays STAGING, nothing stays
  counted (a new executor it named is reported ended to the master);
* the end of a container (ContainerExited, ContainerLaunchFailed) still ends what ran in it:
  its live tasks end TASK_FAILED with REASON_EXECUTOR_TERMINATED naming the fault, the
  container is recorded as gone, and the executor is retired once those updates are
  acknowledged (for a task group's container, only its own task ends: the group rules are
  what just failed).

Other events have no outcome anyone waits for (a lost acknowledgement is retried, a lost
executor call is answered by the executor's own retry), and get no guard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from agent.core.default_executor import end_default_if_done
from agent.core.effects import Effect
from agent.core.events import ContainerExited, ContainerLaunchFailed, Event, MasterMessageReceived
from agent.core.launches import unlaunched_executor
from agent.core.lifecycle import release, retire_executor_if_done, send_update
from agent.core.model import ContainerExit, ExecutorKind, ExecutorPhase
from agent.core.state import AgentState, nested_task
from protos.v1 import mesos_pb2

__all__ = ["ContainerGuard", "Guard", "LaunchGuard", "guard_for"]

_Status = mesos_pb2.TaskStatus


class Guard(Protocol):
    """What was there before an event, to settle its outcome if its handler fails."""

    def settle(self, state: AgentState, cause: str, now: float) -> list[Effect]:
        """Make the event's outcome explicit after a fault (``cause``: what was raised)."""
        ...


def guard_for(state: AgentState, event: Event) -> Guard | None:
    """The guard of ``event``, None for events without an outcome anyone waits for."""
    if isinstance(event, MasterMessageReceived):
        return LaunchGuard.of(state, event)
    if isinstance(event, ContainerExited | ContainerLaunchFailed):
        return ContainerGuard.of(state, event.container_id)
    return None


@dataclass(frozen=True)
class LaunchGuard:
    """What a launch found before it ran, to undo it if its handler raises."""

    framework_id: str
    task_ids: tuple[str, ...]
    """The launch's task ids that were not in use before it (only those are undone)."""
    executor_id: str
    executor_info: mesos_pb2.ExecutorInfo | None
    had_framework: bool
    had_executor: bool

    @staticmethod
    def of(state: AgentState, event: Event) -> LaunchGuard | None:
        """The guard of a RunTask/RunTaskGroup event, None for any other event."""
        if not isinstance(event, MasterMessageReceived):
            return None
        message = event.message
        kind = message.WhichOneof("payload")
        info: mesos_pb2.ExecutorInfo | None
        if kind == "run_task":
            run = message.run_task
            framework_id = run.framework_id.value or run.framework_info.id.value
            tasks = [run.task]
            info = (
                run.executor
                if run.HasField("executor")
                else run.task.executor
                if run.task.HasField("executor")
                else None
            )
            executor_id = info.executor_id.value if info is not None else run.task.task_id.value
        elif kind == "run_task_group":
            group = message.run_task_group
            framework_id = group.framework_info.id.value or group.executor.framework_id.value
            tasks = list(group.task_group.tasks)
            info = group.executor
            executor_id = info.executor_id.value
        else:
            return None
        framework = state.frameworks.get(framework_id)
        in_use = set()
        for task in tasks:
            task_id = task.task_id.value
            if (framework is not None and framework.find_task(task_id) is not None) or (
                state.updates.get(framework_id, task_id) is not None
            ):
                in_use.add(task_id)
        ids = tuple(dict.fromkeys(t.task_id.value for t in tasks if t.task_id.value))
        return LaunchGuard(
            framework_id,
            tuple(t for t in ids if t not in in_use),
            executor_id,
            info,
            framework is not None,
            framework is not None and executor_id in framework.executors,
        )

    def settle(self, state: AgentState, cause: str, now: float) -> list[Effect]:
        """Forget whatever the failed launch recorded; end its tasks TASK_FAILED."""
        if not self.framework_id:
            return []
        effects: list[Effect] = []
        framework = state.frameworks.get(self.framework_id)
        if framework is not None:
            for task_id in self.task_ids:
                holder = framework.executors.get(framework.task_index.get(task_id, ""))
                task = framework.remove_task(holder, task_id) if holder is not None else None
                if task is None:
                    continue
                if not task.terminal:
                    release(state, task.resources)
                if task.container is not None:
                    state.containers.pop(task.container.container_id, None)
            for each in list(framework.executors.values()):
                each.queue = [b for b in each.queue if not any(t in self.task_ids for t in b)]
            new = framework.executors.get(self.executor_id)
            if new is not None and not self.had_executor and not new.tasks:
                del framework.executors[new.executor_id]
                if new.phase is not ExecutorPhase.TERMINATED:
                    release(state, new.resources)
                if new.kind is not ExecutorKind.DEFAULT:
                    state.containers.pop(new.container_id, None)
            if not self.had_framework and not framework.executors:
                del state.frameworks[self.framework_id]
        for task_id in self.task_ids:
            effects += state.updates.remove(self.framework_id, task_id)
        message = f"The agent failed to launch this task: {cause}"[:2000]
        for task_id in self.task_ids:
            effects += send_update(
                state,
                self.framework_id,
                task_id,
                None,
                mesos_pb2.TASK_FAILED,
                now=now,
                reason=mesos_pb2.TaskStatus.REASON_CONTAINER_LAUNCH_FAILED,
                message=message,
            )
        if self.executor_info is not None:
            effects += unlaunched_executor(state, self.framework_id, self.executor_info)
        return effects


@dataclass(frozen=True)
class ContainerGuard:
    """The live tasks of a container before its end was handled, to end them if that fails."""

    container_id: str
    key: tuple[str, str]
    task_ids: tuple[str, ...]

    @staticmethod
    def of(state: AgentState, container_id: str) -> ContainerGuard | None:
        """The guard of the end of ``container_id``; None if no executor owns it."""
        executor = state.executor_of_container(container_id)
        if executor is None:
            return None
        if executor.kind is ExecutorKind.DEFAULT:
            task = nested_task(executor, container_id)
            live = [task] if task is not None and not task.terminal else []
        else:
            live = [t for t in executor.tasks.values() if not t.terminal]
        return ContainerGuard(container_id, executor.key, tuple(t.task_id for t in live))

    def settle(self, state: AgentState, cause: str, now: float) -> list[Effect]:
        """Record the container as gone; end the tasks that ran in it TASK_FAILED."""
        executor = state.executor(*self.key)
        if executor is None:
            return []
        message = f"The agent failed to handle the end of the container: {cause}"[:2000]
        gone = ContainerExit(message=message)
        if executor.kind is ExecutorKind.DEFAULT:
            task = nested_task(executor, self.container_id)
            if task is not None and task.container is not None:
                task.container.gone = True
                task.container.exit = task.container.exit or gone
            state.containers.pop(self.container_id, None)
        elif executor.phase is not ExecutorPhase.TERMINATED:
            executor.phase = ExecutorPhase.TERMINATED
            release(state, executor.resources)
            executor.exit = executor.exit or gone
            executor.connected = False
            executor.queue.clear()
        framework = state.frameworks[executor.framework_id]
        effects: list[Effect] = []
        for task_id in self.task_ids:
            task = executor.tasks.get(task_id)
            if task is None or task.terminal:
                continue
            if framework.shutting_down:  # Nobody would acknowledge: forget it.
                framework.remove_task(executor, task_id)
                release(state, task.resources)
                continue
            effects += send_update(
                state,
                executor.framework_id,
                task_id,
                executor.executor_id,
                mesos_pb2.TASK_FAILED,
                now=now,
                reason=_Status.REASON_EXECUTOR_TERMINATED,
                message=message,
            )
        if executor.kind is ExecutorKind.DEFAULT:
            # (The rest of its group keeps running: the group rules are what just failed.)
            return effects + end_default_if_done(state, executor, now)
        return effects + retire_executor_if_done(state, executor)
