"""Agents: registration, reregistration, unreachability, removal.

Liveness (pings, pongs, the ping schedule, disconnection and the unreachability deadline of a
silent agent) is :mod:`master.core.liveness`: this module starts and stops an agent's pinging
as it (re)registers and leaves, and :func:`mark_unreachable` is what follows a silence.

A reregistering agent is authoritative for what it runs: the master takes it out of the
allocator, rebuilds its tasks and executors from the report (adding tasks it did not know, for
instance after a master restart, and keeping their resources as used), asks the agent about
tasks it expected but the agent did not report (``AgentReregistered.reconciliations``), and adds
it back. Tasks are never killed because an agent was away.
"""

from __future__ import annotations

from collections.abc import Callable

from master.core.effects import DisconnectAgent, SendToAgent
from master.core.events import failure_event, master_status, update_event
from master.core.frameworks import adopt_framework
from master.core.history import MAX_STATUSES, status_entry
from master.core.liveness import announce_pings, start_pinging, stop_pinging
from master.core.model import Agent, AgentPhase, Executor, Framework, Task
from master.core.offers import drop_offer, remove_offer
from master.core.state import MasterState, log
from master.core.validation import parse_resources, parse_task_resources
from master.registry.state import (
    AdmitAgent,
    MarkAgentUnreachable,
    RemoveAgent,
    UpdateReservations,
)
from protos.resources import Resources
from protos.v1 import agent_internal_pb2, mesos_pb2

__all__ = [
    "apply_reservations",
    "dynamic_part",
    "exited_executor",
    "mark_unreachable",
    "refuse",
    "register",
    "reregister",
    "reregister_timed_out",
    "unregister",
    "update_resources",
]

_MasterMessage = agent_internal_pb2.MasterMessage
_CAPABILITY_NAME = mesos_pb2.AgentInfo.Capability.Type.Name


def dynamic_part(resources: Resources) -> Resources:
    """The resources whose innermost reservation is dynamic (what an agent checkpoints)."""
    return resources.filter(lambda k: bool(k.reservations) and k.reservations[-1].type == "dynamic")


def apply_reservations(static: Resources, dynamic: Resources) -> Resources:
    """An agent's total: its ``--resources`` with the dynamically reserved part converted.

    Raises ValueError if the reservations do not fit in the static resources.
    """
    source = dynamic
    while True:
        top_dynamic = dynamic_part(source)
        if not top_dynamic:
            break
        source = (source - top_dynamic) + top_dynamic.pop_reservation()
    if not static.contains(source):
        raise ValueError(f"reservations {dynamic} do not fit in the agent's resources {static}")
    return static - source + dynamic


def refuse(state: MasterState, connection_id: str, message: str, *, shutdown: bool = False) -> None:
    """Answer a connection that cannot become an agent session, and close it."""
    reply = _MasterMessage()
    if shutdown:
        reply.shutdown_agent.message = message
    else:
        reply.error.message = message
    state.out.append(SendToAgent("", connection_id, reply))
    state.out.append(DisconnectAgent("", connection_id, message))
    log.warning("refused agent connection %s: %s", connection_id, message)


def run_task_message(fw: Framework, agent: Agent, task: mesos_pb2.TaskInfo) -> _MasterMessage:
    """The RunTask that launches ``task`` of ``fw`` on ``agent`` (the caller adds an executor)."""
    message = _MasterMessage()
    run = message.run_task
    run.framework_info.CopyFrom(fw.info)
    run.framework_id.value = fw.framework_id
    run.task.CopyFrom(task)
    agent.launch_seq += 1
    run.launch_seq = agent.launch_seq
    return message


def _registered_message(state: MasterState, agent_id: str, reregistered: bool) -> _MasterMessage:
    message = _MasterMessage()
    body = message.agent_reregistered if reregistered else message.agent_registered
    body.agent_id.value = agent_id
    body.master_info.CopyFrom(state.master_info)
    announce_pings(state.config, body)
    return message


