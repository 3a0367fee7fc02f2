"""The agent's sans-I/O core: its state machine and status update manager, as pure code.

The contract (what the runtime, and a simulator, rely on):

* Build a state: ``state = AgentState(total, agent_info, settings, new_uuid=...,
  new_container_id=...)`` (the last two are seams for deterministic ids).
* Feed it events, one at a time: ``effects = handle(state, event, now)``. Events are the frozen
  dataclasses of :mod:`agent.core.events` (a master message, whole; a container's launch or
  exit; an executor call; a timer; recovery; stopping); ``now`` is the caller's clock in
  seconds. Nothing else mutates the state.
* Carry the effects out **in order** (:mod:`agent.core.effects`): a checkpoint write comes
  before the message that depends on it. Some effects are answered by later events
  (``LaunchContainer`` by ``ContainerLaunched``/``ContainerLaunchFailed`` then
  ``ContainerExited``; ``SetTimer`` by ``TimerFired``; ``LookForContainer`` by
  ``ContainerRecovered``/``ContainerExited``).
* ``handle`` never lets a fault of the core escape: it logs it with the event, counts it in
  ``state.faults`` and returns the effects that end what the event started (a launch that blew
  up ends TASK_FAILED). It raises only the executor API's refusals (:class:`InvalidCall`,
  :class:`NotAllowedNow`, :class:`UnknownTarget`), which change nothing.
* ``hello_message(state, boot_id, version)`` is the message that opens a session with the
  master; ``state.validate()`` checks every invariant (tests call it after each step).
* After a restart: a fresh state, then ``RecoverFromCheckpoint(checkpoint.agent)``, an answer per
  ``LookForContainer``, then ``RecoveryDone`` — before any other event.

Inside, the core has the master's shape: :class:`AgentState` is a dataclass of the data (with
read-only queries and ``validate``); the handlers are functions over it, one module per concern
(``lifecycle`` shared bookkeeping, ``launches``, ``default_executor``, ``master_events``,
``executor_events``, ``timers``, ``restart``, ``registration``), reached only through
:func:`handle` (``dispatch``). Nothing here imports grpc, asyncio or any other I/O framework, so
the whole agent logic runs in unit tests in microseconds.
"""

from agent.core import events
from agent.core.backoff import RegistrationBackoff, RetrySchedule
from agent.core.dispatch import handle
from agent.core.model import ContainerExit, InvalidCall, NotAllowedNow, UnknownTarget
from agent.core.recovery import RecoveredAgent, RecoveryPlan, plan_recovery
from agent.core.registration import AGENT_CAPABILITIES, hello_message
from agent.core.state import AgentState, CoreSettings
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
    "events",
    "handle",
    "hello_message",
    "is_terminal",
    "plan_recovery",
]
