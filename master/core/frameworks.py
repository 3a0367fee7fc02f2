"""Frameworks: subscribe and fail over, disconnect, failover timeout, teardown, updates.

A SUBSCRIBE without a framework id registers a new framework; with one, it fails over (or
reconnects) a known framework, and a live subscription it replaces gets ERROR "Framework failed
over" and is closed. Outstanding offers of a failed-over framework are taken back silently (its
new scheduler never saw them), as Mesos does. When the stream breaks the framework is
DISCONNECTED: its offers are rescinded and it is torn down ``failover_timeout`` later unless it
subscribes again. Teardown shuts its executors and tasks down on every agent and removes it at
once (Mesos's ``removeFramework``).

A SUBSCRIBE naming a framework id the master does not know registers it under that id, as Mesos
does: after a failover a scheduler can come back before the agents that report its tasks (and a
memory registry forgets everything on restart). Such an id can be one the master would generate
next, so new ids skip every id in use or remembered as torn down (:meth:`IdGenerator.framework_id`):
a self-chosen id can never make a later registration fail.
"""

from __future__ import annotations

from master.core.errors import CallError, ErrorCode, invalid, shown
from master.core.events import heartbeat_event, subscribed_event
from master.core.model import Framework, FrameworkPhase, capability_names
from master.core.offers import drop_offer, remove_offer, rescind_offers
from master.core.state import MasterState, log
from master.core.validation import (
    check_framework_info,
    check_framework_update,
    check_id,
    check_roles_subset,
    min_allocatable_of,
)
from master.registry.state import FrameworkRecord, PutFramework, RemoveFramework
from protos.v1 import agent_internal_pb2, mesos_pb2, scheduler_pb2

__all__ = [
    "adopt_framework",
    "failover_due",
    "heartbeat_due",
    "recover_framework",
    "remove_framework",
    "revive",
    "stream_closed",
    "subscribe",
    "suppress",
    "update_framework",
]

FAILED_OVER = "Framework failed over"


def _record(fw: Framework) -> PutFramework:
    return PutFramework(FrameworkRecord(fw.info, fw.disconnected_at))


def _check_no_constraints(
    payload: scheduler_pb2.Call.Subscribe | scheduler_pb2.Call.UpdateFramework, where: str
) -> None:
    if payload.HasField("offer_constraints") and payload.offer_constraints.role_constraints:
        raise invalid(f"{where}.offer_constraints: offer constraints are not supported yet")


def subscribe(state: MasterState, stream_id: str, call: scheduler_pb2.Call, now: float) -> str:
    """SUBSCRIBE on a new stream ``stream_id``; returns the framework id. Raises CallError."""
    if not call.HasField("subscribe"):
        raise invalid("subscribe is required in a SUBSCRIBE call")
    payload = call.subscribe
    if not payload.HasField("framework_info"):
        raise invalid("subscribe.framework_info is required")
    info = payload.framework_info
    roles = check_framework_info(info, "subscribe.framework_info")
    _check_no_constraints(payload, "subscribe")
    suppressed = check_roles_subset(payload.suppressed_roles, roles, "subscribe.suppressed_roles")
    call_id = call.framework_id.value if call.HasField("framework_id") else ""
    info_id = info.id.value if info.HasField("id") else ""
    if call_id and info_id and call_id != info_id:
        raise invalid(
            f"framework_id {shown(call_id)} differs from subscribe.framework_info.id"
            f" {shown(info_id)}"
        )
    framework_id = call_id or info_id
    if not framework_id:
        framework_id = state.ids.framework_id(
            lambda i: i in state.frameworks or i in state.completed
        )
        info.id.value = framework_id
        _register(
            state, framework_id, info, roles, suppressed=suppressed, stream_id=stream_id, now=now
        )
        return framework_id
    try:
        check_id(framework_id, "framework_id")
    except ValueError as error:
        raise invalid(str(error)) from None
    if framework_id in state.completed:
        raise CallError(
            ErrorCode.FAILED_PRECONDITION,
            f"framework {framework_id} was torn down; subscribe without a framework_id"
            " to register anew",
        )
    info.id.value = framework_id
    fw = state.frameworks.get(framework_id)
    if fw is None:
        # Unknown id (a master that lost its registry, as Mesos after a failover): accept it.
        _register(
            state, framework_id, info, roles, suppressed=suppressed, stream_id=stream_id, now=now
        )
    else:
        _failover(state, fw, info, roles, suppressed=suppressed, stream_id=stream_id, now=now)
    return framework_id


