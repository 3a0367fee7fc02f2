"""The master's sans-I/O state machine: frameworks, agents, offers, tasks, reconciliation.

:class:`Master` takes decoded requests and ``now`` and returns effects (:mod:`.effects`) for the
runtime to carry out; it never does I/O. Modules hold one concern each: ``frameworks``,
``agents``, ``offers``, ``launch`` (ACCEPT/DECLINE), ``tasks`` (status updates, acknowledgements,
kills), ``reconciliation``, ``validation`` (pure checks of what frameworks send), ``invariants``
(``validate``), ``model`` (the domain dataclasses), ``state`` (the container), ``timers``,
``snapshot`` and ``roles_snapshot`` (read-only JSON views of the state, for the HTTP API),
``history`` (completed tasks and frameworks, counters, the operator event tap) and
``utilization``, ``operator_json`` and ``operator_views`` (the v1 operator API's objects and
calls), ``steering`` (the operator's write calls).
"""

from master.core.effects import (
    CloseSubscription,
    DisconnectAgent,
    Effect,
    PersistRegistry,
    SendEvent,
    SendToAgent,
)
from master.core.errors import CallError, ErrorCode
from master.core.ids import IdGenerator
from master.core.invariants import MasterInvariantError
from master.core.master import Master, make_master_info
from master.core.model import (
    TERMINAL_STATES,
    Agent,
    AgentPhase,
    Executor,
    Framework,
    FrameworkPhase,
    Offer,
    Task,
)
from master.core.roles_snapshot import roles_snapshot, weights_snapshot
from master.core.snapshot import (
    agents_snapshot,
    frameworks_snapshot,
    metrics_snapshot,
    state_snapshot,
    tasks_snapshot,
)
from master.core.summary import state_summary

__all__ = [
    "TERMINAL_STATES",
    "Agent",
    "AgentPhase",
    "CallError",
    "CloseSubscription",
    "DisconnectAgent",
    "Effect",
    "ErrorCode",
    "Executor",
    "Framework",
    "FrameworkPhase",
    "IdGenerator",
    "Master",
    "MasterInvariantError",
    "Offer",
    "PersistRegistry",
    "SendEvent",
    "SendToAgent",
    "Task",
    "agents_snapshot",
    "frameworks_snapshot",
    "make_master_info",
    "metrics_snapshot",
    "roles_snapshot",
    "state_snapshot",
    "state_summary",
    "tasks_snapshot",
    "weights_snapshot",
]
