"""Master: the public face of the master's sans-I/O state machine.

Every input is a method call carrying the decoded request and ``now`` (seconds since the epoch);
every method returns the effects to carry out, in order (see :mod:`master.core.effects`).
Framework calls that are refused raise :class:`~master.core.errors.CallError` and change nothing.
Timers are deadlines in the state, fired by :meth:`Master.tick`; allocation runs when the runtime
calls :meth:`Master.allocate` (``allocation_wanted`` says something changed since the last run).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from typing import Literal

from master.allocator import HierarchicalAllocator
from master.config import MasterConfig
from master.core import (
    agents,
    frameworks,
    launch,
    liveness,
    offers,
    reconciliation,
    steering,
    tasks,
)
from master.core.effects import Effect, PersistRegistry
from master.core.errors import CallError, ErrorCode, invalid, shown
from master.core.events import update_event
from master.core.faults import CoreFaultError, describe
from master.core.ids import IdGenerator
from master.core.invariants import MasterInvariantError, check
from master.core.model import Agent, AgentPhase, Framework
from master.core.state import MasterState, log
from master.core.validation import check_uuid
from master.registry.state import (
    FrameworkRecord,
    Operation,
    PutFramework,
    RegistryState,
    RemoveFramework,
    UpdateWeights,
)
from protos.resources import Resources
from protos.v1 import agent_internal_pb2, mesos_pb2, scheduler_pb2

__all__ = ["Master", "make_master_info"]

_Call = scheduler_pb2.Call
_CallHandler = Callable[[MasterState, Framework, scheduler_pb2.Call, float], None]


def make_master_info(
    master_id: str, hostname: str, port: int, version: str = ""
) -> mesos_pb2.MasterInfo:
    """The MasterInfo sent to frameworks and agents (``ip`` in network byte order, as Mesos)."""
    info = mesos_pb2.MasterInfo(id=master_id, hostname=hostname, port=port, version=version)
    info.address.hostname = hostname
    info.address.port = port
    try:
        packed = socket.inet_aton(hostname)
    except OSError:
        packed = None
    if packed is not None:
        info.ip = int.from_bytes(packed, "little")  # The bytes in network order, read natively.
        info.address.ip = hostname
    info.pid = f"master@{hostname}:{port}"
    return info


def _teardown(state: MasterState, fw: Framework, call: scheduler_pb2.Call, now: float) -> None:
    frameworks.remove_framework(state, fw, now, "torn down by its scheduler")


def _request(state: MasterState, fw: Framework, call: scheduler_pb2.Call, now: float) -> None:
    # Accepted and ignored, as Mesos's hierarchical allocator ignores requests.
    if not call.HasField("request"):
        raise invalid("request is required in a REQUEST call")


def _inverse_offers(
    state: MasterState, fw: Framework, call: scheduler_pb2.Call, now: float
) -> None:
    # Emporion makes no inverse offers (no maintenance schedules yet): every id is unknown,
    # and unknown ids are skipped as Mesos skips rescinded ones.
    field: Literal["accept_inverse_offers", "decline_inverse_offers"] = (
        "accept_inverse_offers"
        if call.type == _Call.ACCEPT_INVERSE_OFFERS
        else "decline_inverse_offers"
    )
    if not call.HasField(field):
        raise invalid(f"{field} is required in a {_Call.Type.Name(call.type)} call")


def _acknowledge_operation(
    state: MasterState, fw: Framework, call: scheduler_pb2.Call, now: float
) -> None:
    if not call.HasField("acknowledge_operation_status"):
        raise invalid("acknowledge_operation_status is required")
    check_uuid(call.acknowledge_operation_status.uuid, "acknowledge_operation_status.uuid")
    raise CallError(
        ErrorCode.NOT_FOUND,
        "acknowledge_operation_status: no such operation status update (operation feedback is"
        " not supported)",
    )


def _reconcile_operations(
    state: MasterState, fw: Framework, call: scheduler_pb2.Call, now: float
) -> None:
    if not call.HasField("reconcile_operations"):
        raise invalid("reconcile_operations is required in a RECONCILE_OPERATIONS call")
    for i, item in enumerate(call.reconcile_operations.operations):
        if not item.operation_id.value:
            raise invalid(f"reconcile_operations.operations[{i}].operation_id is required")
    for item in call.reconcile_operations.operations:
        event = scheduler_pb2.Event(type=scheduler_pb2.Event.UPDATE_OPERATION_STATUS)
        status = event.update_operation_status.status
        status.operation_id.CopyFrom(item.operation_id)
        status.state = mesos_pb2.OPERATION_UNKNOWN
        status.message = "Reconciliation: operation is unknown"
        if item.HasField("agent_id"):
            status.agent_id.CopyFrom(item.agent_id)
        state.send_event(fw, event)


def _counted(handler: _CallHandler, name: str) -> _CallHandler:
    """``handler`` counting its calls as Mesos's ``master/valid_<name>`` or, when refused,
    ``master/invalid_<name>``."""

    def counted(state: MasterState, fw: Framework, call: scheduler_pb2.Call, now: float) -> None:
        try:
            handler(state, fw, call, now)
        except CallError:
            state.history.count(f"master/invalid_{name}")
            raise
        state.history.count(f"master/valid_{name}")

    return counted


_HANDLERS: dict[int, _CallHandler] = {
    _Call.TEARDOWN: _teardown,
    _Call.ACCEPT: launch.accept,
    _Call.DECLINE: launch.decline,
    _Call.ACCEPT_INVERSE_OFFERS: _inverse_offers,
    _Call.DECLINE_INVERSE_OFFERS: _inverse_offers,
    _Call.REVIVE: lambda s, fw, c, now: frameworks.revive(s, fw, c),
    _Call.SUPPRESS: lambda s, fw, c, now: frameworks.suppress(s, fw, c),
    _Call.KILL: tasks.kill,
    _Call.SHUTDOWN: lambda s, fw, c, now: tasks.shutdown_executor(s, fw, c),
    _Call.ACKNOWLEDGE: _counted(
        lambda s, fw, c, now: tasks.acknowledge(s, fw, c), "status_update_acknowledgements"
    ),
    _Call.ACKNOWLEDGE_OPERATION_STATUS: _acknowledge_operation,
    _Call.RECONCILE: reconciliation.reconcile,
    _Call.RECONCILE_OPERATIONS: _reconcile_operations,
    _Call.MESSAGE: _counted(
        lambda s, fw, c, now: tasks.framework_message(s, fw, c), "framework_to_executor_messages"
    ),
    _Call.REQUEST: _request,
    _Call.UPDATE_FRAMEWORK: frameworks.update_framework,
}


class Master:
    """Master is the state machine of one master (see the module docstring).

    ``recover`` must be called once, before anything else, with the registry's content.
    """

    def __init__(
        self,
        config: MasterConfig,
        *,
        ids: IdGenerator | None = None,
        master_info: mesos_pb2.MasterInfo | None = None,
        allocator: HierarchicalAllocator | None = None,
    ) -> None:
        ids = ids or IdGenerator()
        if master_info is None:
            master_info = make_master_info(
                ids.master_id, config.hostname or config.host, config.port
            )
        self.state = MasterState(config, master_info, ids, allocator)
        self._recorded: dict[str, FrameworkRecord] = {}
        """Each framework's record as the registry holds it once the writes asked for are done."""

    # -- effects ------------------------------------------------------------------------------

    def _effects(self) -> list[Effect]:
        """The effects gathered, without framework records the registry already holds.

        Every later effect waits behind a registry write, so one that changes nothing (a
        scheduler resubscribing with the same FrameworkInfo to a framework recorded as
        subscribed) would only delay them; Mesos skips such registrar operations too.
        """
        effects = self.state.take_effects()
        if not any(type(effect) is PersistRegistry for effect in effects):
            return effects
        kept: list[Effect] = []
        for effect in effects:
            if isinstance(effect, PersistRegistry):
                operations = tuple(op for op in effect.operations if self._changes(op))
                if not operations:
                    continue
                if len(operations) != len(effect.operations):
                    kept.append(PersistRegistry(operations))
                    continue
            kept.append(effect)
        return kept

    def _changes(self, operation: Operation) -> bool:
        """Whether ``operation`` changes the registry (remembering the records it writes)."""
        if isinstance(operation, PutFramework):
            record = operation.record
            old = self._recorded.get(record.framework_id)
            if (
                old is not None
                and old.disconnected_at == record.disconnected_at
                and old.info == record.info
            ):
                return False
            self._recorded[record.framework_id] = record
        elif isinstance(operation, RemoveFramework):
            self._recorded.pop(operation.framework_id, None)
        return True

    # -- faults (see master.core.faults) ------------------------------------------------------

    def _guard(
        self, what: Callable[[], str], action: Callable[[], object], now: float
    ) -> list[Effect]:
        """Run ``action``: its effects; a CallError as raised; a CoreFaultError for any other."""
        try:
            action()
        except CallError:
            raise
        except Exception as error:
            raise self._fault(what(), error, now) from error
        self.state.flush_releases(now)
        return self._effects()

    def _fault(self, what: str, error: Exception, now: float) -> CoreFaultError:
        state = self.state
        state.faults += 1
        state.flush_releases(now)
        log.error("the core failed on the %s", what, exc_info=error)
        problems = check(state)
        if problems:
            log.error("invariants broken after that failure: %s", "; ".join(problems))
        return CoreFaultError(what, error, self._effects())

    def _agent_message_fault(
        self,
        agent: Agent,
        message: agent_internal_pb2.AgentMessage,
        error: Exception,
        now: float,
    ) -> None:
        """One agent message failed: log it, and still forward a status update it carried."""
        state = self.state
        state.faults += 1
        log.error(
            "the core failed on a message from agent %s: %s",
            agent.agent_id,
            describe(message),
            exc_info=error,
        )
        if message.HasField("status_update"):
            fw = state.frameworks.get(message.status_update.framework_id.value)
            if fw is not None:
                state.send_event(fw, update_event(message.status_update.status))

    # -- properties ---------------------------------------------------------------------------

    @property
    def master_id(self) -> str:
        """This master's id (a UUID)."""
        return self.state.ids.master_id

    @property
    def master_info(self) -> mesos_pb2.MasterInfo:
        """The MasterInfo frameworks and agents are given."""
        return self.state.master_info

    @property
    def allocation_wanted(self) -> bool:
        """Whether something changed that an allocation cycle could act on."""
        return self.state.allocation_wanted

    def next_deadline(self) -> float | None:
        """When the earliest timer falls due (None if none)."""
        return self.state.timers.next_due()

    def framework(self, framework_id: str) -> Framework | None:
        """A registered framework, or None."""
        return self.state.frameworks.get(framework_id)

    def agent(self, agent_id: str) -> Agent | None:
        """A known agent, or None."""
        return self.state.agents.get(agent_id)

    # -- start --------------------------------------------------------------------------------

    def recover(self, registry: RegistryState, now: float) -> list[Effect]:
        """Take up what the registry holds: frameworks, agents (to reregister), weights, quota."""
        state = self.state
        config = state.config
        self._recorded = dict(registry.frameworks)
        for record in registry.frameworks.values():
            frameworks.recover_framework(state, record, config.agent_reregister_timeout, now)
        for agent_id, info in registry.agents.items():
            reserved = Resources.from_protos(registry.reservations.get(agent_id, ()))
            agent = Agent(agent_id, info, Resources.EMPTY, AgentPhase.RECOVERING, reserved)
            agent.principal = registry.agent_principals.get(agent_id)
            state.agents[agent_id] = agent
            state.recovering_agents += 1
            state.timers.set(("reregister", agent_id), now + config.agent_reregister_timeout)
        for agent_id, entry in registry.unreachable.items():
            reserved = Resources.from_protos(registry.reservations.get(agent_id, ()))
            agent = Agent(agent_id, entry.info, Resources.EMPTY, AgentPhase.UNREACHABLE, reserved)
            agent.unreachable_at = entry.unreachable_at
            agent.principal = registry.agent_principals.get(agent_id)
            state.agents[agent_id] = agent
        state.gone_agents.update(registry.gone)
        expected = len(registry.agents)  # No offers on a partial view while they come back:
        state.allocator.pause_for_recovery(expected, now, config.agent_reregister_timeout)
        for framework_id in registry.completed_frameworks:  # Oldest first, as remembered.
            state.remember_completed(framework_id)
        weights = dict(registry.weights)
        changed = {r: w for r, w in config.weights.items() if weights.get(r) != w}
        weights.update(changed)
        if weights:
            state.allocator.update_weights(weights)
        if changed:
            state.persist(UpdateWeights(changed))
        for role, quota in registry.quotas.items():
            state.allocator.update_quota(
                role,
                Resources.scalars(**{n: s.value for n, s in quota.guarantees.items()}),
                Resources.scalars(**{n: s.value for n, s in quota.limits.items()}),
                force=True,
            )
        log.info(
            "recovered %d frameworks, %d agents to reregister, %d unreachable agents",
            len(registry.frameworks),
            len(registry.agents),
            len(registry.unreachable),
        )
        return self._effects()

    # -- frameworks ---------------------------------------------------------------------------

    def subscribe(self, stream_id: str, call: scheduler_pb2.Call, now: float) -> list[Effect]:
        """SUBSCRIBE on the new stream ``stream_id``. Raises CallError."""
        if call.type != _Call.SUBSCRIBE:
            raise invalid(f"type must be SUBSCRIBE, not {_Call.Type.Name(call.type)}")
        return self._guard(
            lambda: f"SUBSCRIBE call: {describe(call)}",
            lambda: frameworks.subscribe(self.state, stream_id, call, now),
            now,
        )

    def _caller(self, stream_id: str | None, call: scheduler_pb2.Call) -> Framework:
        state = self.state
        framework_id = call.framework_id.value
        if not framework_id:
            raise invalid("framework_id is required")
        fw = state.frameworks.get(framework_id)
        if fw is None:
            if framework_id in state.completed:
                raise CallError(
                    ErrorCode.FAILED_PRECONDITION, f"framework {framework_id} was torn down"
                )
            raise CallError(
                ErrorCode.FAILED_PRECONDITION,
                f"framework {shown(framework_id)} is not subscribed; SUBSCRIBE first",
            )
        if not stream_id:
            raise invalid(
                "the 'mesos-stream-id' metadata is required (the id sent with SUBSCRIBE's"
                " response headers)"
            )
        if not fw.connected:
            raise CallError(
                ErrorCode.FAILED_PRECONDITION,
                f"framework {framework_id} is not subscribed (its subscription ended);"
                " SUBSCRIBE again",
            )
        if fw.stream_id != stream_id:
            # Superseded stream ids are not remembered, so the message cannot tell an old
            # subscription from a made-up id; it says both, quoting a bounded prefix.
            raise CallError(
                ErrorCode.PERMISSION_DENIED,
                f"stream {shown(stream_id)} is not the current subscription of framework"
                f" {framework_id} (a SUBSCRIBE superseded it, or it never was one)",
            )
        return fw

    def call(self, stream_id: str | None, call: scheduler_pb2.Call, now: float) -> list[Effect]:
        """Any call but SUBSCRIBE, from subscription ``stream_id``. Raises CallError."""
        handler = _HANDLERS.get(call.type)
        if handler is None:
            name = _Call.Type.Name(call.type) if call.type in _Call.Type.values() else call.type
            raise invalid(f"type {name} is not a call this method takes")
        fw = self._caller(stream_id, call)
        return self._guard(
            lambda: (
                f"{_Call.Type.Name(call.type)} call of framework {fw.framework_id}:"
                f" {describe(call)}"
            ),
            lambda: handler(self.state, fw, call, now),
            now,
        )

    def subscription_closed(self, stream_id: str, now: float) -> list[Effect]:
        """A subscription stream ended (the scheduler went away, or it was closed)."""
        return self._guard(
            lambda: f"end of subscription {stream_id}",
            lambda: frameworks.stream_closed(self.state, stream_id, now),
            now,
        )

    # -- agents -------------------------------------------------------------------------------

    def agent_connected(
        self,
        connection_id: str,
        message: agent_internal_pb2.AgentMessage,
        now: float,
        principal: str | None = None,
    ) -> list[Effect]:
        """The first message of a new agent connection: RegisterAgent or ReregisterAgent.

        ``principal``: who the edge authenticated (None: nobody); it becomes the owner of a new
        agent's id, or of a reregistering one's that has none recorded (the edge has refused
        any other principal, see :mod:`master.auth`)."""
        state = self.state
        kind = message.WhichOneof("payload")

        def connect() -> None:
            if kind == "register_agent":
                agents.register(state, connection_id, message.register_agent, now, principal)
            elif kind == "reregister_agent":
                agents.reregister(state, connection_id, message.reregister_agent, now, principal)
            else:
                agents.refuse(
                    state,
                    connection_id,
                    f"the first message must register or reregister, not {kind}",
                )

        return self._guard(lambda: f"{kind} message: {describe(message)}", connect, now)

    def agent_message(
        self, connection_id: str, message: agent_internal_pb2.AgentMessage, now: float
    ) -> list[Effect]:
        """A later message on an agent connection (ignored if the connection was replaced)."""
        return self.agent_messages(connection_id, (message,), now)

    def agent_messages(
        self,
        connection_id: str,
        messages: Iterable[agent_internal_pb2.AgentMessage],
        now: float,
    ) -> list[Effect]:
        """Later messages on an agent connection, in order (a batch costs less than each alone:
        resources freed by a run of status updates go back to the allocator together)."""
        state = self.state
        for message in messages:
            agent_id = state.connections.get(connection_id)
            if agent_id is None:
                break  # The connection was closed or replaced meanwhile.
            agent = state.agents[agent_id]
            try:
                if message.HasField("status_update"):
                    tasks.status_update(state, agent, message.status_update, now)
                else:
                    state.flush_releases(now)
                    self._agent_message(agent, message, now)
            except Exception as error:  # A bug: skip this message only (see master.core.faults).
                self._agent_message_fault(agent, message, error, now)
        state.flush_releases(now)
        return self._effects()

    def _agent_message(
        self, agent: Agent, message: agent_internal_pb2.AgentMessage, now: float
    ) -> None:
        state = self.state
        agent_id = agent.agent_id
        kind = message.WhichOneof("payload")
        if kind == "pong":
            liveness.pong(state, agent, message.pong.seq)
        elif kind == "executor_to_framework":
            tasks.executor_message(state, agent, message.executor_to_framework)
        elif kind == "exited_executor":
            agents.exited_executor(state, agent, message.exited_executor, now)
        elif kind == "update_resources":
            agents.update_resources(state, agent, message.update_resources, now)
        elif kind == "launch_refused":
            tasks.launch_refused(state, agent, message.launch_refused, now)
        elif kind == "unregister_agent":
            agents.unregister(state, agent, message.unregister_agent.message or "unregistered", now)
        elif kind in ("register_agent", "reregister_agent"):
            reply = agent_internal_pb2.MasterMessage()
            reply.error.message = f"{kind} is only valid as the first message of a connection"
            state.send_to_agent(agent, reply)
        else:
            log.debug("agent %s sent a message the master does not know (%s)", agent_id, kind)

    def agent_protocol_error(self, connection_id: str, message: str, now: float) -> list[Effect]:
        """The agent connection carried something that is not an agent message: tell the agent
        ``message`` and close that connection (after whatever is already queued for it)."""
        agents.refuse(self.state, connection_id, message)
        return self._effects()

    def agent_disconnected(self, connection_id: str, now: float) -> list[Effect]:
        """An agent connection ended."""
        return self._guard(
            lambda: f"end of agent connection {connection_id}",
            lambda: liveness.connection_closed(self.state, connection_id, now),
            now,
        )

    # -- operator (master.core.steering; each raises CallError and then changes nothing) --------

    def teardown_framework(self, framework_id: str, now: float) -> list[Effect]:
        """The operator's TEARDOWN of a framework."""
        return self._guard(
            lambda: f"operator TEARDOWN of {framework_id!r}",
            lambda: steering.teardown(self.state, framework_id, now),
            now,
        )

    def update_weights(self, weights: list[tuple[str, float]], now: float) -> list[Effect]:
        """The operator's UPDATE_WEIGHTS: (role, weight) pairs."""
        return self._guard(
            lambda: f"operator UPDATE_WEIGHTS {weights!r}",
            lambda: steering.update_weights(self.state, weights),
            now,
        )

    def update_quota(
        self, changes: list[steering.QuotaChange], now: float, *, force: bool = False
    ) -> list[Effect]:
        """The operator's UPDATE_QUOTA of some roles (all or none)."""
        return self._guard(
            lambda: f"operator UPDATE_QUOTA {changes!r}",
            lambda: steering.update_quota(self.state, changes, force=force),
            now,
        )

    def mark_agent_gone(self, agent_id: str, now: float) -> list[Effect]:
        """The operator's MARK_AGENT_GONE."""
        return self._guard(
            lambda: f"operator MARK_AGENT_GONE of {agent_id!r}",
            lambda: steering.mark_agent_gone(self.state, agent_id, now),
            now,
        )

    # -- time ---------------------------------------------------------------------------------

    def tick(self, now: float) -> list[Effect]:
        """Fire every timer due at ``now``: pings, heartbeats, failovers, offer timeouts."""
        state = self.state
        for kind, key in state.timers.pop_due(now):
            try:
                if kind == "ping":
                    if liveness.ping_due(state, key, now):
                        agent = state.agents[key]
                        agents.mark_unreachable(state, agent, now, "health check timed out")
                elif kind == "heartbeat":
                    frameworks.heartbeat_due(state, key, now)
                elif kind == "offer":
                    offers.offer_timed_out(state, key, now)
                elif kind == "failover":
                    frameworks.failover_due(state, key, now)
                elif kind == "reregister":
                    agents.reregister_timed_out(state, key, now)
            except Exception as error:  # A bug: this timer only; the others still fire.
                state.out.extend(self._fault(f"{kind} timer of {key}", error, now).effects)
        return self._effects()

    def allocate(self, now: float) -> list[Effect]:
        """Run an allocation cycle and make offers from it."""
        state = self.state
        state.allocation_wanted = False
        return self._guard(
            lambda: "allocation cycle",
            lambda: offers.make_offers(state, state.allocator.allocate(now), now),
            now,
        )

    # -- checks -------------------------------------------------------------------------------

    def validate(self) -> None:
        """Check every invariant; raise MasterInvariantError listing what is broken."""
        problems = check(self.state)
        if problems:
            raise MasterInvariantError(problems)
