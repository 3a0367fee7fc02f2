"""MemoryCheckpointStore: the in-memory twin of :class:`~agent.checkpoint.store.CheckpointStore`.

It keeps what the file store would write under ``<work_dir>/meta`` as plain records and reads
it back the same way (the latest agent; each executor's latest run; a task only with its
``task.info``; sorted by id as directory listings are), so a simulator can crash an agent core
and rebuild it from its checkpoint without a file system. Stored messages are copies: a core
that goes on mutating its records cannot change what was "written". Ids are checked as the
file store's paths check them, and a name longer than a file system allows (255 bytes) fails
with ``ENAMETOOLONG`` as a real write would.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from google.protobuf.message import Message

from agent.checkpoint import paths
from agent.checkpoint.store import Checkpoint
from agent.core.effects import UpdateRecord
from agent.core.recovery import (
    RecoveredAgent,
    RecoveredExecutor,
    RecoveredFramework,
    RecoveredTask,
)
from protos.v1 import mesos_pb2

__all__ = ["MemoryCheckpointStore"]

_M = TypeVar("_M", bound=Message)
_NAME_MAX = 255  # Bytes in one path component on Linux file systems.


def _copy(message: _M) -> _M:
    copy = type(message)()
    copy.CopyFrom(message)
    return copy


def _name(kind: str, value: str) -> str:
    paths.check_id(kind, value)
    if len(value.encode()) > _NAME_MAX:
        raise OSError(errno.ENAMETOOLONG, f"{kind} is {len(value.encode())} bytes", value)
    return value


@dataclass
class _Task:
    info: mesos_pb2.TaskInfo | None = None
    records: list[UpdateRecord] = field(default_factory=list)
    nested: tuple[str, tuple[str, ...]] | None = None  # task.container: (container id, group)
    container_state: dict[str, object] | None = None


@dataclass
class _Run:
    container_state: dict[str, object] | None = None
    tasks: dict[str, _Task] = field(default_factory=dict)


@dataclass
class _Executor:
    info: mesos_pb2.ExecutorInfo | None = None
    latest: str | None = None
    runs: dict[str, _Run] = field(default_factory=dict)


@dataclass
class _Framework:
    info: mesos_pb2.FrameworkInfo | None = None
    executors: dict[str, _Executor] = field(default_factory=dict)


@dataclass
class _Agent:
    info: mesos_pb2.AgentInfo
    executor_port: int | None = None
    frameworks: dict[str, _Framework] = field(default_factory=dict)


class MemoryCheckpointStore:
    """MemoryCheckpointStore holds one host's agent checkpoint in memory (see the module).

    Like the file store, ``agent_id`` must be set (by :meth:`write_agent` or :meth:`read`)
    before anything below the agent is written. One store outlives the agent cores that a
    simulator crashes and restarts on it.
    """

    def __init__(self) -> None:
        self.agent_id: str | None = None
        self.boot_id: str | None = None
        self._agents: dict[str, _Agent] = {}
        self._latest_agent: str | None = None

    def _agent(self) -> _Agent:
        if self.agent_id is None:
            raise RuntimeError("no agent id yet: the agent is not registered")
        return self._agents[self.agent_id]

    def _framework(self, framework_id: str) -> _Framework:
        frameworks = self._agent().frameworks
        return frameworks.setdefault(_name("framework id", framework_id), _Framework())

    def _executor(self, framework_id: str, executor_id: str) -> _Executor:
        executors = self._framework(framework_id).executors
        return executors.setdefault(_name("executor id", executor_id), _Executor())

    def _run(self, framework_id: str, executor_id: str, container_id: str) -> _Run:
        runs = self._executor(framework_id, executor_id).runs
        return runs.setdefault(_name("container id", container_id), _Run())

    def _task(self, framework_id: str, executor_id: str, container_id: str, task_id: str) -> _Task:
        tasks = self._run(framework_id, executor_id, container_id).tasks
        return tasks.setdefault(_name("task id", task_id), _Task())

    # -- writes --

    def write_boot_id(self, boot_id: str) -> None:
        """Record the host boot id the agent runs under."""
        self.boot_id = boot_id

    def write_agent(self, info: mesos_pb2.AgentInfo) -> None:
        """Record the registered agent (``info.id`` set) and make it the one to recover."""
        agent_id = _name("agent id", info.id.value)
        self.agent_id = agent_id
        agent = self._agents.get(agent_id)
        if agent is None:
            self._agents[agent_id] = _Agent(_copy(info))
        else:
            agent.info = _copy(info)
        self._latest_agent = agent_id

    def write_executor_port(self, port: int) -> None:
        """Record the executor API's port."""
        self._agent().executor_port = port

    def read_executor_port(self) -> int | None:
        """The executor API port recorded for this agent, if any."""
        return self._agent().executor_port

    def write_framework(self, framework_id: str, info: mesos_pb2.FrameworkInfo) -> None:
        """Write ``framework.info``."""
        self._framework(framework_id).info = _copy(info)

    def write_executor(
        self,
        framework_id: str,
        executor_id: str,
        container_id: str,
        info: mesos_pb2.ExecutorInfo,
    ) -> None:
        """Write ``executor.info`` and start a run, making it the latest."""
        executor = self._executor(framework_id, executor_id)
        executor.info = _copy(info)
        self._run(framework_id, executor_id, container_id)
        executor.latest = container_id

    def write_task(
        self,
        framework_id: str,
        executor_id: str,
        container_id: str,
        info: mesos_pb2.TaskInfo,
        *,
        nested_container_id: str | None = None,
        group: Sequence[str] = (),
    ) -> None:
        """Write a task's ``task.info`` (and, for the default executor, ``task.container``)."""
        task = self._task(framework_id, executor_id, container_id, info.task_id.value)
        if nested_container_id is not None:
            task.nested = (nested_container_id, tuple(group))
        task.info = _copy(info)

    def append_update(
        self,
        framework_id: str,
        executor_id: str,
        container_id: str,
        task_id: str,
        record: UpdateRecord,
    ) -> None:
        """Append a record to a task's ``task.updates``."""
        task = self._task(framework_id, executor_id, container_id, task_id)
        payload = record.payload
        if isinstance(payload, mesos_pb2.TaskStatus):
            payload = _copy(payload)
        task.records.append(UpdateRecord(record.kind, payload))

    def write_container_state(
        self, framework_id: str, executor_id: str, container_id: str, state: dict[str, object]
    ) -> None:
        """Write ``container.state``: how to find the container again."""
        self._run(framework_id, executor_id, container_id).container_state = dict(state)

    def write_task_container_state(
        self,
        framework_id: str,
        executor_id: str,
        container_id: str,
        task_id: str,
        state: dict[str, object],
    ) -> None:
        """Write a default executor task's ``container.state`` (``container_id``: the run)."""
        self._task(framework_id, executor_id, container_id, task_id).container_state = dict(state)

    def remove_executor(self, framework_id: str, executor_id: str) -> None:
        """Delete a finished executor's checkpoint."""
        framework = self._agent().frameworks.get(framework_id)
        if framework is not None:
            framework.executors.pop(executor_id, None)

    def remove_framework(self, framework_id: str) -> None:
        """Delete a framework's checkpoint."""
        self._agent().frameworks.pop(framework_id, None)

    def clear_agents(self) -> None:
        """Forget every checkpointed agent (start clean)."""
        self._agents.clear()
        self._latest_agent = None
        self.agent_id = None

    # -- reads --

    def read(self) -> Checkpoint:
        """Read back the boot id and the latest agent's frameworks, executors and tasks."""
        warnings: list[str] = []
        agent_id = self._latest_agent
        if agent_id is None:
            return Checkpoint(self.boot_id, None, warnings)
        self.agent_id = agent_id
        stored = self._agents[agent_id]
        agent = RecoveredAgent(_copy(stored.info))
        for framework_id in sorted(stored.frameworks):
            framework = stored.frameworks[framework_id]
            if framework.info is None:
                warnings.append(f"framework {framework_id}: framework.info is missing")
                continue
            recovered = RecoveredFramework(framework_id, _copy(framework.info))
            for executor_id in sorted(framework.executors):
                executor = self._read_executor(executor_id, framework.executors[executor_id])
                if executor is not None:
                    recovered.executors.append(executor)
            agent.frameworks.append(recovered)
        return Checkpoint(self.boot_id, agent, warnings)

    @staticmethod
    def _read_executor(executor_id: str, executor: _Executor) -> RecoveredExecutor | None:
        if executor.info is None or executor.latest is None:
            return None
        run = executor.runs[executor.latest]
        state = dict(run.container_state) if run.container_state is not None else None
        recovered = RecoveredExecutor(executor_id, _copy(executor.info), executor.latest, state)
        for task_id in sorted(run.tasks):
            task = run.tasks[task_id]
            if task.info is None:
                continue
            records = [
                UpdateRecord(
                    r.kind, _copy(r.payload) if isinstance(r.payload, Message) else r.payload
                )
                for r in task.records
            ]
            entry = RecoveredTask(_copy(task.info), records)
            if task.nested is not None:
                entry.container_id, entry.group = task.nested
                if task.container_state is not None:
                    entry.container_state = dict(task.container_state)
            recovered.tasks.append(entry)
        return recovered
