"""The agent's ``/state`` document, in the shape of Mesos's agent ``/state``.

Field by field as Mesos's ``src/slave/http.cpp`` writes it (``version``, the build fields,
``start_time``, ``id``, ``pid``, ``hostname``, ``capabilities``, ``resources``, ``attributes``,
``flags``, ``frameworks`` with their ``executors`` and those with their ``tasks``,
``queued_tasks`` and ``completed_tasks``, ``completed_frameworks``, ``reserved_resources``,
``unreserved_resources``), so that tools written for Mesos agents read it. Mesos's
``completed_*`` lists hold what ended since the agent started; Emporion's agent forgets a
container once its updates are acknowledged, so they are empty here (the master keeps the
history: its ``completed_tasks``).

Emporion adds, documented as such: ``executor_port`` (the executor API), ``connected`` (to
the master), ``pending_updates`` (status updates not yet acknowledged), ``faults`` (inputs
its core contained), and per executor ``kind``, ``phase``, ``container_id``, ``connected``;
per task ``container_id``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from agent.core import AgentState
from agent.core.model import ExecutorRecord, FrameworkRecord, TaskRecord
from agent.core.registration import AGENT_CAPABILITIES
from protos.mesos_json import agent_pid, resources_json
from protos.resources import Resources
from protos.v1 import mesos_pb2

__all__ = ["AgentIdentity", "state_json"]

_STATE_NAME = mesos_pb2.TaskState.Name


class AgentIdentity:
    """What ``/state`` says of the agent process itself (not of its state machine)."""

    def __init__(
        self,
        *,
        version: str,
        start_time: float,
        flags: Mapping[str, str],
        sandbox: Callable[[str, str, str], Path] | None = None,
    ) -> None:
        self.version = version
        self.start_time = start_time
        self.flags = dict(flags)
        self.sandbox = sandbox
        """(framework id, executor id, container id) -> the run's sandbox directory."""


def _attributes(info: mesos_pb2.AgentInfo) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attribute in info.attributes:
        if attribute.type == mesos_pb2.Value.SCALAR:
            out[attribute.name] = attribute.scalar.value
        elif attribute.type == mesos_pb2.Value.RANGES:
            spans = ", ".join(f"{r.begin}-{r.end}" for r in attribute.ranges.range)
            out[attribute.name] = f"[{spans}]"
        elif attribute.type == mesos_pb2.Value.SET:
            out[attribute.name] = "{" + ", ".join(attribute.set.item) + "}"
        else:
            out[attribute.name] = attribute.text.value
    return out


def _task(state: AgentState, executor: ExecutorRecord, task: TaskRecord) -> dict[str, Any]:
    info = task.info
    out: dict[str, Any] = {
        "id": task.task_id,
        "name": info.name,
        "framework_id": task.framework_id,
        "executor_id": executor.executor_id,
        "slave_id": state.agent_id,
        "state": _STATE_NAME(task.state),
        "resources": resources_json(task.resources),
        "statuses": [],
        # A default executor's task runs in a container of its own.
        "container_id": (
            task.container.container_id if task.container is not None else executor.container_id
        ),
    }
    if info.HasField("labels"):
        out["labels"] = [{"key": x.key, "value": x.value} for x in info.labels.labels]
    return out


def _executor(
    state: AgentState, identity: AgentIdentity, executor: ExecutorRecord
) -> dict[str, Any]:
    info = executor.info
    launched = [t for t in executor.tasks.values() if t.launched]
    queued = [t for t in executor.tasks.values() if not t.launched]
    directory = ""
    if identity.sandbox is not None:
        directory = str(
            identity.sandbox(executor.framework_id, executor.executor_id, executor.container_id)
        )
    return {
        "id": executor.executor_id,
        "name": info.name,
        "source": info.source,
        "container": executor.container_id,
        "directory": directory,
        "resources": resources_json(executor.resources),
        "type": mesos_pb2.ExecutorInfo.Type.Name(info.type) if info.type else "UNKNOWN",
        "tasks": [_task(state, executor, t) for t in launched],
        "queued_tasks": [_task(state, executor, t) for t in queued],
        "completed_tasks": [],
        "kind": executor.kind.value,
        "phase": executor.phase.value,
        "container_id": executor.container_id,
        "connected": executor.connected,
    }


def _framework(
    state: AgentState, identity: AgentIdentity, framework: FrameworkRecord
) -> dict[str, Any]:
    info = framework.info
    out: dict[str, Any] = {
        "id": framework.framework_id,
        "name": info.name,
        "user": info.user,
        "failover_timeout": info.failover_timeout,
        "checkpoint": info.checkpoint,
        "hostname": info.hostname,
        "executors": [_executor(state, identity, e) for e in framework.executors.values()],
        "completed_executors": [],
    }
    if info.roles:
        out["roles"] = list(info.roles)
    else:
        out["role"] = info.role or "*"
    return out


def state_json(
    state: AgentState, executor_port: int, connected: bool, identity: AgentIdentity
) -> dict[str, Any]:
    """The agent's ``/state`` (module docstring)."""
    info = state.agent_info
    total: Resources = state.total
    return {
        "version": identity.version,
        "start_time": identity.start_time,
        "id": state.agent_id,
        "pid": agent_pid(info.hostname, info.port),
        "hostname": info.hostname,
        "port": info.port,
        "capabilities": [mesos_pb2.AgentInfo.Capability.Type.Name(c) for c in AGENT_CAPABILITIES],
        "resources": resources_json(total),
        "attributes": _attributes(info),
        "flags": identity.flags,
        "frameworks": [_framework(state, identity, f) for f in state.frameworks.values()],
        "completed_frameworks": [],
        "reserved_resources": {
            role: resources_json(total.reserved(role)) for role in sorted(total.reservation_roles())
        },
        "unreserved_resources": resources_json(total.unreserved()),
        "executor_port": executor_port,
        "connected": connected,
        "allocated_resources": resources_json(state.allocated()),
        "pending_updates": sum(len(s.pending) for s in state.updates),
        "faults": state.faults,
    }
