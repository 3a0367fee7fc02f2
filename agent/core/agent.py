"""AgentState: the agent's whole sans-I/O state machine (events in, effects out).

It joins the master-facing handlers (:mod:`agent.core.master_events`), the container and
executor API handlers (:mod:`agent.core.executor_events`), timers, recovery from a checkpoint,
and the (re)registration messages that describe what the agent runs.
"""

from __future__ import annotations

import logging

from agent.core.effects import DestroyContainer, Effect, TimerKey
from agent.core.executor_events import ExecutorEvents
from agent.core.model import (
    ExecutorKind,
    ExecutorPhase,
    ExecutorRecord,
    FrameworkRecord,
    NestedContainer,
    TaskRecord,
    Termination,
    executor_kind,
)
from agent.core.recovery import RecoveredAgent, RecoveredExecutor, RecoveredTask
from agent.core.status_updates import StreamOwner
from protos.resources import Resources
from protos.v1 import agent_internal_pb2, mesos_pb2

__all__ = ["AGENT_CAPABILITIES", "AgentState"]

log = logging.getLogger(__name__)

_Status = mesos_pb2.TaskStatus
_Capability = mesos_pb2.AgentInfo.Capability

AGENT_CAPABILITIES = (
    _Capability.MULTI_ROLE,
    _Capability.HIERARCHICAL_ROLE,
    _Capability.RESERVATION_REFINEMENT,
)