def _bind(state: MasterState, agent: Agent, connection_id: str, now: float) -> None:
    agent.connection_id = connection_id
    agent.phase = AgentPhase.CONNECTED
    agent.unreachable_at = None
    state.connections[connection_id] = agent.agent_id
    start_pinging(state, agent, now)


def _totals(
    info: mesos_pb2.AgentInfo, checkpointed: list[mesos_pb2.Resource], where: str
) -> tuple[Resources, Resources]:
    static = parse_task_resources(info.resources, f"{where}.agent_info.resources")
    dynamic = parse_task_resources(checkpointed, f"{where}.checkpointed_resources")
    if dynamic != dynamic_part(dynamic):
        raise ValueError(f"{where}.checkpointed_resources: only dynamic reservations are kept")
    return apply_reservations(static, dynamic), dynamic


def register(
    state: MasterState,
    connection_id: str,
    message: agent_internal_pb2.RegisterAgent,
    now: float,
    principal: str | None = None,
) -> None:
    """A new agent (or one that lost its state) asks for an id."""
    info = message.agent_info
    if info.HasField("id") and info.id.value:
        refuse(state, connection_id, "register_agent.agent_info.id must not be set; reregister")
        return
    if not info.hostname:
        refuse(state, connection_id, "register_agent.agent_info.hostname is required")
        return
    try:
        total, dynamic = _totals(info, list(message.checkpointed_resources), "register_agent")
    except ValueError as error:
        refuse(state, connection_id, str(error))
        return
    agent_id = state.ids.agent_id()
    info.id.value = agent_id
    capabilities = frozenset(_CAPABILITY_NAME(c.type) for c in message.agent_capabilities)
    agent = Agent(agent_id, info, total, AgentPhase.CONNECTED, dynamic, capabilities)
    agent.registered_at = now
    agent.version = message.version
    agent.principal = principal
    state.agents[agent_id] = agent
    _bind(state, agent, connection_id, now)
    state.allocator.add_agent(agent_id, total, None, capabilities, now)
    agent.in_allocator = True
    state.persist(AdmitAgent(agent_id, info, principal))
    if dynamic:
        state.persist(UpdateReservations(agent_id, tuple(dynamic.to_protos())))
    state.send_to_agent(agent, _registered_message(state, agent_id, reregistered=False))
    state.allocation_wanted = True
    state.history.count("master/slave_registrations")
    state.history.agent_added(agent)
    log.info("agent %s (%s) registered with %s", agent_id, info.hostname, total)


def _task_role(proto: mesos_pb2.Task, fw: Framework) -> str:
    for resource in proto.resources:
        if resource.HasField("allocation_info") and resource.allocation_info.role:
            return resource.allocation_info.role
    return min(fw.roles)


