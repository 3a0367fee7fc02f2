"""MasterState: everything the master's state machine holds, and the helpers every module shares.

The modules of this package (``frameworks``, ``agents``, ``offers``, ``launch``, ``tasks``,
``reconciliation``) are functions over one :class:`MasterState`; they append effects to
``state.out`` and never do I/O. :class:`~master.core.master.Master` is the public facade.
"""

from __future__ import annotations

import logging
import random
from collections import OrderedDict

from master.allocator import HierarchicalAllocator
from master.config import MasterConfig
from master.core.effects import (
    CloseSubscription,
    DisconnectAgent,
    Effect,
    PersistRegistry,
    SendEvent,
    SendToAgent,
)
from master.core.history import History
from master.core.ids import IdGenerator
from master.core.model import Agent, Framework, Offer, Task
from master.core.timers import Deadlines
from master.registry.state import Operation
from protos.resources import Resources
from protos.v1 import agent_internal_pb2, mesos_pb2, scheduler_pb2

__all__ = ["MasterState", "TimerKey"]

log = logging.getLogger("master.core")

TimerKey = tuple[str, str]
"""(kind, id): ``("ping", agent)``, ``("heartbeat", framework)``, ``("failover", framework)``,
``("offer", offer)``, ``("reregister", agent)``."""


class MasterState:
    """MasterState is the master's whole state; see the module docstring."""

    def __init__(
        self,
        config: MasterConfig,
        master_info: mesos_pb2.MasterInfo,
        ids: IdGenerator,
        allocator: HierarchicalAllocator | None = None,
    ) -> None:
        self.config = config
        self.master_info = master_info
        self.ids = ids
        self.allocator = allocator or HierarchicalAllocator(
            random.Random(0),
            allocation_interval=config.allocation_interval,
            min_allocatable_resources=config.min_allocatable_resources,
        )
        self.frameworks: dict[str, Framework] = {}
        self.streams: dict[str, str] = {}
        """Current subscription stream id -> framework id."""
        self.agents: dict[str, Agent] = {}
        self.connections: dict[str, str] = {}
        """Live agent connection id -> agent id."""
        self.offers: dict[str, Offer] = {}
        self.completed: OrderedDict[str, None] = OrderedDict()
        """Torn-down framework ids, newest last (at most ``max_completed_frameworks``)."""
        self.gone_agents: dict[str, float] = {}
        self.timers: Deadlines[TimerKey] = Deadlines()
        self.out: list[Effect] = []
        self.allocation_wanted = False
        """Something changed that the next allocation cycle could act on."""
        self.recovering_agents = 0
        """Agents known from the registry that have not reregistered yet."""
        self.faults = 0
        """Inputs the core failed on (bugs; see master.core.faults), since this master started."""
        self.pending_releases: dict[tuple[str, str, str], Resources] = {}
        """Resources of tasks that ended, by (framework, agent, role), not yet given back."""
        self.history = History(
            config.max_completed_frameworks, config.max_completed_tasks_per_framework
        )
        """Completed tasks and frameworks, counters, latencies, utilisation; the operator tap."""

    # -- effects ------------------------------------------------------------------------------

    def take_effects(self) -> list[Effect]:
        """The effects gathered since the last call, in order."""
        out, self.out = self.out, []
        return out

    def persist(self, *operations: Operation) -> None:
        """Make registry ``operations`` durable before any later effect."""
        self.out.append(PersistRegistry(tuple(operations)))

    def send_event(self, fw: Framework, event: scheduler_pb2.Event) -> None:
        """Send ``event`` to ``fw``'s scheduler if it is subscribed (else it is dropped)."""
        if fw.stream_id is not None:
            self.out.append(SendEvent(fw.framework_id, fw.stream_id, event))

    def close_stream(self, stream_id: str, error: str | None = None) -> None:
        """End a subscription stream (with an ERROR event first if ``error``)."""
        self.streams.pop(stream_id, None)
        self.out.append(CloseSubscription(stream_id, error))

    def send_to_agent(self, agent: Agent, message: agent_internal_pb2.MasterMessage) -> bool:
        """Send ``message`` to ``agent`` if it is connected; whether it was sent."""
        if agent.connection_id is None:
            return False
        self.out.append(SendToAgent(agent.agent_id, agent.connection_id, message))
        return True

    def disconnect_agent(self, agent: Agent, reason: str) -> None:
        """Close ``agent``'s connection, if it has one."""
        if agent.connection_id is not None:
            self.connections.pop(agent.connection_id, None)
            self.out.append(DisconnectAgent(agent.agent_id, agent.connection_id, reason))
            agent.connection_id = None

    # -- bookkeeping --------------------------------------------------------------------------

    def remember_completed(self, framework_id: str) -> None:
        """Remember a torn-down framework id (bounded; oldest forgotten first)."""
        self.completed[framework_id] = None
        self.completed.move_to_end(framework_id)
        while len(self.completed) > self.config.max_completed_frameworks:
            self.completed.popitem(last=False)

    def forget_task(self, task: Task) -> None:
        """Drop a task from its framework, agent and executor (its resources must be released)."""
        fw = self.frameworks.get(task.framework_id)
        if fw is not None and fw.tasks.get(task.task_id) is task:
            del fw.tasks[task.task_id]
        self.history.task_forgotten(task, framework_known=fw is not None)
        agent = self.agents.get(task.agent_id)
        if agent is not None:
            key = (task.framework_id, task.task_id)
            if agent.tasks.get(key) is task:
                del agent.tasks[key]
            if task.executor_id is not None:
                executor = agent.executors.get((task.framework_id, task.executor_id))
                if executor is not None:
                    executor.tasks.discard(task.task_id)

    def release_task(self, task: Task) -> None:
        """Give a task's resources back to the allocator (once; later calls do nothing).

        They are gathered and handed over by :meth:`flush_releases`: a batch of status updates
        from one agent then costs one allocator call per (framework, role), not one per task.
        """
        if task.allocated:
            task.allocated = False
            agent = self.agents.get(task.agent_id)
            if agent is not None and agent.in_allocator:
                key = (task.framework_id, task.agent_id, task.role)
                pending = self.pending_releases.get(key)
                self.pending_releases[key] = (
                    task.resources if pending is None else pending + task.resources
                )
                self.allocation_wanted = True

    def flush_releases(self, now: float) -> None:
        """Hand the gathered resources of ended tasks back to the allocator.

        The pending releases are taken before any is handed over, and a release the allocator
        refuses is logged and dropped: an accounting fault must show up once, in the log and in
        :meth:`~master.core.master.Master.validate`, never stay queued and fail every later
        input (issue 10: one refused release used to poison every later batch of every agent).
        """
        if not self.pending_releases:
            return
        pending, self.pending_releases = self.pending_releases, {}
        recover = self.allocator.recover_resources
        for (framework_id, agent_id, role), resources in pending.items():
            try:
                recover(framework_id, agent_id, resources, 0, now, role=role)
            except ValueError as error:
                log.error(
                    "releasing %s of framework %s on agent %s (role %r) failed: %s",
                    resources,
                    framework_id,
                    agent_id,
                    role,
                    error,
                )
