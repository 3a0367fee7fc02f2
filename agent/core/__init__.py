"""The agent's sans-I/O core: its state machine and status update manager, as pure code.

Events go in as method calls on :class:`AgentState` (a RunTask from the master, a container's
exit, an executor's UPDATE, a timer) with ``now`` passed in; lists of :mod:`effects` come out
(send this, launch that, checkpoint this, set a timer) for the runtime in :mod:`agent.runtime` to
carry out in order. Nothing here imports grpc, asyncio or any other I/O framework, so the whole
agent logic runs in unit tests in microseconds, and ``validate()`` checks its invariants.
"""

from agent.core.agent import AGENT_CAPABILITIES, AgentState
from agent.core.backoff import RegistrationBackoff, RetrySchedule
from agent.core.model import ContainerExit, InvalidCall, NotAllowedNow, UnknownTarget
from agent.core.recovery import RecoveredAgent, RecoveryPlan, plan_recovery
from agent.core.state import CoreSettings
from agent.core.status_updates import AckOutcome, StatusUpdateManager, is_terminal

__all__ = [
    "AGENT_CAPABILITIES",
    "AckOutcome",
    "AgentState",
    "ContainerExit",
    "CoreSettings",
    "InvalidCall",
    "NotAllowedNow",
    "RecoveredAgent",
    "RecoveryPlan",
    "RegistrationBackoff",
    "RetrySchedule",
    "StatusUpdateManager",
    "UnknownTarget",
    "is_terminal",
    "plan_recovery",
]