def reregister(
    state: MasterState,
    connection_id: str,
    message: agent_internal_pb2.ReregisterAgent,
    now: float,
    principal: str | None = None,
) -> None:
    """A known agent comes back with what it runs (after a broken connection or master restart)."""
    info = message.agent_info
    agent_id = info.id.value
    if not agent_id:
        refuse(state, connection_id, "reregister_agent.agent_info.id is required")
        return
    if agent_id in state.gone_agents:
        refuse(state, connection_id, f"agent {agent_id} was marked gone", shutdown=True)
        return
    if not info.hostname:
        refuse(state, connection_id, "reregister_agent.agent_info.hostname is required")
        return
    agent = state.agents.get(agent_id)
    checkpointed = list(message.checkpointed_resources)
    # The master's view of the agent's reservations (from the registry) wins over the agent's.
    master_view = agent.reservations if agent is not None else None
    try:
        if master_view is not None:
            static = parse_task_resources(info.resources, "reregister_agent.agent_info.resources")
            total, dynamic = apply_reservations(static, master_view), master_view
        else:
            total, dynamic = _totals(info, checkpointed, "reregister_agent")
        reported = [_parse_task(t, i) for i, t in enumerate(message.tasks)]
    except ValueError as error:
        refuse(state, connection_id, str(error))
        return
    capabilities = frozenset(_CAPABILITY_NAME(c.type) for c in message.agent_capabilities)
    # The registry already admits an agent that is not unreachable, with the info it has: as in
    # Mesos (MESOS-7711), a reregistration with the same info writes nothing. After a failover
    # that spares the new leader rewriting the whole registry again and again while a thousand
    # agents come back, and their answers the wait behind each write.
    claims = principal is not None and (agent is None or agent.principal is None)
    unchanged = (
        agent is not None
        and agent.phase is not AgentPhase.UNREACHABLE
        and agent.info == info
        and not claims
    )
    if agent is None:
        agent = Agent(agent_id, info, total, AgentPhase.CONNECTED, dynamic, capabilities)
        agent.registered_at = now
        state.agents[agent_id] = agent
    else:
        _detach(state, agent)
        if agent.phase is AgentPhase.RECOVERING:
            state.recovering_agents -= 1
            state.timers.cancel(("reregister", agent_id))
        agent.info, agent.total, agent.reservations = info, total, dynamic
        agent.capabilities = capabilities
    agent.version = message.version
    if claims:
        agent.principal = principal
    _bind(state, agent, connection_id, now)
    if not unchanged:
        state.persist(AdmitAgent(agent_id, info, agent.principal))
    reply = _registered_message(state, agent_id, reregistered=True)
    relaunches: list[Task] = []
    shutdown = _rebuild(state, agent, message, reported, reply, relaunches=relaunches, now=now)
    state.send_to_agent(agent, reply)
    for framework_id in sorted(shutdown):
        out = _MasterMessage()
        out.shutdown_framework.framework_id.value = framework_id
        state.send_to_agent(agent, out)
    for task in relaunches:
        assert task.info is not None  # _resendable
        state.send_to_agent(
            agent, run_task_message(state.frameworks[task.framework_id], agent, task.info)
        )
        log.info("agent %s: task %s had not reached it; launching it again", agent_id, task.task_id)
    if master_view is not None and Resources.from_protos(checkpointed) != master_view:
        out = _MasterMessage()
        out.checkpoint_resources.resources.extend(master_view.to_protos())
        state.send_to_agent(agent, out)
    for task in agent.tasks.values():
        if task.kill_pending and not task.terminal:
            task.kill_pending = False
            _send_kill(state, agent, task)
    state.allocation_wanted = True
    state.history.count("master/slave_reregistrations")
    state.history.agent_added(agent)
    log.info("agent %s (%s) reregistered with %d tasks", agent_id, info.hostname, len(reported))


def _send_kill(state: MasterState, agent: Agent, task: Task) -> None:
    out = _MasterMessage()
    out.kill_task.framework_id.value = task.framework_id
    out.kill_task.task_id.value = task.task_id
    state.send_to_agent(agent, out)


def _parse_task(proto: mesos_pb2.Task, index: int) -> tuple[mesos_pb2.Task, Resources]:
    where = f"reregister_agent.tasks[{index}]"
    if not proto.task_id.value or not proto.framework_id.value:
        raise ValueError(f"{where}: task_id and framework_id are required")
    return proto, parse_task_resources(proto.resources, f"{where}.resources")


def _detach(state: MasterState, agent: Agent) -> None:
    """Take an agent out of the allocator (its offers too) before rebuilding it."""
    if agent.connection_id is not None:
        state.disconnect_agent(agent, "the agent reconnected")
    for offer_id in sorted(agent.offers):
        drop_offer(state, state.offers[offer_id], rescind=True)
    if agent.in_allocator:
        state.allocator.remove_agent(agent.agent_id)
        agent.in_allocator = False
    for task in agent.tasks.values():
        task.allocated = False
    for executor in agent.executors.values():
        executor.allocated = False


