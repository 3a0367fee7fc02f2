"""ExecutorSession: an executor's subscription to its agent, as a state machine free of I/O.

The runtime (:mod:`framework_sdk.executor_aio`) feeds it what happened — a stream opened, an
event arrived, the stream broke, a call was refused; ``now`` always passed in — and it answers
what to do: the SUBSCRIBE call to send, the typed events to hand to the executor, the delay
before subscribing again, or that it is over. It keeps what makes status updates reliable:

* every update the executor sends gets a fresh uuid and stays *unacknowledged* until an
  ACKNOWLEDGED event carries that uuid;
* every task the agent launched stays *unacknowledged* until an update with a terminal state
  for it was acknowledged;
* both lists go out again in the next SUBSCRIBE, so an agent that restarted (or a stream that
  broke mid-call) loses nothing; the agent drops the updates it already has by uuid.

When the stream breaks, a checkpointing executor (``MESOS_CHECKPOINT=1``) reports
:class:`Disconnected` and subscribes again, waiting a random time up to
``MESOS_SUBSCRIPTION_BACKOFF_MAX`` between attempts, for up to ``MESOS_RECOVERY_TIMEOUT``; then
it reports :class:`Shutdown`. Other executors cannot outlive their agent: they report
:class:`Disconnected` then :class:`Shutdown` at once (as Mesos's executor library does).

Phases::

    IDLE --subscribe_call--> SUBSCRIBING --receive(SUBSCRIBED)--> SUBSCRIBED
                               |   ^                                   |
           retryable failure   |   | subscribe_call                    | stream_lost
           before the deadline v   |                                   v (checkpointing)
                             BACKING_OFF <-----------------------------+
    SUBSCRIBED --stream_lost (not checkpointing)--> CLOSED
    SUBSCRIBING --other failure, or the deadline passed--> CLOSED
    any --receive(ERROR) / close--> CLOSED (final)
"""

from __future__ import annotations

import enum
import random
import uuid as uuid_module
from collections.abc import Callable
from dataclasses import dataclass

from framework_sdk.builders import is_terminal, state_name
from framework_sdk.errors import NotSubscribedError
from framework_sdk.executor_config import ExecutorConfig
from protos.v1 import executor_pb2, mesos_pb2

__all__ = [
    "TRANSPORT_CODES",
    "Acknowledged",
    "Disconnected",
    "Error",
    "ExecutorEvent",
    "ExecutorSession",
    "Heartbeat",
    "Kill",
    "Launch",
    "LaunchGroup",
    "Lost",
    "Message",
    "Phase",
    "ProtocolError",
    "Reconnect",
    "Shutdown",
    "Subscribed",
    "check_status",
]

# gRPC codes (by name) meaning the agent was not reached or the call's fate is unknown; every
# other code is the agent's own answer to the call.
TRANSPORT_CODES = frozenset(
    {"UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED", "RESOURCE_EXHAUSTED", "ABORTED", "UNKNOWN"}
)

_Event = executor_pb2.Event
_Call = executor_pb2.Call


# -- typed events --


@dataclass(frozen=True, slots=True)
class Subscribed:
    """Subscribed: the agent took the subscription. ``resubscribed`` is False the first time
    and True after a disconnection (the classic API's ``registered`` vs ``reregistered``)."""

    executor_info: mesos_pb2.ExecutorInfo
    framework_info: mesos_pb2.FrameworkInfo
    agent_info: mesos_pb2.AgentInfo
    container_id: mesos_pb2.ContainerID | None
    resubscribed: bool


@dataclass(frozen=True, slots=True)
class Launch:
    """Launch: run ``task``, then report TASK_RUNNING (or a failure)."""

    task: mesos_pb2.TaskInfo


@dataclass(frozen=True, slots=True)
class LaunchGroup:
    """LaunchGroup: run every task of ``task_group`` together."""

    task_group: mesos_pb2.TaskGroupInfo


@dataclass(frozen=True, slots=True)
class Kill:
    """Kill: kill the task; ``kill_policy`` (if set) overrides the task's own."""

    task_id: mesos_pb2.TaskID
    kill_policy: mesos_pb2.KillPolicy | None


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """Acknowledged: the agent took over the update ``status`` (uuid ``uuid``)."""

    task_id: mesos_pb2.TaskID
    uuid: bytes
    status: mesos_pb2.TaskStatus


