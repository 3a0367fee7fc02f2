"""Events: everything that can happen to an agent, as plain frozen values fed to ``handle``.

The runtime (or a simulator) turns each piece of I/O into one of these and hands it to
:func:`agent.core.handle` with ``now``; nothing else mutates the agent's state. Messages from
the master arrive whole (:class:`MasterMessageReceived`, the registration reply included) and
are decoded by the core, so a driver never needs to know which message does what.

Executor API calls (:class:`ExecutorSubscribed`, :class:`ExecutorUpdate`,
:class:`ExecutorMessage`) may be refused: ``handle`` then raises
:class:`~agent.core.model.InvalidCall` (or its subclass ``NotAllowedNow``) or
:class:`~agent.core.model.UnknownTarget` and changes nothing, so the caller can answer that
executor with a precise error. No other event raises.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.core.effects import TimerKey
from agent.core.model import ContainerExit
from agent.core.recovery import RecoveredAgent
from protos.v1 import agent_internal_pb2, executor_pb2, mesos_pb2

__all__ = [
    "AgentStopping",
    "ContainerExited",
    "ContainerLaunchFailed",
    "ContainerLaunched",
    "ContainerNeverStarted",
    "ContainerRecovered",
    "Disconnected",
    "Event",
    "ExecutorDisconnected",
    "ExecutorMessage",
    "ExecutorSubscribed",
    "ExecutorUpdate",
    "HealthChanged",
    "HealthFailed",
    "MasterMessageReceived",
    "RecoverFromCheckpoint",
    "RecoveryDone",
    "TimerFired",
]


# -- the master --


@dataclass(frozen=True)
class MasterMessageReceived:
    """The master sent ``message``: a session's reply (AgentRegistered / AgentReregistered,
    which start forwarding updates) or anything the master sends on an open session."""

    message: agent_internal_pb2.MasterMessage


@dataclass(frozen=True)
class Disconnected:
    """The session with the master ended: updates are held until the next registration."""


# -- containers --


@dataclass(frozen=True)
class ContainerLaunched:
    """A container asked for by ``LaunchContainer`` started.

    ``container_state`` is how the isolation layer can find it again after an agent restart
    (``Container.state().to_dict()``); for a checkpointing framework the core has it written
    (``CheckpointContainerState``) before anything else.
    """

    container_id: str
    container_state: dict[str, object] | None = None


@dataclass(frozen=True)
class ContainerLaunchFailed:
    """A container could not be started (sandbox, fetch, environment or launch error):
    ``message`` names the cause; its task(s) end TASK_FAILED/REASON_CONTAINER_LAUNCH_FAILED."""

    container_id: str
    message: str


@dataclass(frozen=True)
class ContainerNeverStarted:
    """After a restart: the container named by a ``LookForContainer`` effect was never
    started — the agent died while its launch was queued or before its helper ran anything, so
    its command never ran (``message`` says so). A command task's container is launched again
    (it is STAGING, and nothing of it ever ran); any other launch fails like
    :class:`ContainerLaunchFailed`."""

    container_id: str
    message: str


@dataclass(frozen=True)
class ContainerExited:
    """A container's main process ended and the container was destroyed."""

    container_id: str
    exit: ContainerExit


@dataclass(frozen=True)
class ContainerRecovered:
    """After a restart, a container named by a ``LookForContainer`` effect is still running.

    (One that is gone is answered with :class:`ContainerExited`.)
    """

    container_id: str


# -- executors (the executor API) and health checks --


@dataclass(frozen=True)
class ExecutorSubscribed:
    """A custom executor (re-)subscribed with ``subscribe`` (its unacknowledged tasks and
    updates). Refused with InvalidCall/UnknownTarget if no such executor may subscribe."""

    framework_id: str
    executor_id: str
    subscribe: executor_pb2.Call.Subscribe


@dataclass(frozen=True)
class ExecutorUpdate:
    """A subscribed executor sent a status update (UPDATE). May be refused (see module)."""

    framework_id: str
    executor_id: str
    status: mesos_pb2.TaskStatus


@dataclass(frozen=True)
class ExecutorMessage:
    """An executor sent a framework message (MESSAGE) for its scheduler. May be refused."""

    framework_id: str
    executor_id: str
    data: bytes


@dataclass(frozen=True)
class ExecutorDisconnected:
    """An executor's event stream ended (its process is still watched; it may come back)."""

    framework_id: str
    executor_id: str


@dataclass(frozen=True)
class HealthChanged:
    """A health checker of a task the agent runs itself saw its health change."""

    framework_id: str
    task_id: str
    healthy: bool


@dataclass(frozen=True)
class HealthFailed:
    """A task failed too many health checks in a row: it is to be killed."""

    framework_id: str
    task_id: str


# -- time --


@dataclass(frozen=True)
class TimerFired:
    """The timer an earlier ``SetTimer(key, at)`` asked for is due (and was not cancelled)."""

    key: TimerKey


# -- the agent's own life --


@dataclass(frozen=True)
class RecoverFromCheckpoint:
    """The agent restarted on a checkpoint: rebuild its records before any other event.

    Answered with one ``LookForContainer`` effect per container that may still run; each must
    be answered (``ContainerRecovered`` or ``ContainerExited``), then :class:`RecoveryDone`.
    Only allowed on a fresh state (no frameworks, not connected).
    """

    agent: RecoveredAgent


@dataclass(frozen=True)
class RecoveryDone:
    """Every container recovery asked about has been answered: finish what a restart cut."""


@dataclass(frozen=True)
class AgentStopping:
    """The agent is stopping.

    ``kill_all``: it leaves for good: every framework is shut down. Otherwise it will restart
    and recover: only the executors of frameworks that do not checkpoint (which could not be
    recovered) are destroyed.
    """

    kill_all: bool


Event = (
    MasterMessageReceived
    | Disconnected
    | ContainerLaunched
    | ContainerLaunchFailed
    | ContainerExited
    | ContainerRecovered
    | ContainerNeverStarted
    | ExecutorSubscribed
    | ExecutorUpdate
    | ExecutorMessage
    | ExecutorDisconnected
    | HealthChanged
    | HealthFailed
    | TimerFired
    | RecoverFromCheckpoint
    | RecoveryDone
    | AgentStopping
)
"""Every input of the agent's state machine."""