def _rebuild(
    state: MasterState,
    agent: Agent,
    message: agent_internal_pb2.ReregisterAgent,
    reported: list[tuple[mesos_pb2.Task, Resources]],
    reply: _MasterMessage,
    *,
    relaunches: list[Task],
    now: float,
) -> set[str]:
    """Rebuild an agent's tasks and executors from its report; add it to the allocator.

    Returns the ids of torn-down frameworks the agent still runs (to shut down); the launches
    lost on their way to it (:func:`_resendable`) are added to ``relaunches``.
    """
    grace = state.config.agent_reregister_timeout
    infos = {f.id.value: f for f in message.frameworks}
    shutdown: set[str] = set()
    seen: set[tuple[str, str]] = set()
    relaunch = relaunches

    def framework_of(framework_id: str) -> Framework | None:
        fw = state.frameworks.get(framework_id)
        if fw is None and framework_id not in state.completed:
            info = infos.get(framework_id)
            if info is None:
                info = mesos_pb2.FrameworkInfo(name=framework_id)
                info.id.value = framework_id
            fw = adopt_framework(state, info, grace, now)
        if fw is None:
            shutdown.add(framework_id)
        return fw

    for proto, resources in reported:
        fw = framework_of(proto.framework_id.value)
        if fw is None:
            continue
        task_id = proto.task_id.value
        key = (fw.framework_id, task_id)
        seen.add(key)
        task = fw.tasks.get(task_id)
        if task is None or task.agent_id != agent.agent_id:
            if task is not None:  # Same id on another agent: the report wins.
                state.release_task(task)
                state.forget_task(task)
            task = Task(
                task_id,
                fw.framework_id,
                agent.agent_id,
                proto.executor_id.value if proto.HasField("executor_id") else None,
                _task_role(proto, fw),
                resources,
                allocated=False,  # Decided by _add_to_allocator.
            )
            fw.tasks[task_id] = task
            agent.tasks[key] = task
        task.state = proto.state
        task.unreachable_at = None
        if proto.HasField("status_update_state"):
            task.status_update_state = proto.status_update_state
            task.status_update_uuid = proto.status_update_uuid or None
        if proto.statuses:
            task.latest_status = proto.statuses[-1]
            if not task.statuses:  # Learnt of from the agent (after a master failover).
                task.statuses.extend(status_entry(s) for s in proto.statuses[-MAX_STATUSES:])
    expected: dict[str, list[Task]] = {}
    for key, task in list(agent.tasks.items()):
        if key in seen:
            continue
        if task.terminal:
            state.forget_task(task)
        elif _resendable(state, task):
            relaunch.append(task)
        else:
            expected.setdefault(task.framework_id, []).append(task)
    for framework_id, tasks in sorted(expected.items()):
        reconcile = reply.agent_reregistered.reconciliations.add()
        reconcile.framework_id.value = framework_id
        for task in tasks:
            status = reconcile.statuses.add(state=task.state)
            status.task_id.value = task.task_id
            status.agent_id.value = agent.agent_id
    _rebuild_executors(state, agent, message, framework_of)
    _add_to_allocator(state, agent, now)
    return shutdown


def _resendable(state: MasterState, task: Task) -> bool:
    """Whether a task the agent did not report is a launch lost on its way, to send again.

    The agent checkpoints a task before anything of it runs, and reports every task it has
    checkpointed; a command task still STAGING here that it does not report never reached it
    (the RunTask was in flight on the connection that broke, or the agent died before recording
    it), so nothing of it ran and launching it again runs it once. Mesos answers TASK_LOST
    instead, and the framework must launch it again itself. Tasks with an executor of the
    framework's are not resent (their executor may be gone too), nor tasks being killed.
    """
    fw = state.frameworks.get(task.framework_id)
    return (
        fw is not None
        and task.state == mesos_pb2.TASK_STAGING
        and task.executor_id is None
        and task.info is not None
        and not task.kill_pending
    )


def _rebuild_executors(
    state: MasterState,
    agent: Agent,
    message: agent_internal_pb2.ReregisterAgent,
    lookup: Callable[[str], Framework | None],
) -> None:
    old = agent.executors
    agent.executors = {}
    for framework_id, executor_id in old:
        fw = state.frameworks.get(framework_id)
        if fw is not None:
            fw.executors.pop((agent.agent_id, executor_id), None)
    for index, info in enumerate(message.executor_infos):
        framework_id = info.framework_id.value
        executor_id = info.executor_id.value
        if not framework_id or not executor_id:
            log.warning("agent %s: executor_infos[%d] lacks ids; ignored", agent.agent_id, index)
            continue
        fw = lookup(framework_id)
        if fw is None:
            continue
        try:
            resources = parse_resources(info.resources, f"executor_infos[{index}].resources")
        except ValueError as error:
            log.warning("agent %s: %s; executor ignored", agent.agent_id, error)
            continue
        role = _task_role(mesos_pb2.Task(resources=info.resources), fw)
        executor = Executor(executor_id, framework_id, agent.agent_id, role, resources, info)
        executor.tasks = {
            task_id
            for (f, task_id), task in agent.tasks.items()
            if f == framework_id and task.executor_id == executor_id
        }
        agent.executors[(framework_id, executor_id)] = executor
        fw.executors[(agent.agent_id, executor_id)] = executor


