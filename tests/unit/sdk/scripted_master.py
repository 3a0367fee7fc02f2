"""ScriptedMaster: a real gRPC ``Scheduler`` service on port 0 that plays a master from a script.

It serves the framework-facing service only, and does what the test says: every SUBSCRIBE gets
a stream id in the initial metadata and a SUBSCRIBED event (unless told otherwise), then
whatever events the test pushes with :meth:`ScriptedMaster.send`; the test can end a stream
(cleanly or with an error status), refuse the next SUBSCRIBE or unary calls with a status, hold
a call unanswered until released (so that the client's next calls queue up behind it), and wait
for the calls the client makes. Like the real master, it refuses unary calls without
their payload (INVALID_ARGUMENT) and those carrying a stream id other than the current stream's
(PERMISSION_DENIED).

With ``batched=True`` it also serves Emporion's extension like the real master:
``SubscribeBatched`` (every event queued for the stream goes out in one ``Events`` message) and
``Batch`` (each call handled as its unary method would be, one result each). Without it, those
methods answer UNIMPLEMENTED, as a master without the extension does. The calls of a ``Batch``
are recorded one by one, under their unary method's name, with the batch's number in
``RecordedCall.batch``; ``batches`` holds the size of each ``Batch`` received.

The server, the streams and the waiting come from
:class:`~tests.unit.sdk.scripted_service.ScriptedService`.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc

from framework_sdk.aio import LEADER_METADATA
from protos.v1 import mesos_pb2, scheduler_pb2
from tests.unit.sdk.scripted_service import (
    WAIT_SECONDS,
    ScriptedService,
    ScriptedStream,
    stream_handler,
    unary_handler,
)

Event = scheduler_pb2.Event


@dataclass
class RecordedCall:
    """A call as the master received it (``batch``: the index of its Batch in ``batches``)."""

    method: str
    call: scheduler_pb2.Call
    stream_id: str | None
    batch: int | None = None


@dataclass
class _Stream(ScriptedStream[Event]):
    stream_id: str
    framework_id: str


# Unary method -> the Call payload field it requires (as the real master does; None: none).
PAYLOADS: dict[str, str | None] = {
    "Teardown": None,
    "Accept": "accept",
    "Decline": "decline",
    "AcceptInverseOffers": "accept_inverse_offers",
    "DeclineInverseOffers": "decline_inverse_offers",
    "Revive": "revive",
    "Kill": "kill",
    "Shutdown": "shutdown",
    "Acknowledge": "acknowledge",
    "AcknowledgeOperationStatus": "acknowledge_operation_status",
    "Reconcile": "reconcile",
    "ReconcileOperations": "reconcile_operations",
    "Message": "message",
    "Request": "request",
    "Suppress": "suppress",
    "UpdateFramework": "update_framework",
}

# Call type -> its unary method ("AcknowledgeOperationStatus" for ACKNOWLEDGE_OPERATION_STATUS).
_METHOD_OF_TYPE: dict[int, str] = {
    scheduler_pb2.Call.Type.Value(re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()): name
    for name in PAYLOADS
}


class ScriptedMaster(ScriptedService[scheduler_pb2.Call, Event, _Stream]):
    """A scripted master: see the module docstring. Use as a context manager or start()/stop()."""

    _service = "mesos.v1.scheduler.Scheduler"
    _max_workers = 32

    def __init__(
        self,
        heartbeat_interval: float = 15.0,
        send_subscribed: bool = True,
        *,
        batched: bool = True,
    ) -> None:
        super().__init__()
        self.heartbeat_interval = heartbeat_interval
        self.send_subscribed = send_subscribed
        self.batched = batched
        self.calls: list[RecordedCall] = []
        self.batches: list[int] = []
        self.batched_streams = 0  # Streams opened with SubscribeBatched.
        self._subscribe_refusals: list[tuple[grpc.StatusCode, str, str | None]] = []
        self._refusals: dict[str, tuple[grpc.StatusCode, str]] = {}
        self._holds: dict[str, threading.Event] = {}
        self._ids = itertools.count(1)
        # Called (on a server thread) with every unary call after it was accepted, and with
        # each new stream's framework id after SUBSCRIBED; lets a test play a cluster.
        self.on_call: Callable[[RecordedCall], None] | None = None
        self.on_subscribed: Callable[[str], None] | None = None

    # -- the service --

    def _handlers(self) -> dict[str, grpc.RpcMethodHandler[Any, Any]]:
        call = scheduler_pb2.Call
        handlers = {"Subscribe": stream_handler(self._subscribe, call, Event)}
        for name in PAYLOADS:
            handlers[name] = unary_handler(self._unary_handler(name), call, scheduler_pb2.Accepted)
        if self.batched:
            handlers["SubscribeBatched"] = stream_handler(
                self._subscribe_batched, call, scheduler_pb2.Events
            )
            handlers["Batch"] = unary_handler(
                self._batch, scheduler_pb2.Calls, scheduler_pb2.CallResults
            )
        return handlers

    def _subscribe(
        self, request: scheduler_pb2.Call, context: grpc.ServicerContext
    ) -> Iterator[Event]:
        for events in self._stream(request, context, batched=False):
            yield from events

    def _subscribe_batched(
        self, request: scheduler_pb2.Call, context: grpc.ServicerContext
    ) -> Iterator[scheduler_pb2.Events]:
        for events in self._stream(request, context, batched=True):
            yield scheduler_pb2.Events(events=events)

    def _stream(
        self, request: scheduler_pb2.Call, context: grpc.ServicerContext, *, batched: bool
    ) -> Iterator[list[Event]]:
        """One subscription: the events to write, one event at a time unless ``batched``."""
        with self._cond:
            self.subscribe_calls.append(request)
            refusal = self._subscribe_refusals.pop(0) if self._subscribe_refusals else None
            self._cond.notify_all()
        if refusal is not None:
            code, message, leader = refusal
            if leader is not None:
                context.set_trailing_metadata(((LEADER_METADATA, leader),))
            context.abort(code, message)
        n = next(self._ids)
        framework_id = request.framework_id.value or f"framework-{n}"
        stream = _Stream(stream_id=f"stream-{n}", framework_id=framework_id)
        with self._cond:
            self.batched_streams += batched
        self._opened(stream)
        context.send_initial_metadata((("mesos-stream-id", stream.stream_id),))
        if self.send_subscribed:
            event = Event(type=Event.SUBSCRIBED)
            event.subscribed.framework_id.value = framework_id
            event.subscribed.heartbeat_interval_seconds = self.heartbeat_interval
            event.subscribed.master_info.id = "scripted-master"
            event.subscribed.master_info.hostname = "127.0.0.1"
            yield [event]
            if self.on_subscribed is not None:
                self.on_subscribed(framework_id)
        # Like the real master, a batched stream writes everything queued in one message.
        yield from self._written(stream, context, batched=batched)

    def _handle(
        self, method: str, request: scheduler_pb2.Call, stream_id: str | None, batch: int | None
    ) -> tuple[grpc.StatusCode, str] | None:
        """Take one call as the real master would: None, or the status refusing it."""
        recorded = RecordedCall(method, request, stream_id, batch)
        with self._cond:
            self.calls.append(recorded)
            refusal = self._refusals.pop(method, None)
            hold = self._holds.pop(method, None)
            current = self._streams[-1].stream_id if self._streams else None
            self._cond.notify_all()
        if hold is not None:
            assert hold.wait(WAIT_SECONDS), f"{method} held for too long"
        if refusal is not None:
            return refusal
        payload = PAYLOADS[method]
        if payload is not None and payload not in {f.name for f, _ in request.ListFields()}:
            return grpc.StatusCode.INVALID_ARGUMENT, f"{payload} is required"
        if stream_id != current:
            return grpc.StatusCode.PERMISSION_DENIED, "stream id is not the current one"
        if method == "Teardown":
            self.end_stream()
        if self.on_call is not None:
            self.on_call(recorded)
        return None

    def _unary_handler(
        self, method: str
    ) -> Callable[[scheduler_pb2.Call, grpc.ServicerContext], scheduler_pb2.Accepted]:
        def handle(
            request: scheduler_pb2.Call, context: grpc.ServicerContext
        ) -> scheduler_pb2.Accepted:
            refusal = self._handle(method, request, _stream_id(context), None)
            if refusal is not None:
                context.abort(*refusal)
            return scheduler_pb2.Accepted()

        return handle

    def _batch(
        self, request: scheduler_pb2.Calls, context: grpc.ServicerContext
    ) -> scheduler_pb2.CallResults:
        stream_id = _stream_id(context)
        with self._cond:
            batch = len(self.batches)
            self.batches.append(len(request.calls))
        reply = scheduler_pb2.CallResults()
        for call in request.calls:
            refusal: tuple[grpc.StatusCode, str] | None
            method = _METHOD_OF_TYPE.get(call.type)
            if method is None:
                refusal = grpc.StatusCode.INVALID_ARGUMENT, "not a call Batch takes"
            else:
                refusal = self._handle(method, call, stream_id, batch)
            if refusal is None:
                reply.results.add(code=0)
            else:
                reply.results.add(code=refusal[0].value[0], message=refusal[1])
        return reply

    # -- scripting --

    def refuse_next_subscribe(
        self, code: grpc.StatusCode, message: str, *, leader: str | None = None
    ) -> None:
        """Answer the next SUBSCRIBE with this status (once; several calls queue up);
        ``leader`` is sent as ``emporion-leader`` trailing metadata, as a non-leading master
        does."""
        with self._cond:
            self._subscribe_refusals.append((code, message, leader))

    def refuse_next(self, method: str, code: grpc.StatusCode, message: str) -> None:
        """Answer the next call of ``method`` (e.g. ``"Accept"``) with this status."""
        with self._cond:
            self._refusals[method] = (code, message)

    def hold_next(self, method: str) -> threading.Event:
        """Keep the next call of ``method`` (recorded at once) unanswered until the returned
        event is set, so that the client's next calls queue up behind it."""
        release = threading.Event()
        with self._cond:
            self._holds[method] = release
        return release

    # -- waiting --

    def wait_calls(self, method: str, count: int = 1) -> list[RecordedCall]:
        """Wait until ``count`` calls of ``method`` arrived; returns them in order."""

        def matching() -> list[RecordedCall]:
            return [c for c in self.calls if c.method == method]

        self._wait(
            lambda: len(matching()) >= count,
            lambda: f"expected {count} {method} calls, got {[c.method for c in self.calls]}",
        )
        with self._cond:
            return matching()

    def methods(self) -> list[str]:
        """The unary methods called so far, in arrival order."""
        with self._cond:
            return [c.method for c in self.calls]


