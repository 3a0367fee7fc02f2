"""The sans-I/O core of one emulated agent: what it says to the master, and when.

:class:`EmulatedAgent` holds the state of one agent of the emulator (its id, tasks, executors,
unacknowledged status updates, link state) and turns each :class:`MasterMessage` into the
:class:`AgentMessage` replies a real agent would send. It never touches the network or a clock:
``now`` (wall-clock seconds, the unit of ``TaskStatus.timestamp``) is passed in, and the asyncio
runtime in :mod:`emporion.testing.agent_emulator` does the sending.

Status updates follow the real agent's rules: every update carries a uuid, each task has one
stream of updates of which only the head is in flight, the head is retried with doubling backoff
until the master relays its acknowledgement, and ``latest_state`` carries the newest state
queued behind it. Agent-level choices that Mesos makes are mirrored: an unknown task named by a
reconciliation is answered once with ``TASK_DROPPED`` (``TASK_LOST`` for frameworks that are not
partition-aware) and not retried; a shut-down framework's tasks and updates are forgotten.

Protobuf messages are used as the payload here because the emulator forwards them (``TaskInfo``,
``TaskStatus``) and a benchmark tool cannot afford converting thousands of them per second.
"""

from __future__ import annotations

import enum
import heapq
import os
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeAlias

from protos.v1 import agent_internal_pb2 as ai
from protos.v1 import mesos_pb2

TaskKey = tuple[str, str]
"""(framework id, task id): task ids are unique only within a framework."""
State: TypeAlias = mesos_pb2.TaskState.ValueType
Reason: TypeAlias = mesos_pb2.TaskStatus.Reason.ValueType
Source: TypeAlias = mesos_pb2.TaskStatus.Source.ValueType

TERMINAL_STATES: frozenset[State] = frozenset(
    {
        mesos_pb2.TASK_FINISHED,
        mesos_pb2.TASK_FAILED,
        mesos_pb2.TASK_KILLED,
        mesos_pb2.TASK_ERROR,
        mesos_pb2.TASK_LOST,
        mesos_pb2.TASK_DROPPED,
        mesos_pb2.TASK_GONE,
        mesos_pb2.TASK_GONE_BY_OPERATOR,
    }
)
"""States after which the agent forgets a task once its last update is acknowledged."""

_PARTITION_AWARE = mesos_pb2.FrameworkInfo.Capability.PARTITION_AWARE
_SOURCE_AGENT = mesos_pb2.TaskStatus.SOURCE_AGENT
_SOURCE_EXECUTOR = mesos_pb2.TaskStatus.SOURCE_EXECUTOR

AGENT_CAPABILITIES = tuple(
    mesos_pb2.AgentInfo.Capability(type=t)
    for t in (
        mesos_pb2.AgentInfo.Capability.MULTI_ROLE,
        mesos_pb2.AgentInfo.Capability.HIERARCHICAL_ROLE,
        mesos_pb2.AgentInfo.Capability.RESERVATION_REFINEMENT,
        mesos_pb2.AgentInfo.Capability.AGENT_DRAINING,
    )
)
"""What every emulated agent claims to support."""


class Mode(enum.Enum):
    """What an emulated agent does with a task it is asked to run."""

    FINISH = "finish"
    """Queue TASK_RUNNING and TASK_FINISHED at once (FINISHED is sent when RUNNING is acked)."""
    RUN = "run"
    """Send TASK_RUNNING; the task runs until told otherwise (kill, finish, fail)."""
    MANUAL = "manual"
    """Send nothing; the test decides every update."""