def _add_to_allocator(state: MasterState, agent: Agent, now: float) -> None:
    """Add the agent with what its live tasks and executors use.

    This is the one place that decides, for every task and executor on the agent, whether its
    resources count as allocated: exactly those handed to the allocator here. A task first
    learnt of from the report, already terminal (it ended while the agent was away from this
    master), holds nothing; its retried terminal update must release nothing (issue 10: it
    used to be marked allocated, and releasing it made the allocator refuse every later batch).
    """
    used: dict[str, dict[str, Resources]] = {}
    for task in agent.tasks.values():
        task.allocated = False
    holders: list[Task | Executor] = [t for t in agent.tasks.values() if not t.terminal]
    holders.extend(agent.executors.values())
    for holder in holders:
        by_role = used.setdefault(holder.framework_id, {})
        by_role[holder.role] = by_role.get(holder.role, Resources.EMPTY) + holder.resources
    try:
        state.allocator.add_agent(agent.agent_id, agent.total, used, agent.capabilities, now)
    except ValueError as error:
        # The report does not fit the agent's total: offer nothing of it rather than too much.
        log.error("agent %s: %s; adding it with no free resources", agent.agent_id, error)
        state.allocator.add_agent(agent.agent_id, agent.total, None, agent.capabilities, now)
        for holder in holders:
            holder.allocated = False
        agent.in_allocator = True
        state.allocator.deactivate_agent(agent.agent_id)
        return
    for holder in holders:
        holder.allocated = True
    agent.in_allocator = True


def _lose_tasks(
    state: MasterState,
    agent: Agent,
    now: float,
    message: str,
    *,
    gone: bool,
    by_operator: bool = False,
) -> None:
    """Tell frameworks the agent's tasks are lost (or unreachable, if partition-aware; gone by
    operator, if partition-aware and the operator marked the agent gone, as in Mesos)."""
    for task in list(agent.tasks.values()):
        fw = state.frameworks.get(task.framework_id)
        task.allocated = False
        if fw is None or task.terminal:
            state.forget_task(task)
            continue
        if fw.partition_aware and not gone:
            new_state = mesos_pb2.TASK_UNREACHABLE
            task.unreachable_at = now
        elif fw.partition_aware and by_operator:
            new_state = mesos_pb2.TASK_GONE_BY_OPERATOR
        else:
            new_state = mesos_pb2.TASK_LOST
        status = master_status(
            task.task_id,
            new_state,
            mesos_pb2.TaskStatus.REASON_AGENT_REMOVED_BY_OPERATOR
            if by_operator
            else mesos_pb2.TaskStatus.REASON_AGENT_REMOVED,
            message,
            now,
            agent_id=agent.agent_id,
            executor_id=task.executor_id,
            unreachable_at=task.unreachable_at,
        )
        prior, task.state = task.state, new_state
        task.status_update_state, task.status_update_uuid = None, None
        task.latest_status = status
        state.history.task_updated(task, status, prior, now)
        state.send_event(fw, update_event(status))
        if new_state != mesos_pb2.TASK_UNREACHABLE:
            state.forget_task(task)
    for (framework_id, executor_id), _ in list(agent.executors.items()):
        fw = state.frameworks.get(framework_id)
        if fw is not None:
            fw.executors.pop((agent.agent_id, executor_id), None)
    agent.executors.clear()


