"""What the registry holds (:class:`RegistryState`) and the operations that change it.

Operations are plain data; :func:`apply_operations` is the one pure function that applies them,
used by every registry implementation (and by tests) so they all agree on the meaning of a batch.
Protobuf messages in the state are never mutated after they are stored: operations copy them in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from protos.v1 import mesos_pb2, quota_pb2

__all__ = [
    "AdmitAgent",
    "FrameworkRecord",
    "MarkAgentGone",
    "MarkAgentUnreachable",
    "Operation",
    "PutFramework",
    "RegistryState",
    "RemoveAgent",
    "RemoveFramework",
    "UnreachableAgent",
    "UpdateQuota",
    "UpdateReservations",
    "UpdateWeights",
    "apply_in_place",
    "apply_operations",
]


@dataclass(frozen=True, slots=True)
class FrameworkRecord:
    """FrameworkRecord is a framework the master knows, and when its scheduler went away.

    ``disconnected_at`` (seconds since the epoch) is None while a scheduler is subscribed; the
    failover deadline is ``disconnected_at + info.failover_timeout``, so a restarted master
    honours what is left of it (Mesos forgets it: MESOS-4659).
    """

    info: mesos_pb2.FrameworkInfo
    disconnected_at: float | None = None

    @property
    def framework_id(self) -> str:
        """The framework's id (``info.id.value``)."""
        return self.info.id.value

    @property
    def failover_deadline(self) -> float | None:
        """When the framework is torn down unless its scheduler resubscribes; None if connected."""
        if self.disconnected_at is None:
            return None
        return self.disconnected_at + max(self.info.failover_timeout, 0.0)


@dataclass(frozen=True, slots=True)
class UnreachableAgent:
    """UnreachableAgent is an agent marked unreachable at ``unreachable_at``; it may come back."""

    info: mesos_pb2.AgentInfo
    unreachable_at: float


@dataclass(slots=True)
class RegistryState:
    """RegistryState is one version of the registry's content.

    ``agents`` are the admitted agents (reachable, or not yet reregistered after a master
    restart); ``unreachable`` and ``gone`` the others. ``reservations`` holds each agent's
    dynamic reservations as ``Resource`` messages. ``completed_frameworks`` are the ids of the
    frameworks torn down most recently, with when (bounded by the master's
    ``--max-completed-frameworks``): a new leader must tell an agent that comes back with one
    of them to shut it down, not adopt it as a framework it has never heard of.
    """

    version: int = 0
    agents: dict[str, mesos_pb2.AgentInfo] = field(default_factory=dict)
    unreachable: dict[str, UnreachableAgent] = field(default_factory=dict)
    gone: dict[str, float] = field(default_factory=dict)
    frameworks: dict[str, FrameworkRecord] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    quotas: dict[str, quota_pb2.QuotaConfig] = field(default_factory=dict)
    reservations: dict[str, tuple[mesos_pb2.Resource, ...]] = field(default_factory=dict)
    completed_frameworks: dict[str, float] = field(default_factory=dict)
    """Torn-down framework id -> when, oldest first."""
    agent_principals: dict[str, str] = field(default_factory=dict)
    """Agent id (admitted or unreachable) -> the principal that owns it: only that principal may
    reregister the agent, after a failover too. No entry: no owner recorded (the agent
    registered without authentication, or before owners were kept); the next reregistration
    claims it."""

    def copy(self) -> RegistryState:
        """A copy whose dicts can be changed without touching this one (messages are shared)."""
        return RegistryState(
            version=self.version,
            agents=dict(self.agents),
            unreachable=dict(self.unreachable),
            gone=dict(self.gone),
            frameworks=dict(self.frameworks),
            weights=dict(self.weights),
            quotas=dict(self.quotas),
            reservations=dict(self.reservations),
            completed_frameworks=dict(self.completed_frameworks),
            agent_principals=dict(self.agent_principals),
        )


# -- operations -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AdmitAgent:
    """Admit an agent, or replace its info; an unreachable agent becomes reachable again.

    ``principal``, when given, becomes the agent's owner; None leaves the recorded one (if any).
    """

    agent_id: str
    info: mesos_pb2.AgentInfo
    principal: str | None = None


@dataclass(frozen=True, slots=True)
class MarkAgentUnreachable:
    """Move an admitted agent to the unreachable list, as of ``time``."""

    agent_id: str
    time: float