class Link(enum.Enum):
    """The agent's session with the master."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"  # hello sent, no answer yet
    REGISTERED = "registered"
    SHUT_DOWN = "shut_down"  # told to shut down by the master: never reconnects


@dataclass
class EmulatorCounters:
    """Figures shared by all agents of one emulator (read them; do not write)."""

    registrations: int = 0
    reregistrations: int = 0
    tasks_launched: int = 0
    duplicate_launches: int = 0
    updates_sent: int = 0
    updates_retried: int = 0
    updates_acked: int = 0
    unexpected_acks: int = 0
    kills: int = 0
    pings_answered: int = 0
    pings_ignored: int = 0
    errors: list[str] = field(default_factory=list)
    framework_messages: list[tuple[str, str, str, bytes]] = field(default_factory=list)
    """(agent id, framework id, executor id, data) of every FrameworkToExecutor received."""
    run_task_at: dict[TaskKey, float] = field(default_factory=dict)
    """When each RunTask arrived (``now`` of the handler), if recording is on."""
    record_run_task_times: bool = True


@dataclass
class EmulatedTask:
    """A task the agent holds: launched and not yet terminal-and-acknowledged."""

    framework_id: str
    info: mesos_pb2.TaskInfo
    executor_id: str  # the command executor's id is the task id, as in Mesos
    command_executor: bool
    state: State = mesos_pb2.TASK_STAGING  # newest state queued (the stream's tail)
    last_status: mesos_pb2.TaskStatus | None = None
    pending: deque[mesos_pb2.TaskStatus] = field(default_factory=deque)  # head in flight
    head_sent: bool = False
    retry_at: float = 0.0
    retry_interval: float = 0.0


class EmulatedAgent:
    """One agent's state machine: feed it master messages and ticks, send what it returns."""

    def __init__(
        self,
        agent_info: mesos_pb2.AgentInfo,
        mode: Mode,
        counters: EmulatorCounters,
        *,
        retry_min: float = 10.0,
        retry_max: float = 600.0,
        echo_framework_messages: bool = True,
    ) -> None:
        self.agent_info = agent_info  # `id` unset until registered
        self.mode = mode
        self.counters = counters
        self.retry_min = retry_min
        self.retry_max = retry_max
        self.echo_framework_messages = echo_framework_messages
        self.boot_id = uuid.uuid4().hex
        self.agent_id: str | None = None
        self.link = Link.DISCONNECTED
        self.lost = False  # partitioned on purpose: answers nothing, not even pings
        self.draining = False
        self.ping_interval = 0.0
        self.ping_timeout = 0.0
        self.last_ping_at = 0.0
        self.frameworks: dict[str, mesos_pb2.FrameworkInfo] = {}
        self.executors: dict[tuple[str, str], mesos_pb2.ExecutorInfo] = {}
        self.tasks: dict[TaskKey, EmulatedTask] = {}
        self.checkpointed_resources: list[mesos_pb2.Resource] = []
        self.last_error = ""
        self._agent_id_proto = mesos_pb2.AgentID()
        self._retries: list[tuple[float, int, TaskKey, bytes]] = []  # lazy heap
        self._retry_seq = 0

    # -- session --------------------------------------------------------------------------------

    @property
    def shut_down(self) -> bool:
        """True once the master told this agent to shut down: it never reconnects."""
        return self.link is Link.SHUT_DOWN

    def hello(self) -> ai.AgentMessage:
        """The first message of a new session: RegisterAgent, or ReregisterAgent once known."""
        self.link = Link.CONNECTING
        if self.agent_id is None:
            return ai.AgentMessage(
                register_agent=ai.RegisterAgent(
                    agent_info=self.agent_info,
                    version="emporion-emulator",
                    agent_capabilities=AGENT_CAPABILITIES,
                    checkpointed_resources=self.checkpointed_resources,
                    boot_id=self.boot_id,
                )
            )
        framework_ids = {t.framework_id for t in self.tasks.values()}
        framework_ids.update(fw for fw, _ in self.executors)
        return ai.AgentMessage(
            reregister_agent=ai.ReregisterAgent(
                agent_info=self.agent_info,
                tasks=[self._task_proto(t) for t in self.tasks.values()],
                executor_infos=list(self.executors.values()),
                frameworks=[self.frameworks[fw] for fw in sorted(framework_ids)],
                boot_id=self.boot_id,
                version="emporion-emulator",
                agent_capabilities=AGENT_CAPABILITIES,
                checkpointed_resources=self.checkpointed_resources,
            )
        )

    def disconnected(self) -> None:
        """The stream ended: every in-flight update will be sent again after reregistering."""
        if self.link is not Link.SHUT_DOWN:
            self.link = Link.DISCONNECTED
        for task in self.tasks.values():
            task.head_sent = False
        self._retries.clear()

    def master_lost(self, now: float) -> bool:
        """True when the master has not pinged for longer than it said it would."""
        return (
            self.link is Link.REGISTERED
            and not self.lost
            and self.ping_timeout > 0
            and now - self.last_ping_at > self.ping_timeout
        )

    def tick(self, now: float) -> list[ai.AgentMessage]:
        """Retries of status updates whose acknowledgement is overdue."""
        out: list[ai.AgentMessage] = []
        heap = self._retries
        while heap and heap[0][0] <= now:
            due, _, key, head_uuid = heapq.heappop(heap)
            task = self.tasks.get(key)
            if (
                task is None
                or not task.head_sent
                or not task.pending
                or task.pending[0].uuid != head_uuid
                or task.retry_at != due
            ):
                continue  # acknowledged or resent since: a stale entry
            if self.link is not Link.REGISTERED or self.lost:
                continue
            task.retry_interval = min(task.retry_interval * 2, self.retry_max)
            self.counters.updates_retried += 1
            out.append(self._send_head(task, key, now))
        return out

    # -- master messages ------------------------------------------------------------------------

    def handle(self, msg: ai.MasterMessage, now: float) -> list[ai.AgentMessage]:
        """React to one message from the master; returns the messages to send back."""
        if self.lost or self.link is Link.SHUT_DOWN:
            if msg.HasField("ping"):
                self.counters.pings_ignored += 1
            return []
        kind = msg.WhichOneof("payload")
        if kind == "ping":
            self.last_ping_at = now
            self.counters.pings_answered += 1
            return [ai.AgentMessage(pong=ai.Pong(seq=msg.ping.seq))]
        if kind == "run_task":
            return self._run_task(msg.run_task, now)
        if kind == "status_update_acknowledgement":
            return self._acknowledged(msg.status_update_acknowledgement, now)
        if kind == "agent_registered":
            r = msg.agent_registered
            self.counters.registrations += 1
            return self._registered(
                r.agent_id.value, r.ping_interval_seconds, r.ping_timeout_seconds, (), now
            )
        if kind == "agent_reregistered":
            rr = msg.agent_reregistered
            self.counters.reregistrations += 1
            return self._registered(
                rr.agent_id.value,
                rr.ping_interval_seconds,
                rr.ping_timeout_seconds,
                rr.reconciliations,
                now,
            )
        if kind == "run_task_group":
            return self._run_task_group(msg.run_task_group, now)
        if kind == "kill_task":
            return self._kill(msg.kill_task, now)
        if kind == "framework_to_executor":
            return self._framework_message(msg.framework_to_executor)
        if kind == "shutdown_framework":
            self._forget_framework(msg.shutdown_framework.framework_id.value)
            return []
        if kind == "shutdown_executor":
            return self._shutdown_executor(msg.shutdown_executor, now)
        if kind == "reconcile_tasks":
            return self._reconcile([msg.reconcile_tasks], now)
        if kind == "update_framework":
            uf = msg.update_framework
            self.frameworks[uf.framework_id.value] = uf.framework_info
            return []
        if kind == "checkpoint_resources":
            self.checkpointed_resources = list(msg.checkpoint_resources.resources)
            return []
        if kind == "drain_agent":
            self.draining = True
            return self._kill_all(now, mesos_pb2.TaskStatus.REASON_AGENT_DRAINING)
        if kind == "shutdown_agent":
            self.last_error = msg.shutdown_agent.message
            self.link = Link.SHUT_DOWN
            self.tasks.clear()
            self.executors.clear()
            self._retries.clear()
            return []
        if kind == "error":
            self.last_error = msg.error.message
            who = self.agent_id or self.agent_info.hostname
            self.counters.errors.append(f"{who}: {msg.error.message}")
            return []
        return []  # a member this emulator does not know: ignore it, as the protocol says

    def _registered(
        self,
        agent_id: str,
        ping_interval: float,
        ping_timeout: float,
        reconciliations: Iterable[ai.ReconcileTasks],
        now: float,
    ) -> list[ai.AgentMessage]:
        if self.agent_id != agent_id:
            self.agent_id = agent_id
            self._agent_id_proto = mesos_pb2.AgentID(value=agent_id)
            self.agent_info.id.value = agent_id
        self.link = Link.REGISTERED
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.last_ping_at = now
        out = [self._send_head(t, k, now) for k, t in self.tasks.items() if t.pending]
        out.extend(self._reconcile(reconciliations, now))
        return out

    # -- tasks ----------------------------------------------------------------------------------

    def _run_task(self, run: ai.RunTask, now: float) -> list[ai.AgentMessage]:
        fw = run.framework_id.value or run.framework_info.id.value
        if run.HasField("framework_info"):
            self.frameworks[fw] = run.framework_info
        executor = run.executor if run.HasField("executor") else None
        return self._launch(fw, run.task, executor, now)

    def _run_task_group(self, run: ai.RunTaskGroup, now: float) -> list[ai.AgentMessage]:
        fw = run.executor.framework_id.value or run.framework_info.id.value
        if run.HasField("framework_info"):
            self.frameworks[fw] = run.framework_info
        out: list[ai.AgentMessage] = []
        for task in run.task_group.tasks:
            out.extend(self._launch(fw, task, run.executor, now))
        return out

    def _launch(
        self,
        fw: str,
        info: mesos_pb2.TaskInfo,
        executor: mesos_pb2.ExecutorInfo | None,
        now: float,
    ) -> list[ai.AgentMessage]:
        key = (fw, info.task_id.value)
        counters = self.counters
        if counters.record_run_task_times:
            counters.run_task_at[key] = now
        if key in self.tasks:
            counters.duplicate_launches += 1
            return []
        if executor is None and info.HasField("executor"):
            executor = info.executor
        if executor is not None:
            executor_id = executor.executor_id.value
            self.executors.setdefault((fw, executor_id), executor)
        else:
            executor_id = key[1]
        task = EmulatedTask(fw, info, executor_id, command_executor=executor is None)
        self.tasks[key] = task
        counters.tasks_launched += 1
        if self.draining:
            reason = mesos_pb2.TaskStatus.REASON_AGENT_DRAINING
            self._enqueue(task, mesos_pb2.TASK_DROPPED, now, source=_SOURCE_AGENT, reason=reason)
        elif self.mode is Mode.FINISH:
            self._enqueue(task, mesos_pb2.TASK_RUNNING, now)
            self._enqueue(task, mesos_pb2.TASK_FINISHED, now)
        elif self.mode is Mode.RUN:
            self._enqueue(task, mesos_pb2.TASK_RUNNING, now)
        else:
            return []
        return [self._send_head(task, key, now)] if self.link is Link.REGISTERED else []

    def update(
        self,
        framework_id: str,
        task_id: str,
        state: State,
        now: float,
        *,
        reason: Reason | None = None,
        message: str = "",
    ) -> list[ai.AgentMessage]:
        """Queue an executor update for a task (e.g. FINISHED on command).

        Raises ``KeyError`` for an unknown task and ``ValueError`` for a task already terminal.
        """
        key = (framework_id, task_id)
        task = self.tasks[key]
        if task.state in TERMINAL_STATES:
            raise ValueError(
                f"task {task_id!r} of framework {framework_id!r} is already "
                f"{mesos_pb2.TaskState.Name(task.state)}"
            )
        return self._enqueue_and_flush(task, key, state, now, reason=reason, message=message)

    def _enqueue_and_flush(
        self,
        task: EmulatedTask,
        key: TaskKey,
        state: State,
        now: float,
        *,
        source: Source = _SOURCE_EXECUTOR,
        reason: Reason | None = None,
        message: str = "",
    ) -> list[ai.AgentMessage]:
        self._enqueue(task, state, now, source=source, reason=reason, message=message)
        if self.link is Link.REGISTERED and not self.lost and not task.head_sent:
            return [self._send_head(task, key, now)]
        return []

    def _enqueue(
        self,
        task: EmulatedTask,
        state: State,
        now: float,
        *,
        source: Source = _SOURCE_EXECUTOR,
        reason: Reason | None = None,
        message: str = "",
    ) -> None:
        status = mesos_pb2.TaskStatus(
            task_id=task.info.task_id,
            state=state,
            source=source,
            timestamp=now,
            uuid=os.urandom(16),  # a random (version 4-like) uuid, cheaper than uuid4()
        )
        if self.agent_id is not None:
            status.agent_id.value = self.agent_id
        if source == _SOURCE_EXECUTOR:
            status.executor_id.value = task.executor_id
        if reason is not None:
            status.reason = reason
        if message:
            status.message = message
        task.state = state
        task.last_status = status
        task.pending.append(status)

    def _send_head(self, task: EmulatedTask, key: TaskKey, now: float) -> ai.AgentMessage:
        if not task.head_sent:
            task.head_sent = True
            task.retry_interval = self.retry_min
        task.retry_at = due = now + task.retry_interval
        head = task.pending[0]
        self._retry_seq += 1
        heapq.heappush(self._retries, (due, self._retry_seq, key, head.uuid))
        self.counters.updates_sent += 1
        message = ai.AgentMessage()
        update = message.status_update  # filled in place: one copy of the status, not two
        update.status.CopyFrom(head)
        update.latest_state = task.state
        update.framework_id.value = key[0]
        if head.HasField("executor_id"):
            update.executor_id.value = head.executor_id.value
        return message

    def _acknowledged(
        self, ack: ai.StatusUpdateAcknowledgement, now: float
    ) -> list[ai.AgentMessage]:
        key = (ack.framework_id.value, ack.task_id.value)
        task = self.tasks.get(key)
        if task is None or not task.pending or task.pending[0].uuid != ack.uuid:
            self.counters.unexpected_acks += 1  # duplicate or stale: ignored, as Mesos does
            return []
        task.pending.popleft()
        task.head_sent = False
        self.counters.updates_acked += 1
        if task.pending:
            if self.link is Link.REGISTERED and not self.lost:
                return [self._send_head(task, key, now)]
            return []
        if task.state in TERMINAL_STATES:
            del self.tasks[key]
        return []

    def _kill(self, kill: ai.KillTask, now: float) -> list[ai.AgentMessage]:
        fw, task_id = kill.framework_id.value, kill.task_id.value
        self.counters.kills += 1
        task = self.tasks.get((fw, task_id))
        if task is not None:
            if task.state in TERMINAL_STATES:
                return []
            return self._enqueue_and_flush(task, (fw, task_id), mesos_pb2.TASK_KILLED, now)
        if fw not in self.frameworks:
            return []  # Mesos ignores kills for frameworks it does not run
        reason = mesos_pb2.TaskStatus.REASON_TASK_UNKNOWN
        return [self._unknown_task_update(fw, task_id, now, "kill of an unknown task", reason)]

    def _kill_all(self, now: float, reason: Reason) -> list[ai.AgentMessage]:
        out: list[ai.AgentMessage] = []
        killed = mesos_pb2.TASK_KILLED
        for key, task in list(self.tasks.items()):
            if task.state not in TERMINAL_STATES:
                out.extend(self._enqueue_and_flush(task, key, killed, now, reason=reason))
        return out

    def _shutdown_executor(self, msg: ai.ShutdownExecutor, now: float) -> list[ai.AgentMessage]:
        fw, executor_id = msg.framework_id.value, msg.executor_id.value
        out: list[ai.AgentMessage] = []
        for key, task in list(self.tasks.items()):
            mine = key[0] == fw and task.executor_id == executor_id
            if mine and task.state not in TERMINAL_STATES:
                out.extend(self._enqueue_and_flush(task, key, mesos_pb2.TASK_KILLED, now))
        known = self.executors.pop((fw, executor_id), None) is not None
        if known and self.link is Link.REGISTERED:
            exited = ai.ExitedExecutor(status=0)
            exited.framework_id.value = fw
            exited.executor_id.value = executor_id
            out.append(ai.AgentMessage(exited_executor=exited))
        return out

    def _forget_framework(self, fw: str) -> None:
        for key in [k for k in self.tasks if k[0] == fw]:
            del self.tasks[key]
        for ekey in [k for k in self.executors if k[0] == fw]:
            del self.executors[ekey]
        self.frameworks.pop(fw, None)

    def _reconcile(
        self, reconciliations: Iterable[ai.ReconcileTasks], now: float
    ) -> list[ai.AgentMessage]:
        out: list[ai.AgentMessage] = []
        reason = mesos_pb2.TaskStatus.REASON_RECONCILIATION
        text = "reconciliation: task unknown to the agent"
        for rec in reconciliations:
            fw = rec.framework_id.value
            for status in rec.statuses:
                task_id = status.task_id.value
                if (fw, task_id) not in self.tasks:
                    out.append(self._unknown_task_update(fw, task_id, now, text, reason))
        return out

    def _unknown_task_update(
        self, fw: str, task_id: str, now: float, message: str, reason: Reason
    ) -> ai.AgentMessage:
        """A one-shot update for a task the agent never had (sent once, like Mesos)."""
        info = self.frameworks.get(fw)
        aware = info is not None and any(c.type == _PARTITION_AWARE for c in info.capabilities)
        state = mesos_pb2.TASK_DROPPED if aware else mesos_pb2.TASK_LOST
        status = mesos_pb2.TaskStatus(
            state=state,
            source=_SOURCE_AGENT,
            reason=reason,
            message=message,
            timestamp=now,
            uuid=os.urandom(16),  # a random (version 4-like) uuid, cheaper than uuid4()
        )
        status.task_id.value = task_id
        if self.agent_id is not None:
            status.agent_id.value = self.agent_id
        update = ai.StatusUpdate(status=status, latest_state=state)
        update.framework_id.value = fw
        self.counters.updates_sent += 1
        return ai.AgentMessage(status_update=update)

    def _framework_message(self, msg: ai.FrameworkToExecutor) -> list[ai.AgentMessage]:
        fw, executor_id = msg.framework_id.value, msg.executor_id.value
        self.counters.framework_messages.append((self.agent_id or "", fw, executor_id, msg.data))
        if not self.echo_framework_messages:
            return []
        echo = ai.ExecutorToFramework(data=msg.data)
        echo.framework_id.value = fw
        echo.executor_id.value = executor_id
        return [ai.AgentMessage(executor_to_framework=echo)]

    def _task_proto(self, task: EmulatedTask) -> mesos_pb2.Task:
        info = task.info
        proto = mesos_pb2.Task(
            name=info.name,
            task_id=info.task_id,
            state=task.state,
            resources=info.resources,
        )
        proto.framework_id.value = task.framework_id
        if not task.command_executor:
            proto.executor_id.value = task.executor_id
        if self.agent_id is not None:
            proto.agent_id.value = self.agent_id
        if task.last_status is not None:
            proto.statuses.append(task.last_status)
        if task.pending:
            proto.status_update_state = task.pending[0].state
            proto.status_update_uuid = task.pending[0].uuid
        for name in ("labels", "discovery", "container", "health_check", "kill_policy"):
            if info.HasField(name):
                getattr(proto, name).CopyFrom(getattr(info, name))
        for res_name, scalar in info.limits.items():
            proto.limits[res_name].CopyFrom(scalar)
        return proto

    # -- checks ---------------------------------------------------------------------------------

    def validate(self) -> None:
        """Check the invariants; raises ``AssertionError`` naming the first one broken."""
        if self.link is Link.REGISTERED:
            assert self.agent_id, "a registered agent has an id"
        for key, task in self.tasks.items():
            assert key == (task.framework_id, task.info.task_id.value), f"task {key} mis-keyed"
            assert task.pending or task.state not in TERMINAL_STATES, (
                f"task {key} is terminal and acknowledged but still held"
            )
            assert not task.head_sent or task.pending, f"task {key} has an in-flight empty stream"
            if task.pending:
                assert task.pending[-1].state == task.state, f"task {key}: latest_state is stale"
            uuids = [s.uuid for s in task.pending]
            assert len(set(uuids)) == len(uuids), f"task {key} has duplicate update uuids"
            if not task.command_executor:
                assert (
                    key[0],
                    task.executor_id,
                ) in self.executors or self.link is Link.SHUT_DOWN, (
                    f"task {key} runs in unknown executor {task.executor_id!r}"
                )
        if self.link is Link.SHUT_DOWN:
            assert not self.tasks, "a shut-down agent holds no tasks"
