"""Carrying out the core's checkpoint effects on a store: the file one or its in-memory twin.

Both :class:`~agent.checkpoint.store.CheckpointStore` and
:class:`~agent.checkpoint.memory.MemoryCheckpointStore` satisfy :class:`CheckpointWriter`, so
the agent's runtime and a simulator write checkpoints through the same code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from agent.core.effects import (
    AppendUpdateRecord,
    CheckpointAgent,
    CheckpointContainerState,
    CheckpointExecutor,
    CheckpointFramework,
    CheckpointTask,
    Effect,
    RemoveExecutorCheckpoint,
    RemoveFrameworkCheckpoint,
    UpdateRecord,
)
from protos.v1 import mesos_pb2

__all__ = ["CheckpointWriter", "apply_checkpoint_effect"]


class CheckpointWriter(Protocol):
    """The writes of a checkpoint store (see :class:`~agent.checkpoint.store.CheckpointStore`)."""

    def write_agent(self, info: mesos_pb2.AgentInfo) -> None: ...

    def write_framework(self, framework_id: str, info: mesos_pb2.FrameworkInfo) -> None: ...

    def write_executor(
        self, framework_id: str, executor_id: str, container_id: str, info: mesos_pb2.ExecutorInfo
    ) -> None: ...

    def write_task(
        self,
        framework_id: str,
        executor_id: str,
        container_id: str,
        info: mesos_pb2.TaskInfo,
        *,
        nested_container_id: str | None = None,
        group: Sequence[str] = (),
    ) -> None: ...

    def append_update(
        self,
        framework_id: str,
        executor_id: str,
        container_id: str,
        task_id: str,
        record: UpdateRecord,
    ) -> None: ...

    def write_container_state(
        self, framework_id: str, executor_id: str, container_id: str, state: dict[str, object]
    ) -> None: ...

    def write_task_container_state(
        self,
        framework_id: str,
        executor_id: str,
        container_id: str,
        task_id: str,
        state: dict[str, object],
    ) -> None: ...

    def remove_executor(self, framework_id: str, executor_id: str) -> None: ...

    def remove_framework(self, framework_id: str) -> None: ...


def apply_checkpoint_effect(store: CheckpointWriter, effect: Effect) -> bool:
    """Carry out ``effect`` on ``store`` if it is a checkpoint effect; False if it is not.

    Errors of the store (OSError, ValueError for an id that cannot name a file) propagate.
    """
    match effect:
        case CheckpointAgent(info):
            store.write_agent(info)
        case CheckpointFramework(framework_id, info):
            store.write_framework(framework_id, info)
        case CheckpointExecutor(framework_id, executor_id, container_id, info):
            store.write_executor(framework_id, executor_id, container_id, info)
        case CheckpointTask(framework_id, executor_id, container_id, info, nested, group):
            store.write_task(
                framework_id,
                executor_id,
                container_id,
                info,
                nested_container_id=nested,
                group=group,
            )
        case AppendUpdateRecord(framework_id, executor_id, container_id, task_id):
            # Streams of tasks the agent never held (answers to kills and reconciliation of
            # unknown tasks) have no executor run to be logged in, and need none.
            if executor_id is not None and container_id is not None:
                store.append_update(framework_id, executor_id, container_id, task_id, effect.record)
        case CheckpointContainerState(framework_id, executor_id, container_id, None, state):
            store.write_container_state(framework_id, executor_id, container_id, state)
        case CheckpointContainerState(framework_id, executor_id, container_id, task_id, state):
            assert task_id is not None
            store.write_task_container_state(
                framework_id, executor_id, container_id, task_id, state
            )
        case RemoveExecutorCheckpoint(framework_id, executor_id):
            store.remove_executor(framework_id, executor_id)
        case RemoveFrameworkCheckpoint(framework_id):
            store.remove_framework(framework_id)
        case _:
            return False
    return True