@dataclass(frozen=True, slots=True)
class Message:
    """Message: opaque ``data`` from the scheduler (best effort)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Shutdown:
    """Shutdown: kill every task, report them, and exit.

    ``by_agent`` is True for the agent's SHUTDOWN event, False when the SDK decided it (the
    agent was lost for good); ``reason`` says which.
    """

    reason: str
    by_agent: bool


@dataclass(frozen=True, slots=True)
class Error:
    """Error: the agent sent an ERROR event, or never accepted the subscription; final."""

    message: str


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Heartbeat: the agent is alive (sent on an idle stream)."""


@dataclass(frozen=True, slots=True)
class Disconnected:
    """Disconnected: the stream to the agent broke (made by the SDK, not sent by the agent)."""

    reason: str


ExecutorEvent = (
    Subscribed
    | Launch
    | LaunchGroup
    | Kill
    | Acknowledged
    | Message
    | Shutdown
    | Error
    | Heartbeat
    | Disconnected
)


# -- what the session answers --


@dataclass(frozen=True, slots=True)
class Reconnect:
    """Reconnect: send the next SUBSCRIBE after ``delay`` seconds."""

    delay: float
    reason: str


@dataclass(frozen=True, slots=True)
class Lost:
    """Lost: after a broken stream or failed SUBSCRIBE, the events to report and what next.

    ``retry`` is None when the session is over (CLOSED).
    """

    events: tuple[ExecutorEvent, ...]
    retry: Reconnect | None


class ProtocolError(Exception):
    """ProtocolError: the agent broke the protocol (e.g. a stream not starting with SUBSCRIBED)."""


class Phase(enum.Enum):
    """Phase of an ExecutorSession; see the module docstring for the transitions."""

    IDLE = "idle"
    SUBSCRIBING = "subscribing"
    SUBSCRIBED = "subscribed"
    BACKING_OFF = "backing_off"
    CLOSED = "closed"


def check_status(status: object, executor_id: str | None = None) -> mesos_pb2.TaskStatus:
    """``status`` if an executor may send it; TypeError/ValueError naming the field if not.

    It must be a TaskStatus with a task id and a state other than TASK_STAGING (the agent's
    state for a task nobody runs yet, which Mesos refuses from executors), and name no other
    executor than ``executor_id``.
    """
    if not isinstance(status, mesos_pb2.TaskStatus):
        raise TypeError(f"status must be a TaskStatus, not {type(status).__name__}")
    if not status.task_id.value:
        raise ValueError("status.task_id is required")
    if not status.HasField("state"):
        raise ValueError(f"status.state is required (task {status.task_id.value!r})")
    if status.state not in mesos_pb2.TaskState.values():
        raise ValueError(f"status.state {status.state} is not a TaskState")
    if status.state == mesos_pb2.TASK_STAGING:
        raise ValueError(
            f"status.state TASK_STAGING cannot be sent by an executor (task"
            f" {status.task_id.value!r}); report TASK_STARTING or TASK_RUNNING"
        )
    if executor_id is not None and status.executor_id.value not in ("", executor_id):
        raise ValueError(
            f"status.executor_id {status.executor_id.value!r} is not this executor"
            f" ({executor_id!r})"
        )
    return status


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