class ScriptedCluster:
    """Plays a two-agent cluster on a ScriptedMaster.

    Offers both agents (cpus:1;mem:1024 each) on every subscription, answers each launched task
    with TASK_RUNNING then TASK_FINISHED twice (updates are at-least-once), all with uuids, and
    echoes framework messages back as if from the executor.
    """

    def __init__(self, master: ScriptedMaster) -> None:
        self.master = master
        self.uuids = itertools.count(1)
        master.on_subscribed = self.offer
        master.on_call = self.handle

    def offer(self, framework_id: str) -> None:
        self.master.send(
            offers_event(
                make_offer("o1", agent_id="agent-1", resources="cpus:1;mem:1024"),
                make_offer("o2", agent_id="agent-2", resources="cpus:1;mem:1024"),
            )
        )

    def uuid(self) -> bytes:
        return next(self.uuids).to_bytes(16, "big")

    def handle(self, recorded: RecordedCall) -> None:
        if recorded.method == "Message":  # Executors echo what they are sent.
            message = recorded.call.message
            self.master.send(
                message_event(message.agent_id.value, message.executor_id.value, message.data)
            )
        if recorded.method != "Accept":
            return
        for op in recorded.call.accept.operations:
            for task in op.launch.task_infos:
                agent = task.agent_id.value
                self.master.send(
                    update_event(
                        task.task_id.value, mesos_pb2.TASK_RUNNING, uuid=self.uuid(), agent_id=agent
                    ),
                    update_event(
                        task.task_id.value,
                        mesos_pb2.TASK_FINISHED,
                        uuid=self.uuid(),
                        agent_id=agent,
                    ),
                    update_event(
                        task.task_id.value,
                        mesos_pb2.TASK_FINISHED,
                        uuid=self.uuid(),
                        agent_id=agent,
                    ),
                )