class AgentState(ExecutorEvents):
    """AgentState is the agent's state machine; see the package docstring for the flow."""

    # -- timers --

    def on_timer(self, key: TimerKey, now: float) -> list[Effect]:
        """A timer set by an earlier ``SetTimer`` effect fired."""
        kind, *rest = key
        if kind == "status-update":
            return self.updates.retry(rest[0], rest[1], now)
        if kind == "max-completion":
            return self._completion_time_reached(rest[0], rest[1], now)
        if kind == "kill":  # Keyed by task: a default executor's task, or a command task.
            nested = self._nested_kill_due(rest[0], rest[1])
            if nested is not None:
                return nested
        executor = self.executor(rest[0], rest[1])
        if executor is None:
            return []
        if kind == "executor-registration":
            if executor.phase is ExecutorPhase.REGISTERING and not executor.recovered:
                timeout = self.settings.executor_registration_timeout
                return self._end_executor(
                    executor,
                    Termination(
                        mesos_pb2.TASK_FAILED,
                        _Status.REASON_EXECUTOR_REGISTRATION_TIMEOUT,
                        f"Executor did not register within {timeout:g} seconds",
                    ),
                    now,
                )
        elif kind == "executor-reregistration":
            if executor.phase is ExecutorPhase.REGISTERING and executor.recovered:
                timeout = self.settings.executor_reregistration_timeout
                return self._end_executor(
                    executor,
                    Termination(
                        mesos_pb2.TASK_FAILED,
                        _Status.REASON_EXECUTOR_REREGISTRATION_TIMEOUT,
                        f"Executor did not re-register within {timeout:g} seconds after the"
                        " agent restarted",
                    ),
                    now,
                )
        elif kind in ("executor-shutdown", "kill") and executor.phase is ExecutorPhase.TERMINATING:
            return [DestroyContainer(executor.container_id)]
        return []

    def _end_executor(self, executor: ExecutorRecord, why: Termination, now: float) -> list[Effect]:
        if executor.kind is ExecutorKind.DEFAULT:
            return self._end_default(executor, why, now)
        executor.pending_termination = why
        executor.phase = ExecutorPhase.TERMINATING
        return [DestroyContainer(executor.container_id)]

    def _completion_time_reached(self, framework_id: str, task_id: str, now: float) -> list[Effect]:
        framework = self.frameworks.get(framework_id)
        task = framework.find_task(task_id) if framework is not None else None
        if task is None or task.terminal or task.kill_requested:
            return []
        task.completion_time_reached = True
        return self.kill_task(framework_id, task_id, None, now)

    # -- stopping --

    def stop_unrecoverable(self, now: float) -> list[Effect]:
        """The agent is stopping to restart: destroy the executors no restart could recover.

        Those of frameworks that do not checkpoint; their tasks become TASK_LOST (TASK_GONE
        for partition-aware frameworks) with REASON_AGENT_RESTARTED when their containers end.
        """
        effects: list[Effect] = []
        for executor in self.executors():
            if executor.checkpoint or not executor.live:
                continue
            framework = self.frameworks[executor.framework_id]
            state = (
                mesos_pb2.TASK_GONE
                if framework.has_capability(mesos_pb2.FrameworkInfo.Capability.PARTITION_AWARE)
                else mesos_pb2.TASK_LOST
            )
            effects += self._end_executor(
                executor,
                Termination(
                    state,
                    _Status.REASON_AGENT_RESTARTED,
                    "The agent stopped; tasks of frameworks that do not checkpoint cannot"
                    " survive its restart",
                ),
                now,
            )
        return effects

    # -- recovery --

    def recover(self, agent: RecoveredAgent) -> list[tuple[str, dict[str, object] | None]]:
        """Rebuild the records of a checkpointed agent; return the containers to look for.

        Each returned ``(container_id, container_state)`` must be answered by the runtime with
        ``container_recovered`` (still running) or ``container_exited`` (gone).
        """
        if self.connected or self.frameworks:
            raise RuntimeError("recover() must come first, before any master or task event")
        self.agent_info.id.CopyFrom(agent.agent_info.id)
        wanted: list[tuple[str, dict[str, object] | None]] = []
        for recovered_framework in agent.frameworks:
            framework_id = recovered_framework.framework_id
            framework = FrameworkRecord(framework_id, recovered_framework.info)
            self.frameworks[framework_id] = framework
            for recovered in recovered_framework.executors:
                wanted += self._recover_executor(framework, recovered)
        self.recovering = bool(self.frameworks)
        return wanted

    def _recover_executor(
        self, framework: FrameworkRecord, recovered: RecoveredExecutor
    ) -> list[tuple[str, dict[str, object] | None]]:
        """Rebuild a checkpointed executor and its tasks; return the containers to look for."""
        framework_id = framework.framework_id
        kind = executor_kind(recovered.info)
        default = kind is ExecutorKind.DEFAULT
        executor = ExecutorRecord(
            framework_id,
            recovered.executor_id,
            kind,
            recovered.info,
            recovered.container_id,
            Resources.from_protos(recovered.info.resources),
            checkpoint=True,
            phase=ExecutorPhase.RUNNING if default else ExecutorPhase.LAUNCHING,
            recovered=not default,
        )
        wanted: list[tuple[str, dict[str, object] | None]] = []
        for task in recovered.tasks:
            task_id = task.info.task_id.value
            owner = StreamOwner(framework_id, recovered.executor_id, recovered.container_id, True)
            stream = self.updates.recover(owner, task_id, task.records)
            if stream is None:
                continue  # Its terminal update was acknowledged: nothing left to do.
            record = TaskRecord(
                framework_id,
                task_id,
                recovered.executor_id,
                task.info,
                Resources.from_protos(task.info.resources),
                state=stream.latest_state or mesos_pb2.TASK_STAGING,
                launched=True,
            )
            executor.tasks[task_id] = record
            if default:
                wanted += self._recover_nested(executor, record, task)
        framework.executors[executor.executor_id] = executor
        if default:
            # A task whose group record was lost is still named by its group's other tasks.
            for record in executor.tasks.values():
                groups = (t.group for t in executor.tasks.values() if record.task_id in t.group)
                record.group = record.group or next(groups, ())
            return wanted  # A default executor has no container of its own.
        self.containers[executor.container_id] = executor.key
        return [(executor.container_id, recovered.container_state)]

    def _recover_nested(
        self, executor: ExecutorRecord, record: TaskRecord, task: RecoveredTask
    ) -> list[tuple[str, dict[str, object] | None]]:
        """Rebuild a default executor's task's container record; return it to look for."""
        record.group = task.group
        # Without a recorded id (a damaged checkpoint) the task's container cannot be found:
        # a fresh id is looked for in vain, and the task is reported lost with its group.
        container_id = task.container_id or self.new_container_id()
        launched = record.state not in (mesos_pb2.TASK_STAGING, mesos_pb2.TASK_STARTING)
        record.container = NestedContainer(container_id, launched=launched, gone=record.terminal)
        if record.terminal:
            return []
        self.containers[container_id] = executor.key
        return [(container_id, task.container_state)]

    # -- (re)registration --

    def register_message(self, boot_id: str, version: str) -> agent_internal_pb2.AgentMessage:
        """RegisterAgent: the first message of an agent without an id."""
        message = agent_internal_pb2.AgentMessage()
        register = message.register_agent
        register.agent_info.CopyFrom(self.agent_info)
        register.agent_info.ClearField("id")
        register.version = version
        register.boot_id = boot_id
        register.agent_capabilities.extend(
            mesos_pb2.AgentInfo.Capability(type=c) for c in AGENT_CAPABILITIES
        )
        return message

    def reregister_message(self, boot_id: str, version: str) -> agent_internal_pb2.AgentMessage:
        """ReregisterAgent: the agent's id and everything it still runs or must report."""
        message = agent_internal_pb2.AgentMessage()
        reregister = message.reregister_agent
        reregister.agent_info.CopyFrom(self.agent_info)
        reregister.boot_id = boot_id
        reregister.version = version
        reregister.agent_capabilities.extend(
            mesos_pb2.AgentInfo.Capability(type=c) for c in AGENT_CAPABILITIES
        )
        for framework in self.frameworks.values():
            if framework.shutting_down:
                continue
            reregister.frameworks.append(framework.info)
            for executor in framework.executors.values():
                if executor.kind is not ExecutorKind.COMMAND and executor.live:
                    reregister.executor_infos.append(executor.info)
                for task in executor.tasks.values():
                    reregister.tasks.append(self.task_proto(framework, executor, task))
        return message

    def task_proto(
        self, framework: FrameworkRecord, executor: ExecutorRecord, task: TaskRecord
    ) -> mesos_pb2.Task:
        """The ``mesos.v1.Task`` describing a task the agent holds."""
        info = task.info
        proto = mesos_pb2.Task(name=info.name, state=task.state)
        proto.task_id.value = task.task_id
        proto.framework_id.value = task.framework_id
        if executor.kind is not ExecutorKind.COMMAND:
            proto.executor_id.value = executor.executor_id
        if self.agent_id:
            proto.agent_id.value = self.agent_id
        proto.resources.extend(info.resources)
        stream = self.updates.get(task.framework_id, task.task_id)
        if stream is not None:
            if stream.last_acknowledged is not None:
                proto.statuses.append(stream.last_acknowledged)
            proto.statuses.extend(stream.pending)
            if stream.head is not None:
                proto.status_update_state = stream.head.state
                proto.status_update_uuid = stream.head.uuid
        for name in ("labels", "discovery", "container", "health_check", "kill_policy"):
            if info.HasField(name):
                getattr(proto, name).CopyFrom(getattr(info, name))
        user = info.command.user if info.command.HasField("user") else framework.info.user
        if user:
            proto.user = user
        for name, value in info.limits.items():
            proto.limits[name].CopyFrom(value)
        return proto

    def recovery_done(self, now: float) -> list[Effect]:
        """Every recovered container has been looked for: finish what the restart interrupted.

        That is: kill what remains of task groups one of whose tasks failed or was killed, and
        end default executors whose tasks have all ended.
        """
        if not self.recovering:
            return []
        self.recovering = False
        log.info(
            "Recovered %d frameworks, %d executors",
            len(self.frameworks),
            sum(1 for _ in self.executors()),
        )
        return self._recover_groups(now)
