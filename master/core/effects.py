"""What the state machine asks the runtime to do: the outputs of every core method.

The runtime carries effects out in order and does nothing else. Every effect that follows a
:class:`PersistRegistry` is held back until that registry write is durable, so nobody hears of a
change that a crash could undo.
"""

from __future__ import annotations

from dataclasses import dataclass

from master.registry.state import Operation
from protos.v1 import agent_internal_pb2, scheduler_pb2

__all__ = [
    "CloseSubscription",
    "DisconnectAgent",
    "Effect",
    "PersistRegistry",
    "SendEvent",
    "SendToAgent",
]


@dataclass(frozen=True, slots=True)
class SendEvent:
    """Send ``event`` on subscription stream ``stream_id`` of framework ``framework_id``."""

    framework_id: str
    stream_id: str
    event: scheduler_pb2.Event


@dataclass(frozen=True, slots=True)
class CloseSubscription:
    """End subscription stream ``stream_id``, first sending ERROR ``error`` if one is given."""

    stream_id: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SendToAgent:
    """Send ``message`` to agent ``agent_id`` on its connection ``connection_id``."""

    agent_id: str
    connection_id: str
    message: agent_internal_pb2.MasterMessage


@dataclass(frozen=True, slots=True)
class DisconnectAgent:
    """End agent connection ``connection_id`` (after the messages already queued on it)."""

    agent_id: str
    connection_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class PersistRegistry:
    """Make ``operations`` durable; hold every later effect until they are."""

    operations: tuple[Operation, ...]


Effect = SendEvent | CloseSubscription | SendToAgent | DisconnectAgent | PersistRegistry
"""Any effect."""