# -- event builders --


def _stream_id(context: grpc.ServicerContext) -> str | None:
    stream_id = dict(context.invocation_metadata()).get("mesos-stream-id")
    assert stream_id is None or isinstance(stream_id, str)
    return stream_id


def offers_event(*offers: mesos_pb2.Offer) -> Event:
    """An OFFERS event."""
    event = Event(type=Event.OFFERS)
    event.offers.offers.extend(offers)
    return event


def make_offer(
    offer_id: str, agent_id: str = "agent-1", resources: str = "cpus:4;mem:1024", role: str = "*"
) -> mesos_pb2.Offer:
    """An offer of ``resources`` on ``agent_id`` for ``role``."""
    from protos.resources import Resources

    offer = mesos_pb2.Offer(hostname="host-1")
    offer.id.value = offer_id
    offer.agent_id.value = agent_id
    offer.framework_id.value = "framework-1"
    offer.allocation_info.role = role
    offer.resources.extend(Resources.parse(resources).to_protos(allocation_role=role))
    return offer


def update_event(
    task_id: str,
    state: int,
    *,
    uuid: bytes | None = None,
    agent_id: str = "agent-1",
) -> Event:
    """An UPDATE event for a task (with a uuid when ``uuid`` is given)."""
    event = Event(type=Event.UPDATE)
    status = event.update.status
    status.task_id.value = task_id
    status.state = state  # type: ignore[assignment]
    status.agent_id.value = agent_id
    if uuid is not None:
        status.uuid = uuid
    return event