class ExecutorSession:
    """ExecutorSession: see the module docstring.

    ``rng`` draws the reconnect delays and ``new_uuid`` the update uuids (16 bytes; a random
    RFC 4122 uuid by default); tests pass their own.
    """

    def __init__(
        self,
        config: ExecutorConfig,
        *,
        rng: random.Random | None = None,
        new_uuid: Callable[[], bytes] | None = None,
    ) -> None:
        self.config = config
        self.phase = Phase.IDLE
        self.close_reason: str | None = None
        self.subscriptions = 0  # SUBSCRIBED events received, over all streams
        self.shutdown_requested = False
        self.agent_info: mesos_pb2.AgentInfo | None = None
        self.executor_info: mesos_pb2.ExecutorInfo | None = None
        self.framework_info: mesos_pb2.FrameworkInfo | None = None
        self._rng = rng or random.Random()
        self._new_uuid = new_uuid or (lambda: uuid_module.uuid4().bytes)
        self._deadline: float | None = None  # Give up subscribing at this time.
        self._updates: dict[bytes, mesos_pb2.TaskStatus] = {}  # By uuid, oldest first.
        self._tasks: dict[str, mesos_pb2.TaskInfo] = {}  # By task id, launch order.

    # -- state --

    @property
    def subscribed(self) -> bool:
        """Whether the stream is up and SUBSCRIBED arrived (calls can be sent)."""
        return self.phase is Phase.SUBSCRIBED

    @property
    def closed(self) -> bool:
        """Whether the session ended for good."""
        return self.phase is Phase.CLOSED

    @property
    def deadline(self) -> float | None:
        """When subscribing gives up (while not subscribed), in the clock of ``now``."""
        return self._deadline

    @property
    def unacknowledged_updates(self) -> list[mesos_pb2.TaskStatus]:
        """Updates sent (or waiting to be) that the agent has not acknowledged, oldest first."""
        return list(self._updates.values())

    @property
    def unacknowledged_tasks(self) -> list[mesos_pb2.TaskInfo]:
        """Tasks launched here without an acknowledged terminal update, in launch order."""
        return list(self._tasks.values())

    def close(self, reason: str) -> None:
        """End the session for good (idempotent; the first reason is kept)."""
        if self.phase is not Phase.CLOSED:
            self.phase = Phase.CLOSED
            self.close_reason = reason
            self._deadline = None

    # -- subscribing --

    def subscribe_call(self, now: float) -> executor_pb2.Call:
        """The SUBSCRIBE call to send now, carrying the unacknowledged tasks and updates."""
        if self.phase not in (Phase.IDLE, Phase.BACKING_OFF):
            raise NotSubscribedError(f"cannot SUBSCRIBE in phase {self.phase.value}")
        if self._deadline is None:  # The first attempt (later ones keep the outage's deadline).
            self._deadline = now + self.config.recovery_timeout_seconds
        self.phase = Phase.SUBSCRIBING
        call = self._call(_Call.SUBSCRIBE)
        call.subscribe.unacknowledged_tasks.extend(self._tasks.values())
        for status in self._updates.values():
            call.subscribe.unacknowledged_updates.add().status.CopyFrom(status)
        return call

    def receive(self, event: executor_pb2.Event, now: float) -> list[ExecutorEvent]:
        """Take one event from the agent; the typed events to report (often one, maybe none).

        Raises ProtocolError when a stream does not start with SUBSCRIBED; the runtime then
        treats the stream as broken.
        """
        if self.phase is Phase.CLOSED:
            return []
        if event.type == _Event.SUBSCRIBED:
            return [self._subscribed(event.subscribed)]
        if self.phase is not Phase.SUBSCRIBED:
            name = _Event.Type.Name(event.type) if event.type in _Event.Type.values() else "?"
            raise ProtocolError(f"the agent sent {name} before SUBSCRIBED")
        kind = event.type
        if kind == _Event.LAUNCH:
            return self._launch([event.launch.task], Launch(event.launch.task))
        if kind == _Event.LAUNCH_GROUP:
            group = event.launch_group.task_group
            return self._launch(list(group.tasks), LaunchGroup(group))
        if kind == _Event.KILL:
            kill = event.kill
            policy = kill.kill_policy if kill.HasField("kill_policy") else None
            return [Kill(kill.task_id, policy)]
        if kind == _Event.ACKNOWLEDGED:
            status = self._updates.pop(event.acknowledged.uuid, None)
            if status is None:  # A repeat, or from before a restart of this executor.
                return []
            if is_terminal(status.state):
                self._tasks.pop(status.task_id.value, None)
            return [Acknowledged(status.task_id, event.acknowledged.uuid, status)]
        if kind == _Event.MESSAGE:
            return [Message(event.message.data)]
        if kind == _Event.SHUTDOWN:
            if self.shutdown_requested:
                return []
            self.shutdown_requested = True
            return [Shutdown("the agent asked the executor to shut down", by_agent=True)]
        if kind == _Event.ERROR:
            self.close(f"error from the agent: {event.error.message}")
            return [Error(event.error.message)]
        if kind == _Event.HEARTBEAT:
            return [Heartbeat()]
        return []  # A type newer than this SDK: nothing to do with it.

    def _subscribed(self, subscribed: executor_pb2.Event.Subscribed) -> Subscribed:
        if self.phase is not Phase.SUBSCRIBING:
            raise ProtocolError(f"SUBSCRIBED received in phase {self.phase.value}")
        self.phase = Phase.SUBSCRIBED
        self._deadline = None
        resubscribed = self.subscriptions > 0
        self.subscriptions += 1
        self.agent_info = subscribed.agent_info
        self.executor_info = subscribed.executor_info
        self.framework_info = subscribed.framework_info
        container = subscribed.container_id if subscribed.HasField("container_id") else None
        return Subscribed(
            subscribed.executor_info,
            subscribed.framework_info,
            subscribed.agent_info,
            container,
            resubscribed,
        )

    def _launch(self, tasks: list[mesos_pb2.TaskInfo], typed: ExecutorEvent) -> list[ExecutorEvent]:
        ids = [task.task_id.value for task in tasks]
        # A redelivery of tasks this executor has (the agent missed them in SUBSCRIBE) or a
        # malformed launch: running them twice would be worse than ignoring them.
        if not ids or not all(ids) or any(task_id in self._tasks for task_id in ids):
            return []
        for task in tasks:
            copy = mesos_pb2.TaskInfo()
            copy.CopyFrom(task)
            self._tasks[task.task_id.value] = copy
        return [typed]

    def subscribe_failed(self, code: str, details: str, now: float) -> Lost:
        """A SUBSCRIBE failed (gRPC status ``code`` by name) before SUBSCRIBED arrived.

        Transport failures are retried until the deadline: ``MESOS_RECOVERY_TIMEOUT`` after the
        first attempt or after the disconnection. So is NOT_FOUND once subscribed before (an
        agent still recovering may not know the executor yet). Anything else is final: an
        :class:`Error` if the executor never subscribed, a :class:`Shutdown` if it had.
        """
        if self.phase is Phase.CLOSED:
            return Lost((), None)
        if self.phase is not Phase.SUBSCRIBING:
            raise ProtocolError(f"subscribe_failed in phase {self.phase.value}")
        what = f"SUBSCRIBE failed ({code}: {details})"
        retryable = code in TRANSPORT_CODES or (self.subscriptions > 0 and code == "NOT_FOUND")
        assert self._deadline is not None
        if retryable and now < self._deadline:
            self.phase = Phase.BACKING_OFF
            return Lost((), self._reconnect(what, now))
        if retryable:
            timeout = self.config.recovery_timeout_seconds
            reason = f"no subscription to the agent within {timeout:g}s: {what}"
        else:
            reason = f"the agent refused the subscription: {what}"
        self.close(reason)
        if self.subscriptions == 0:
            endpoint = self.config.agent_endpoint
            return Lost((Error(f"could not subscribe to the agent at {endpoint}: {reason}"),), None)
        self.shutdown_requested = True
        return Lost((Shutdown(reason, by_agent=False),), None)

    def stream_lost(self, reason: str, now: float) -> Lost:
        """The stream ended or broke (or the agent broke the protocol): what to report and do."""
        if self.phase is Phase.SUBSCRIBING:
            return self.subscribe_failed("UNAVAILABLE", reason, now)
        if self.phase is not Phase.SUBSCRIBED:
            return Lost((), None)
        if self.shutdown_requested:
            # Shutting down already: the agent ending the stream is part of it.
            self.close(f"disconnected while shutting down: {reason}")
            return Lost((), None)
        if self.config.checkpoint:
            self.phase = Phase.BACKING_OFF
            self._deadline = now + self.config.recovery_timeout_seconds
            return Lost((Disconnected(reason),), self._reconnect(reason, now))
        self.close(f"disconnected from the agent: {reason}")
        self.shutdown_requested = True
        why = f"lost the agent ({reason}) and the framework does not checkpoint"
        return Lost((Disconnected(reason), Shutdown(why, by_agent=False)), None)

    def _reconnect(self, reason: str, now: float) -> Reconnect:
        # As Mesos's executor library: a uniformly random wait up to the backoff maximum (not
        # exponential: the agent is local and restarts in seconds), never past the deadline.
        assert self._deadline is not None
        delay = self.config.subscription_backoff_max_seconds * self._rng.random()
        return Reconnect(max(0.0, min(delay, self._deadline - now)), reason)

    # -- calls --

    def _call(self, kind: executor_pb2.Call.Type.ValueType) -> executor_pb2.Call:
        call = _Call(type=kind)
        call.executor_id.value = self.config.executor_id
        call.framework_id.value = self.config.framework_id
        return call

    def prepare_update(self, status: mesos_pb2.TaskStatus, timestamp: float) -> executor_pb2.Call:
        """The UPDATE call for ``status``, now counted as unacknowledged until ACKNOWLEDGED.

        The copy sent gets a fresh uuid, ``source = SOURCE_EXECUTOR``, this executor's id, the
        agent's id once known, and ``timestamp`` (wall-clock seconds) unless it had one.
        Allowed in any phase: while not subscribed, the update waits for the next SUBSCRIBE.
        Raises TypeError/ValueError (see :func:`check_status`) and then records nothing.
        """
        check_status(status, self.config.executor_id)
        if self.phase is Phase.CLOSED:
            raise NotSubscribedError(
                f"UPDATE of task {status.task_id.value!r} not sent: {self.close_reason}"
            )
        update = mesos_pb2.TaskStatus()
        update.CopyFrom(status)
        uuid = self._new_uuid()
        if len(uuid) != 16 or uuid in self._updates:
            raise ValueError(f"new_uuid() must give 16 fresh bytes, not {uuid!r}")
        update.uuid = uuid
        update.source = mesos_pb2.TaskStatus.SOURCE_EXECUTOR
        update.executor_id.value = self.config.executor_id
        if self.agent_info is not None and self.agent_info.id.value and not update.agent_id.value:
            update.agent_id.CopyFrom(self.agent_info.id)
        if not update.HasField("timestamp"):
            update.timestamp = timestamp
        self._updates[uuid] = update
        call = self._call(_Call.UPDATE)
        call.update.status.CopyFrom(update)
        return call

    def update_refused(self, uuid: bytes, code: str) -> bool:
        """An UPDATE call failed with gRPC ``code``; True if the update was dropped for good.

        Transport failures keep it (the next SUBSCRIBE resends it), and so does any failure
        while the stream is down (the agent may only have refused it for being unsubscribed).
        Otherwise the agent refused the update itself and would refuse it again: it is dropped.
        """
        if code in TRANSPORT_CODES or self.phase is not Phase.SUBSCRIBED:
            return False
        return self._updates.pop(uuid, None) is not None

    def message_call(self, data: bytes) -> executor_pb2.Call:
        """The MESSAGE call carrying ``data`` to the scheduler (NotSubscribedError if offline:
        framework messages are best effort and not kept)."""
        if not isinstance(data, bytes):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")
        if self.phase is not Phase.SUBSCRIBED:
            raise NotSubscribedError(f"MESSAGE not sent: not subscribed ({self.phase.value})")
        call = self._call(_Call.MESSAGE)
        call.message.data = data
        return call

    # -- invariants --

    def validate(self) -> None:
        """Check the session's invariants; raises AssertionError naming the broken one."""
        phase = self.phase
        _check((phase is Phase.CLOSED) == (self.close_reason is not None), "close reason mismatch")
        if phase in (Phase.SUBSCRIBING, Phase.BACKING_OFF):
            _check(self._deadline is not None, f"no deadline in phase {phase.value}")
        else:
            _check(self._deadline is None, f"deadline kept in phase {phase.value}")
        if phase is Phase.SUBSCRIBED:
            _check(self.subscriptions > 0, "subscribed without a SUBSCRIBED event")
            _check(self.agent_info is not None, "subscribed without agent info")
        for uuid, status in self._updates.items():
            name = status.task_id.value
            _check(len(uuid) == 16, f"update of task {name!r} has a {len(uuid)}-byte uuid")
            _check(status.uuid == uuid, f"update of task {name!r} filed under another uuid")
            _check(
                status.source == mesos_pb2.TaskStatus.SOURCE_EXECUTOR,
                f"update of task {name!r} is not from the executor",
            )
            _check(
                status.executor_id.value == self.config.executor_id,
                f"update of task {name!r} names executor {status.executor_id.value!r}",
            )
            _check(
                status.state != mesos_pb2.TASK_STAGING,
                f"update of task {name!r} is {state_name(status.state)}",
            )
        for task_id, task in self._tasks.items():
            _check(task.task_id.value == task_id, f"task {task_id!r} filed under another id")
