"""ScriptedAgent: a real gRPC ``Executor`` service on port 0 that plays an agent from a script.

It serves the executor API only, and does what the test says: every SUBSCRIBE gets a SUBSCRIBED
event (unless the test queued a refusal), then whatever events the test pushes with
:meth:`ScriptedAgent.send`. Like the real agent it acknowledges every UPDATE it takes (and every
unacknowledged update a re-SUBSCRIBE carries) with an ACKNOWLEDGED event, unless ``auto_ack``
is off. The test can end a stream (cleanly or with an error status), refuse calls, stop serving
and serve again on the same port (an agent restart), and wait for what the executor sent.

The server, the streams and the waiting come from
:class:`~tests.unit.sdk.scripted_service.ScriptedService`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc

from protos.v1 import executor_pb2, mesos_pb2
from tests.unit.sdk.scripted_service import (
    WAIT_SECONDS,
    ScriptedService,
    ScriptedStream,
    stream_handler,
    unary_handler,
)

Event = executor_pb2.Event
Call = executor_pb2.Call

AGENT_ID = "agent-1"
FRAMEWORK_ID = "framework-1"
EXECUTOR_ID = "executor-1"


class ScriptedAgent(ScriptedService[Call, Event, ScriptedStream[Event]]):
    """A scripted agent: see the module docstring. Use as a context manager or start()/stop()."""

    _service = "mesos.v1.executor.Executor"
    _max_workers = 16
    # Stopping is an agent going away: the executor sees UNAVAILABLE.
    _end_on_stop = (grpc.StatusCode.UNAVAILABLE, "agent stopped")

    def __init__(self, *, auto_ack: bool = True) -> None:
        super().__init__()
        self.auto_ack = auto_ack
        self.updates: list[Call] = []
        self.messages: list[Call] = []
        self._refusals: dict[str, list[tuple[grpc.StatusCode, str]]] = {}
        # Called (on a server thread) after each accepted UPDATE and MESSAGE, and after
        # SUBSCRIBED went out; lets a test play the rest of a cluster.
        self.on_update: Callable[[Call], None] | None = None
        self.on_message: Callable[[Call], None] | None = None
        self.on_subscribed: Callable[[Call], None] | None = None

    # -- lifecycle --

    def environ(
        self,
        *,
        checkpoint: bool = False,
        recovery_timeout: str = "20secs",
        backoff_max: str = "20ms",
        grace: str = "10secs",
    ) -> dict[str, str]:
        """The environment an agent would give its executor."""
        return {
            "MESOS_AGENT_ENDPOINT": self.address,
            "MESOS_FRAMEWORK_ID": FRAMEWORK_ID,
            "MESOS_EXECUTOR_ID": EXECUTOR_ID,
            "MESOS_SANDBOX": "/tmp",
            "MESOS_CHECKPOINT": "1" if checkpoint else "0",
            "MESOS_RECOVERY_TIMEOUT": recovery_timeout,
            "MESOS_SUBSCRIPTION_BACKOFF_MAX": backoff_max,
            "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": grace,
        }

    # -- the service --

    def _handlers(self) -> dict[str, grpc.RpcMethodHandler[Any, Any]]:
        handlers = {"Subscribe": stream_handler(self._subscribe, Call, Event)}
        for name, records in (
            ("Update", self.updates),
            ("Message", self.messages),
            ("Heartbeat", None),
        ):
            handlers[name] = unary_handler(
                self._unary_handler(name, records), Call, executor_pb2.Accepted
            )
        return handlers

    def _refusal(self, method: str) -> tuple[grpc.StatusCode, str] | None:
        pending = self._refusals.get(method)
        return pending.pop(0) if pending else None

    def _subscribe(self, request: Call, context: grpc.ServicerContext) -> Iterator[Event]:
        with self._cond:
            self.subscribe_calls.append(request)
            refusal = self._refusal("Subscribe")
            self._cond.notify_all()
        if refusal is not None:
            context.abort(*refusal)
        stream: ScriptedStream[Event] = ScriptedStream()
        self._opened(stream)
        yield subscribed_event(
            executor_id=request.executor_id.value or EXECUTOR_ID,
            framework_id=request.framework_id.value or FRAMEWORK_ID,
        )
        if self.auto_ack:
            for update in request.subscribe.unacknowledged_updates:
                stream.outbox.put(ack_event(update.status))
        if self.on_subscribed is not None:
            self.on_subscribed(request)
        for events in self._written(stream, context):
            yield from events

    def _unary_handler(
        self, method: str, records: list[Call] | None
    ) -> Callable[[Call, grpc.ServicerContext], executor_pb2.Accepted]:
        def handle(request: Call, context: grpc.ServicerContext) -> executor_pb2.Accepted:
            with self._cond:
                refusal = self._refusal(method)
                if refusal is None and records is not None:
                    records.append(request)
                self._cond.notify_all()
            if refusal is not None:
                context.abort(*refusal)
            if method == "Update":
                if self.auto_ack:
                    self.send(ack_event(request.update.status))
                if self.on_update is not None:
                    self.on_update(request)
            elif method == "Message" and self.on_message is not None:
                self.on_message(request)
            return executor_pb2.Accepted()

        return handle

    # -- scripting --

    def refuse_next(self, method: str, code: grpc.StatusCode, message: str) -> None:
        """Answer the next call of ``method`` (``"Subscribe"``, ``"Update"``...) with a status;
        several refusals of one method queue up."""
        with self._cond:
            self._refusals.setdefault(method, []).append((code, message))

    # -- waiting --

    def wait_updates(self, count: int) -> list[mesos_pb2.TaskStatus]:
        """Wait until ``count`` UPDATE calls were taken; their statuses in order."""
        self._wait(lambda: len(self.updates) >= count, lambda: f"timed out: {count} UPDATE calls")
        with self._cond:
            return [call.update.status for call in self.updates]

    def wait_messages(self, count: int) -> list[bytes]:
        """Wait until ``count`` MESSAGE calls were taken; their data in order."""
        self._wait(lambda: len(self.messages) >= count, lambda: f"timed out: {count} MESSAGE calls")
        with self._cond:
            return [call.message.data for call in self.messages]


# -- event builders --


def subscribed_event(
    agent_id: str = AGENT_ID, executor_id: str = EXECUTOR_ID, framework_id: str = FRAMEWORK_ID
) -> Event:
    """A SUBSCRIBED event for an executor of a framework on ``agent_id``."""
    event = Event(type=Event.SUBSCRIBED)
    subscribed = event.subscribed
    subscribed.executor_info.executor_id.value = executor_id
    subscribed.executor_info.framework_id.value = framework_id
    subscribed.framework_info.id.value = framework_id
    subscribed.framework_info.name = "scripted-framework"
    subscribed.framework_info.user = "tester"
    subscribed.agent_info.id.value = agent_id
    subscribed.agent_info.hostname = "127.0.0.1"
    subscribed.container_id.value = "container-1"
    return event


def task(task_id: str, data: bytes = b"") -> mesos_pb2.TaskInfo:
    """A TaskInfo for this executor."""
    info = mesos_pb2.TaskInfo(name=task_id, data=data)
    info.task_id.value = task_id
    info.agent_id.value = AGENT_ID
    info.executor.executor_id.value = EXECUTOR_ID
    return info


def launch_event(task_id: str, data: bytes = b"") -> Event:
    """A LAUNCH event."""
    event = Event(type=Event.LAUNCH)
    event.launch.task.CopyFrom(task(task_id, data))
    return event


def launch_group_event(*task_ids: str) -> Event:
    """A LAUNCH_GROUP event."""
    event = Event(type=Event.LAUNCH_GROUP)
    event.launch_group.task_group.tasks.extend(task(t) for t in task_ids)
    return event


def kill_event(task_id: str, grace_seconds: float | None = None) -> Event:
    """A KILL event (with a kill policy when ``grace_seconds`` is given)."""
    event = Event(type=Event.KILL)
    event.kill.task_id.value = task_id
    if grace_seconds is not None:
        event.kill.kill_policy.grace_period.nanoseconds = int(grace_seconds * 1e9)
    return event


def ack_event(status: mesos_pb2.TaskStatus) -> Event:
    """An ACKNOWLEDGED event for ``status``."""
    event = Event(type=Event.ACKNOWLEDGED)
    event.acknowledged.task_id.CopyFrom(status.task_id)
    event.acknowledged.uuid = status.uuid
    return event


def message_event(data: bytes) -> Event:
    """A MESSAGE event from the scheduler."""
    event = Event(type=Event.MESSAGE)
    event.message.data = data
    return event


def shutdown_event() -> Event:
    """A SHUTDOWN event."""
    return Event(type=Event.SHUTDOWN)


def error_event(message: str) -> Event:
    """An ERROR event."""
    event = Event(type=Event.ERROR)
    event.error.message = message
    return event


def heartbeat_event() -> Event:
    """A HEARTBEAT event."""
    return Event(type=Event.HEARTBEAT)


__all__ = [
    "AGENT_ID",
    "EXECUTOR_ID",
    "FRAMEWORK_ID",
    "WAIT_SECONDS",
    "ScriptedAgent",
    "ack_event",
    "error_event",
    "heartbeat_event",
    "kill_event",
    "launch_event",
    "launch_group_event",
    "message_event",
    "shutdown_event",
    "subscribed_event",
    "task",
]