def _register(
    state: MasterState,
    framework_id: str,
    info: mesos_pb2.FrameworkInfo,
    roles: frozenset[str],
    *,
    suppressed: frozenset[str],
    stream_id: str,
    now: float,
) -> None:
    try:
        state.allocator.add_framework(
            framework_id,
            roles,
            capability_names(info),
            now,
            suppressed_roles=suppressed,
            min_allocatable=min_allocatable_of(info),
        )
    except ValueError as error:
        raise invalid(f"subscribe.framework_info: {error}") from None
    fw = Framework(framework_id, info, roles, registered_at=now, suppressed_roles=suppressed)
    fw.set_info(info, roles)
    state.frameworks[framework_id] = fw
    log.info("framework %s (%s) registered with roles %s", framework_id, info.name, sorted(roles))
    _connect(state, fw, stream_id, now)
    state.history.framework_added(fw)


def _failover(
    state: MasterState,
    fw: Framework,
    info: mesos_pb2.FrameworkInfo,
    roles: frozenset[str],
    *,
    suppressed: frozenset[str],
    stream_id: str,
    now: float,
) -> None:
    check_framework_update(fw.info, info, "subscribe.framework_info")
    try:
        state.allocator.update_framework(
            fw.framework_id,
            roles,
            capability_names(info),
            suppressed_roles=suppressed,
            min_allocatable=min_allocatable_of(info),
        )
    except ValueError as error:
        raise invalid(f"subscribe.framework_info: {error}") from None
    if fw.stream_id is not None:
        log.info("framework %s failed over to a new subscription", fw.framework_id)
        state.close_stream(fw.stream_id, FAILED_OVER)
        fw.stream_id = None
    rescind_offers(state, set(fw.offers), now, notify=False)
    changed = fw.info != info
    fw.set_info(info, roles)
    fw.suppressed_roles = suppressed
    _connect(state, fw, stream_id, now)
    if changed:
        _tell_agents(state, fw)
    state.history.framework_updated(fw)


def _connect(state: MasterState, fw: Framework, stream_id: str, now: float) -> None:
    """Bind the stream, activate in the allocator, persist, SUBSCRIBED, start heartbeats."""
    fw.phase = FrameworkPhase.CONNECTED
    fw.stream_id = stream_id
    fw.disconnected_at = None
    fw.failover_deadline = None
    state.streams[stream_id] = fw.framework_id
    state.timers.cancel(("failover", fw.framework_id))
    state.allocator.activate_framework(fw.framework_id)
    state.persist(_record(fw))
    state.send_event(
        fw, subscribed_event(fw.framework_id, state.config.heartbeat_interval, state.master_info)
    )
    state.timers.set(("heartbeat", fw.framework_id), now + state.config.heartbeat_interval)
    state.allocation_wanted = True


def stream_closed(state: MasterState, stream_id: str, now: float) -> None:
    """A subscription stream ended; if it was the framework's current one, it disconnects."""
    framework_id = state.streams.pop(stream_id, None)
    if framework_id is None:
        return
    fw = state.frameworks[framework_id]
    fw.stream_id = None
    log.info("framework %s disconnected", framework_id)
    _disconnect(state, fw, now, now)


def _disconnect(state: MasterState, fw: Framework, since: float, now: float) -> None:
    """Make ``fw`` DISCONNECTED as of ``since``, and start its failover timer."""
    fw.phase = FrameworkPhase.DISCONNECTED
    rescind_offers(state, set(fw.offers), now, notify=False)
    state.allocator.deactivate_framework(fw.framework_id)
    state.timers.cancel(("heartbeat", fw.framework_id))
    fw.disconnected_at = since
    fw.failover_deadline = since + fw.info.failover_timeout
    state.persist(_record(fw))
    state.history.framework_updated(fw)
    if fw.failover_deadline <= now:
        remove_framework(state, fw, now, "failover timeout elapsed")
    else:
        state.timers.set(("failover", fw.framework_id), fw.failover_deadline)


