"""The master's domain model: frameworks, agents, tasks, executors and offers.

Each fact has one home. A task lives in its framework's ``tasks`` and, while its agent is known,
in that agent's ``tasks`` (the same object). Whether a task's resources are still allocated is
``Task.allocated``; an executor's is ``Executor.allocated``. Protobuf payloads the master only
forwards (TaskInfo, ExecutorInfo, FrameworkInfo, the last TaskStatus) are kept as they came.

State machines (see ``docs/master.md`` for the transitions)::

    Framework: CONNECTED <-> DISCONNECTED --(failover timeout, teardown)--> removed
    Agent:     CONNECTED <-> DISCONNECTED --(pings missed)--> UNREACHABLE --(reregister)--> ...
               RECOVERING (known from the registry after a restart) --(reregister)--> CONNECTED
    Task:      the Mesos TaskState of the newest update (``latest_state``), STAGING at launch
    Offer:     outstanding until accepted, declined, rescinded or timed out, then removed
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from protos.resources import Resources
from protos.v1 import mesos_pb2

if TYPE_CHECKING:
    from master.core.history import StatusEntry

__all__ = [
    "PARTITION_AWARE",
    "TERMINAL_STATES",
    "Agent",
    "AgentPhase",
    "Executor",
    "Framework",
    "FrameworkPhase",
    "Offer",
    "Task",
    "capability_names",
]

TERMINAL_STATES = frozenset(
    {
        mesos_pb2.TASK_FINISHED,
        mesos_pb2.TASK_FAILED,
        mesos_pb2.TASK_KILLED,
        mesos_pb2.TASK_ERROR,
        mesos_pb2.TASK_LOST,
        mesos_pb2.TASK_DROPPED,
        mesos_pb2.TASK_GONE,
        mesos_pb2.TASK_GONE_BY_OPERATOR,
    }
)
"""States after which a task holds no resources (Mesos's ``isTerminalState``)."""

PARTITION_AWARE = mesos_pb2.FrameworkInfo.Capability.PARTITION_AWARE
MULTI_ROLE = mesos_pb2.FrameworkInfo.Capability.MULTI_ROLE


def capability_names(info: mesos_pb2.FrameworkInfo) -> frozenset[str]:
    """The framework's capabilities by name (``"GPU_RESOURCES"``), as the allocator takes them."""
    name = mesos_pb2.FrameworkInfo.Capability.Type.Name
    return frozenset(name(c.type) for c in info.capabilities if c.type)


class FrameworkPhase(Enum):
    """Where a framework's scheduler is."""

    CONNECTED = "connected"
    """Subscribed: has a live event stream; is offered resources."""
    DISCONNECTED = "disconnected"
    """No stream (it broke, or the master restarted); torn down at ``failover_deadline``."""


class AgentPhase(Enum):
    """Where an agent is."""

    CONNECTED = "connected"
    """Registered, with a live connection; its resources are offered."""
    DISCONNECTED = "disconnected"
    """Its connection broke; tasks stay, nothing is offered, pings go unanswered."""
    RECOVERING = "recovering"
    """Admitted before a master restart and not yet reregistered (tasks not known yet)."""
    UNREACHABLE = "unreachable"
    """Missed too many pings: tasks went UNREACHABLE or LOST; it may reregister."""


@dataclass(slots=True, eq=False)
class Task:
    """Task is the master's record of one task.

    ``state`` is the newest state the agent reported (``latest_state``); ``status_update_state``
    and ``status_update_uuid`` describe the update being delivered to the scheduler, which may lag
    behind. ``allocated`` is true while the task's resources count as allocated in the allocator.
    """

    task_id: str
    framework_id: str
    agent_id: str
    executor_id: str | None
    role: str
    resources: Resources
    state: int = mesos_pb2.TASK_STAGING
    info: mesos_pb2.TaskInfo | None = None
    status_update_state: int | None = None
    status_update_uuid: bytes | None = None
    latest_status: mesos_pb2.TaskStatus | None = None
    allocated: bool = True
    kill_pending: bool = False
    unreachable_at: float | None = None
    statuses: list[StatusEntry] = field(default_factory=list)
    """The task's statuses, oldest first (kept by master.core.history)."""

    @property
    def terminal(self) -> bool:
        """Whether the task reached a terminal state."""
        return self.state in TERMINAL_STATES


@dataclass(slots=True, eq=False)
class Executor:
    """Executor is a framework's executor on one agent; ``tasks`` are the ids of its tasks."""

    executor_id: str
    framework_id: str
    agent_id: str
    role: str
    resources: Resources
    info: mesos_pb2.ExecutorInfo | None = None
    tasks: set[str] = field(default_factory=set)
    allocated: bool = True


@dataclass(slots=True, eq=False)
class Offer:
    """Offer is one outstanding offer: one agent's resources for one framework and role."""

    offer_id: str
    framework_id: str
    agent_id: str
    role: str
    resources: Resources
    created_at: float
    expires_at: float | None = None


@dataclass(slots=True, eq=False)
class Framework:
    """Framework is a registered framework, subscribed or not.

    ``tasks`` holds every task the master still tracks (including terminal ones whose final
    update is not yet acknowledged, and unreachable ones of partition-aware frameworks).
    """

    framework_id: str
    info: mesos_pb2.FrameworkInfo
    roles: frozenset[str]
    phase: FrameworkPhase = FrameworkPhase.DISCONNECTED
    stream_id: str | None = None
    registered_at: float = 0.0
    disconnected_at: float | None = None
    failover_deadline: float | None = None
    suppressed_roles: frozenset[str] = frozenset()
    offers: set[str] = field(default_factory=set)
    tasks: dict[str, Task] = field(default_factory=dict)
    executors: dict[tuple[str, str], Executor] = field(default_factory=dict)
    partition_aware: bool = False

    def set_info(self, info: mesos_pb2.FrameworkInfo, roles: frozenset[str]) -> None:
        """Replace the info and what is derived from it."""
        self.info = info
        self.roles = roles
        self.partition_aware = any(c.type == PARTITION_AWARE for c in info.capabilities)

    @property
    def connected(self) -> bool:
        """Whether a scheduler is subscribed."""
        return self.phase is FrameworkPhase.CONNECTED


@dataclass(slots=True, eq=False)
class Agent:
    """Agent is an agent the master knows.

    ``total`` includes dynamic reservations (``reservations`` is that part, as the agent must
    checkpoint it). ``tasks`` and ``executors`` are keyed by (framework id, task/executor id).
    """

    agent_id: str
    info: mesos_pb2.AgentInfo
    total: Resources
    phase: AgentPhase
    reservations: Resources = Resources.EMPTY
    capabilities: frozenset[str] = frozenset()
    connection_id: str | None = None
    tasks: dict[tuple[str, str], Task] = field(default_factory=dict)
    executors: dict[tuple[str, str], Executor] = field(default_factory=dict)
    offers: set[str] = field(default_factory=set)
    in_allocator: bool = False
    registered_at: float = 0.0
    version: str = ""
    """The Emporion version the agent said it runs (empty until it registers)."""
    principal: str | None = None
    """The principal that owns this agent id (kept in the registry; None: none recorded)."""
    unreachable_at: float | None = None
    ping_seq: int = 0
    awaiting_pong: bool = False
    pings_missed: int = 0
    launch_seq: int = 0

    @property
    def connected(self) -> bool:
        """Whether the agent has a live connection."""
        return self.phase is AgentPhase.CONNECTED
