"""The agent's ``/state`` document: what it runs, as JSON for operators and tests."""

from __future__ import annotations

from typing import Any

from agent.core import AgentState
from protos.v1 import mesos_pb2

__all__ = ["state_json"]


def state_json(state: AgentState, executor_port: int, connected: bool) -> dict[str, Any]:
    """A JSON-able summary of the agent: identity, resources, frameworks, executors, tasks."""
    frameworks = []
    for framework in state.frameworks.values():
        executors = []
        for executor in framework.executors.values():
            tasks = [
                {
                    "id": task.task_id,
                    "name": task.info.name,
                    "state": mesos_pb2.TaskState.Name(task.state),
                    "resources": str(task.resources),
                    # A default executor's task runs in a container of its own.
                    "container_id": (
                        task.container.container_id
                        if task.container is not None
                        else executor.container_id
                    ),
                }
                for task in executor.tasks.values()
            ]
            executors.append(
                {
                    "id": executor.executor_id,
                    "kind": executor.kind.value,
                    "phase": executor.phase.value,
                    "container_id": executor.container_id,
                    "connected": executor.connected,
                    "tasks": tasks,
                }
            )
        frameworks.append(
            {
                "id": framework.framework_id,
                "name": framework.info.name,
                "checkpoint": framework.checkpoint,
                "executors": executors,
            }
        )
    return {
        "id": state.agent_id,
        "hostname": state.agent_info.hostname,
        "port": state.agent_info.port,
        "executor_port": executor_port,
        "connected": connected,
        "resources": str(state.total),
        "allocated": str(state.allocated()),
        "pending_updates": sum(len(s.pending) for s in state.updates),
        "faults": state.faults,
        "frameworks": frameworks,
    }