def recover_framework(
    state: MasterState, record: FrameworkRecord, grace: float, now: float
) -> None:
    """A framework read from the registry at start: DISCONNECTED until its scheduler returns.

    One that was disconnected when the master stopped keeps its deadline. One that was
    subscribed did not fail: the master did, so its timeout counts from now and is at least
    ``grace`` (the time agents have to reregister), giving its scheduler time to notice. Its
    record stays as it is (subscribed): should this master fail too before the scheduler
    returns, the next one counts again from its own start, as this one does.
    """
    info = mesos_pb2.FrameworkInfo()
    info.CopyFrom(record.info)
    roles = frozenset(info.roles) or frozenset({info.role})
    fw = Framework(record.framework_id, info, roles, registered_at=now)
    fw.set_info(info, roles)
    state.frameworks[fw.framework_id] = fw
    state.allocator.add_framework(
        fw.framework_id,
        roles,
        capability_names(info),
        now,
        min_allocatable=min_allocatable_of(info),
        active=False,
    )
    if record.disconnected_at is not None:
        since = record.disconnected_at
        fw.phase = FrameworkPhase.DISCONNECTED
        fw.disconnected_at = since
        fw.failover_deadline = since + info.failover_timeout
        state.timers.set(("failover", fw.framework_id), fw.failover_deadline)
    else:
        # Nothing is written: the registry already says what the grace follows from (the
        # scheduler was subscribed, so the master failed), and a later leader derives the same
        # grace from it. Writing it would hold every effect behind a registry write as the
        # leader takes office, and make each resubscription write the record back.
        _start_grace(state, fw, grace, now, persist=False)


def adopt_framework(
    state: MasterState, info: mesos_pb2.FrameworkInfo, grace: float, now: float
) -> Framework:
    """A framework an agent reports that the master does not know: keep its tasks running."""
    roles = frozenset(info.roles) or frozenset({info.role})
    fw = Framework(info.id.value, info, roles, registered_at=now)
    fw.set_info(info, roles)
    state.frameworks[fw.framework_id] = fw
    state.allocator.add_framework(fw.framework_id, roles, capability_names(info), now, active=False)
    _start_grace(state, fw, grace, now, persist=True)
    state.history.framework_added(fw)
    log.info("adopted framework %s reported by an agent", fw.framework_id)
    return fw


def _start_grace(
    state: MasterState, fw: Framework, grace: float, now: float, *, persist: bool
) -> None:
    fw.phase = FrameworkPhase.DISCONNECTED
    fw.disconnected_at = now
    fw.failover_deadline = now + max(fw.info.failover_timeout, grace)
    if persist:  # A framework new to the registry (adopted): disconnected from now.
        state.persist(_record(fw))
    state.timers.set(("failover", fw.framework_id), fw.failover_deadline)


def failover_due(state: MasterState, framework_id: str, now: float) -> None:
    """The failover timer fired: tear the framework down if its scheduler is still away."""
    fw = state.frameworks.get(framework_id)
    if fw is not None and not fw.connected:
        log.info("framework %s did not fail over in time; tearing it down", framework_id)
        remove_framework(state, fw, now, "failover timeout elapsed")


def heartbeat_due(state: MasterState, framework_id: str, now: float) -> None:
    """Send HEARTBEAT to a subscribed framework and schedule the next one."""
    fw = state.frameworks.get(framework_id)
    if fw is not None and fw.connected:
        state.send_event(fw, heartbeat_event())
        state.timers.set(("heartbeat", framework_id), now + state.config.heartbeat_interval)


def remove_framework(state: MasterState, fw: Framework, now: float, reason: str) -> None:
    """Tear a framework down: shut it down on its agents, drop its offers, tasks and executors."""
    framework_id = fw.framework_id
    if fw.stream_id is not None:
        state.close_stream(fw.stream_id)
        fw.stream_id = None
    for offer_id in sorted(fw.offers):
        drop_offer(state, state.offers[offer_id], rescind=False)
    agent_ids = {task.agent_id for task in fw.tasks.values()}
    agent_ids.update(agent_id for agent_id, _ in fw.executors)
    shutdown = agent_internal_pb2.MasterMessage()
    shutdown.shutdown_framework.framework_id.value = framework_id
    for agent_id in sorted(agent_ids):
        agent = state.agents.get(agent_id)
        if agent is None:
            continue
        state.send_to_agent(agent, shutdown)
        for key in [k for k in agent.tasks if k[0] == framework_id]:
            del agent.tasks[key]
        for key in [k for k in agent.executors if k[0] == framework_id]:
            del agent.executors[key]
    state.history.framework_removed(fw, now, reason)
    fw.tasks.clear()
    fw.executors.clear()
    state.allocator.remove_framework(framework_id)
    del state.frameworks[framework_id]
    state.remember_completed(framework_id)
    state.timers.cancel(("heartbeat", framework_id))
    state.timers.cancel(("failover", framework_id))
    state.persist(RemoveFramework(framework_id, now, state.config.max_completed_frameworks))
    state.allocation_wanted = True
    log.info("framework %s removed: %s", framework_id, reason)