@dataclass(frozen=True, slots=True)
class MarkAgentGone:
    """The agent will never come back (operator's word); it may not reregister."""

    agent_id: str
    time: float


@dataclass(frozen=True, slots=True)
class RemoveAgent:
    """Forget an agent (it unregistered); it may register anew under a new id."""

    agent_id: str


@dataclass(frozen=True, slots=True)
class UpdateReservations:
    """Replace an agent's dynamic reservations (empty: none)."""

    agent_id: str
    resources: tuple[mesos_pb2.Resource, ...]


@dataclass(frozen=True, slots=True)
class PutFramework:
    """Add a framework or replace its record (info, disconnection time)."""

    record: FrameworkRecord


@dataclass(frozen=True, slots=True)
class RemoveFramework:
    """Forget a torn-down framework; remember its id (with ``removed_at``) among the ``keep``
    most recently torn down."""

    framework_id: str
    removed_at: float = 0.0
    keep: int = 50


@dataclass(frozen=True, slots=True)
class UpdateWeights:
    """Set the weights of these roles (others keep theirs)."""

    weights: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class UpdateQuota:
    """Set a role's quota, or remove it (``config`` None)."""

    role: str
    config: quota_pb2.QuotaConfig | None


Operation = (
    AdmitAgent
    | MarkAgentUnreachable
    | MarkAgentGone
    | RemoveAgent
    | UpdateReservations
    | PutFramework
    | RemoveFramework
    | UpdateWeights
    | UpdateQuota
)
"""Any registry operation."""


_M = TypeVar("_M", mesos_pb2.AgentInfo, mesos_pb2.FrameworkInfo, quota_pb2.QuotaConfig)


def _copy(msg: _M) -> _M:
    out = type(msg)()
    out.CopyFrom(msg)
    return out


def apply_operations(state: RegistryState, operations: Iterable[Operation]) -> RegistryState:
    """The state after ``operations`` (in order), with the version one higher; ``state`` stays.

    Operations on unknown agents or frameworks are no-ops, so replaying a batch is harmless.
    """
    new = state.copy()
    new.version = state.version + 1
    apply_in_place(new, operations)
    return new


def apply_in_place(new: RegistryState, operations: Iterable[Operation]) -> None:
    """Apply ``operations`` to ``new`` itself (its version unchanged): what
    :func:`apply_operations` does to its copy, and what a journal replay does to one state
    line after line without copying every dict per line."""
    for op in operations:
        match op:
            case AdmitAgent(agent_id, info, principal):
                new.unreachable.pop(agent_id, None)
                new.agents[agent_id] = _copy(info)
                if principal is not None:
                    new.agent_principals[agent_id] = principal
            case MarkAgentUnreachable(agent_id, time):
                admitted = new.agents.pop(agent_id, None)
                if admitted is not None:
                    new.unreachable[agent_id] = UnreachableAgent(admitted, time)
            case MarkAgentGone(agent_id, time):
                new.agents.pop(agent_id, None)
                new.unreachable.pop(agent_id, None)
                new.reservations.pop(agent_id, None)
                new.agent_principals.pop(agent_id, None)
                new.gone[agent_id] = time
            case RemoveAgent(agent_id):
                new.agents.pop(agent_id, None)
                new.unreachable.pop(agent_id, None)
                new.reservations.pop(agent_id, None)
                new.agent_principals.pop(agent_id, None)
            case UpdateReservations(agent_id, resources):
                if resources:
                    new.reservations[agent_id] = tuple(
                        mesos_pb2.Resource.FromString(r.SerializeToString()) for r in resources
                    )
                else:
                    new.reservations.pop(agent_id, None)
            case PutFramework(record):
                new.frameworks[record.framework_id] = FrameworkRecord(
                    _copy(record.info), record.disconnected_at
                )
            case RemoveFramework(framework_id, removed_at, keep):
                new.frameworks.pop(framework_id, None)
                completed = new.completed_frameworks
                completed.pop(framework_id, None)
                completed[framework_id] = removed_at
                while len(completed) > max(keep, 0):
                    del completed[next(iter(completed))]
            case UpdateWeights(weights):
                new.weights.update(weights)
            case UpdateQuota(role, config):
                if config is None:
                    new.quotas.pop(role, None)
                else:
                    new.quotas[role] = _copy(config)