def rescind_event(offer_id: str) -> Event:
    """A RESCIND event."""
    event = Event(type=Event.RESCIND)
    event.rescind.offer_id.value = offer_id
    return event


def error_event(message: str) -> Event:
    """An ERROR event."""
    event = Event(type=Event.ERROR)
    event.error.message = message
    return event


def heartbeat_event() -> Event:
    """A HEARTBEAT event."""
    return Event(type=Event.HEARTBEAT)


def message_event(agent_id: str, executor_id: str, data: bytes) -> Event:
    """A MESSAGE event from an executor."""
    event = Event(type=Event.MESSAGE)
    event.message.agent_id.value = agent_id
    event.message.executor_id.value = executor_id
    event.message.data = data
    return event


def failure_event(
    agent_id: str, executor_id: str | None = None, status: int | None = None
) -> Event:
    """A FAILURE event: agent lost (no executor) or executor exited."""
    event = Event(type=Event.FAILURE)
    event.failure.agent_id.value = agent_id
    if executor_id is not None:
        event.failure.executor_id.value = executor_id
    if status is not None:
        event.failure.status = status
    return event


__all__ = [
    "WAIT_SECONDS",
    "RecordedCall",
    "ScriptedCluster",
    "ScriptedMaster",
    "error_event",
    "failure_event",
    "heartbeat_event",
    "make_offer",
    "message_event",
    "offers_event",
    "rescind_event",
    "update_event",
]