def _take_out(state: MasterState, agent: Agent) -> None:
    for offer_id in sorted(agent.offers):
        drop_offer(state, state.offers[offer_id], rescind=True)
    if agent.in_allocator:
        state.allocator.remove_agent(agent.agent_id)
        agent.in_allocator = False
    state.disconnect_agent(agent, "agent removed")
    stop_pinging(state, agent.agent_id)
    state.allocation_wanted = True


def _agent_lost(state: MasterState, agent_id: str) -> None:
    event = failure_event(agent_id)
    for fw in state.frameworks.values():
        state.send_event(fw, event)


def mark_unreachable(state: MasterState, agent: Agent, now: float, reason: str) -> None:
    """The agent stopped answering: its tasks become UNREACHABLE or LOST; FAILURE to frameworks."""
    log.warning("agent %s (%s) is unreachable: %s", agent.agent_id, agent.info.hostname, reason)
    _take_out(state, agent)
    if agent.phase is AgentPhase.RECOVERING:
        state.recovering_agents -= 1
    message = f"Agent {agent.info.hostname} is unreachable: {reason}"
    _lose_tasks(state, agent, now, message, gone=False)
    agent.phase = AgentPhase.UNREACHABLE
    agent.unreachable_at = now
    state.persist(MarkAgentUnreachable(agent.agent_id, now))
    _agent_lost(state, agent.agent_id)
    state.history.agent_removed(agent.agent_id)


def reregister_timed_out(state: MasterState, agent_id: str, now: float) -> None:
    """An agent known before a master restart did not come back in time."""
    agent = state.agents.get(agent_id)
    if agent is not None and agent.phase is AgentPhase.RECOVERING:
        mark_unreachable(state, agent, now, "did not reregister after a master failover")


def unregister(state: MasterState, agent: Agent, reason: str, now: float) -> None:
    """The agent is leaving for good: its tasks are LOST and it is forgotten."""
    log.info("agent %s (%s) unregistered: %s", agent.agent_id, agent.info.hostname, reason)
    _take_out(state, agent)
    _lose_tasks(state, agent, now, f"Agent {agent.info.hostname} removed: {reason}", gone=True)
    del state.agents[agent.agent_id]
    state.persist(RemoveAgent(agent.agent_id))
    _agent_lost(state, agent.agent_id)
    state.history.agent_removed(agent.agent_id)


def exited_executor(
    state: MasterState, agent: Agent, message: agent_internal_pb2.ExitedExecutor, now: float
) -> None:
    """An executor ended: release its resources and tell its framework (FAILURE)."""
    framework_id = message.framework_id.value
    executor_id = message.executor_id.value
    executor = agent.executors.pop((framework_id, executor_id), None)
    fw = state.frameworks.get(framework_id)
    if executor is not None:
        if fw is not None:
            fw.executors.pop((agent.agent_id, executor_id), None)
        if executor.allocated and agent.in_allocator:
            executor.allocated = False
            state.allocator.recover_resources(
                framework_id, agent.agent_id, executor.resources, 0, now, role=executor.role
            )
            state.allocation_wanted = True
    if fw is not None:
        status = message.status if message.HasField("status") else None
        state.send_event(fw, failure_event(agent.agent_id, executor_id, status))


def update_resources(
    state: MasterState, agent: Agent, message: agent_internal_pb2.UpdateResources, now: float
) -> None:
    """The agent's total changed: rescind its offers and tell the allocator."""
    if not message.update_total:
        return
    try:
        static = parse_resources(message.total, "update_resources.total")
        total = apply_reservations(static, agent.reservations)
    except ValueError as error:
        log.warning("agent %s: bad update_resources: %s", agent.agent_id, error)
        return
    for offer_id in sorted(agent.offers):
        remove_offer(state, state.offers[offer_id], now, rescind=True)
    try:
        state.allocator.update_agent(agent.agent_id, total)
    except ValueError as error:
        log.warning("agent %s: update_resources refused: %s", agent.agent_id, error)
        return
    agent.total = total
    del agent.info.resources[:]
    agent.info.resources.extend(message.total)
    state.persist(AdmitAgent(agent.agent_id, agent.info))
    state.allocation_wanted = True