def update_framework(
    state: MasterState, fw: Framework, call: scheduler_pb2.Call, now: float
) -> None:
    """UPDATE_FRAMEWORK: replace info, roles and suppressed roles all at once (or nothing)."""
    if not call.HasField("update_framework"):
        raise invalid("update_framework is required in an UPDATE_FRAMEWORK call")
    payload = call.update_framework
    if not payload.HasField("framework_info"):
        raise invalid("update_framework.framework_info is required")
    info = payload.framework_info
    where = "update_framework.framework_info"
    if info.id.value != fw.framework_id:
        raise invalid(
            f"{where}.id {shown(info.id.value)} must be the framework's id {fw.framework_id!r}"
        )
    roles = check_framework_info(info, where)
    check_framework_update(fw.info, info, where)
    _check_no_constraints(payload, "update_framework")
    suppressed = check_roles_subset(
        payload.suppressed_roles, roles, "update_framework.suppressed_roles"
    )
    allocator = state.allocator
    try:
        allocator.update_framework(
            fw.framework_id,
            roles,
            capability_names(info),
            suppressed_roles=suppressed,
            min_allocatable=min_allocatable_of(info),
        )
    except ValueError as error:
        raise invalid(f"{where}: {error}") from None
    # Roles leaving the suppressed set have their filters cleared (Mesos's UPDATE_FRAMEWORK).
    unsuppressed = (fw.suppressed_roles - suppressed) & roles
    if unsuppressed:
        allocator.revive(fw.framework_id, sorted(unsuppressed))
    removed = fw.roles - roles
    for offer_id in sorted(fw.offers):
        offer = state.offers[offer_id]
        if offer.role in removed:
            remove_offer(state, offer, now, rescind=True)
    fw.set_info(info, roles)
    fw.suppressed_roles = suppressed
    state.persist(_record(fw))
    _tell_agents(state, fw)
    state.allocation_wanted = True
    state.history.framework_updated(fw)


def _tell_agents(state: MasterState, fw: Framework) -> None:
    """Send the framework's new info to every agent running something of it."""
    agent_ids = {task.agent_id for task in fw.tasks.values()}
    agent_ids.update(agent_id for agent_id, _ in fw.executors)
    message = agent_internal_pb2.MasterMessage()
    message.update_framework.framework_id.value = fw.framework_id
    message.update_framework.framework_info.CopyFrom(fw.info)
    for agent_id in sorted(agent_ids):
        agent = state.agents.get(agent_id)
        if agent is not None:
            state.send_to_agent(agent, message)


def suppress(state: MasterState, fw: Framework, call: scheduler_pb2.Call) -> None:
    """SUPPRESS: no more offers for these roles (all when none are named, or no payload at all,
    as Mesos reads a SUPPRESS without ``suppress``)."""
    roles = check_roles_subset(call.suppress.roles, fw.roles, "suppress.roles") or fw.roles
    state.allocator.suppress(fw.framework_id, sorted(roles))
    fw.suppressed_roles = fw.suppressed_roles | roles


def revive(state: MasterState, fw: Framework, call: scheduler_pb2.Call) -> None:
    """REVIVE: clear the filters of these roles (all when none, or no payload at all, as Mesos
    reads a REVIVE without ``revive``) and stop suppressing them."""
    roles = check_roles_subset(call.revive.roles, fw.roles, "revive.roles") or fw.roles
    state.allocator.revive(fw.framework_id, sorted(roles))
    fw.suppressed_roles = fw.suppressed_roles - roles
    state.allocation_wanted = True
