"""The executor API: the gRPC ``mesos.v1.executor.Executor`` service custom executors talk to.

A thin adapter: it checks each call's envelope, hands the call to the runtime (which runs the
agent's core), and maps the core's refusals to gRPC status codes — ``NOT_FOUND`` for an unknown
framework, executor or task, ``FAILED_PRECONDITION`` for a call the current state forbids (an
UPDATE before SUBSCRIBE), ``INVALID_ARGUMENT`` for a malformed one. Each subscription gets an
event queue in the :class:`ExecutorHub`; the stream carries a HEARTBEAT when idle for 30 s.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable
from typing import NoReturn, Protocol

import grpc
from grpc import aio

from agent.core import InvalidCall, NotAllowedNow, UnknownTarget
from protos.limits import GRPC_MESSAGE_OPTIONS
from protos.v1 import executor_pb2, executor_pb2_grpc, mesos_pb2

__all__ = [
    "ExecutorCalls",
    "ExecutorHub",
    "ExecutorService",
    "Subscription",
    "envelope",
    "message_call",
    "start_executor_server",
    "update_call",
]

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (framework id, executor id)
HEARTBEAT_INTERVAL = 30.0  # Mesos's DEFAULT_HEARTBEAT_INTERVAL for HTTP executors.

_Call = executor_pb2.Call


class ExecutorCalls(Protocol):
    """What the runtime does with executor calls (each may raise the core's refusals)."""

    def executor_subscribe(
        self, framework_id: str, executor_id: str, subscribe: executor_pb2.Call.Subscribe
    ) -> None: ...

    def executor_update(
        self, framework_id: str, executor_id: str, status: mesos_pb2.TaskStatus
    ) -> None: ...

    def executor_message(self, framework_id: str, executor_id: str, data: bytes) -> None: ...

    def executor_disconnected(self, framework_id: str, executor_id: str) -> None: ...


class ExecutorHub:
    """ExecutorHub holds the event queue of every subscribed executor (one per executor)."""

    def __init__(self) -> None:
        self._queues: dict[Key, asyncio.Queue[executor_pb2.Event | None]] = {}

    def open(self, key: Key) -> asyncio.Queue[executor_pb2.Event | None]:
        """A fresh queue for ``key``; a previous subscription's stream is ended."""
        self.close(key)
        queue: asyncio.Queue[executor_pb2.Event | None] = asyncio.Queue()
        self._queues[key] = queue
        return queue

    def send(self, key: Key, event: executor_pb2.Event) -> bool:
        """Queue ``event`` for the executor; False if it has no open stream."""
        queue = self._queues.get(key)
        if queue is None:
            return False
        queue.put_nowait(event)
        return True

    def close(
        self, key: Key, queue: asyncio.Queue[executor_pb2.Event | None] | None = None
    ) -> bool:
        """End ``key``'s stream (only if it is still ``queue``, when given); True if it was open."""
        current = self._queues.get(key)
        if current is None or (queue is not None and current is not queue):
            return False
        del self._queues[key]
        current.put_nowait(None)
        return True

    def close_all(self) -> None:
        """End every stream."""
        for key in list(self._queues):
            self.close(key)

    def __contains__(self, key: object) -> bool:
        return key in self._queues


async def _abort(context: aio.ServicerContext[object, object], error: Exception) -> NoReturn:
    if isinstance(error, UnknownTarget):
        code = grpc.StatusCode.NOT_FOUND
    elif isinstance(error, NotAllowedNow):
        code = grpc.StatusCode.FAILED_PRECONDITION
    else:
        code = grpc.StatusCode.INVALID_ARGUMENT
    await context.abort(code, str(error))
    raise AssertionError("unreachable")  # context.abort always raises


def envelope(call: executor_pb2.Call, expected: executor_pb2.Call.Type.ValueType) -> Key:
    """The (framework id, executor id) of ``call``; InvalidCall if its type is not
    ``expected`` or an id is empty."""
    name = executor_pb2.Call.Type.Name(expected)
    if call.type != expected:
        raise InvalidCall(f"call.type must be {name} for this method")
    if not call.framework_id.value:
        raise InvalidCall("call.framework_id is empty")
    if not call.executor_id.value:
        raise InvalidCall("call.executor_id is empty")
    return (call.framework_id.value, call.executor_id.value)


def update_call(calls: ExecutorCalls, call: executor_pb2.Call) -> None:
    """Carry out an UPDATE call (the core's refusals raise)."""
    key = envelope(call, _Call.UPDATE)
    if not call.HasField("update") or not call.update.HasField("status"):
        raise InvalidCall("call.update.status is required")
    calls.executor_update(*key, call.update.status)


def message_call(calls: ExecutorCalls, call: executor_pb2.Call) -> None:
    """Carry out a MESSAGE call (the core's refusals raise)."""
    calls.executor_message(*envelope(call, _Call.MESSAGE), call.message.data)


def _heartbeat_call(calls: ExecutorCalls, call: executor_pb2.Call) -> None:
    envelope(call, _Call.HEARTBEAT)


class Subscription:
    """One executor's subscription, over gRPC or HTTP: :meth:`open` checks the call and
    subscribes (raising the core's refusals, with nothing left open), :meth:`events` is the
    stream (SUBSCRIBED first, a HEARTBEAT when idle), which on its end closes the queue and
    tells the core the executor disconnected."""

    def __init__(self, calls: ExecutorCalls, hub: ExecutorHub, heartbeat: float) -> None:
        self._calls = calls
        self._hub = hub
        self._heartbeat = heartbeat

    def open(self, call: executor_pb2.Call) -> tuple[Key, asyncio.Queue[executor_pb2.Event | None]]:
        """Subscribe ``call``'s executor: its key and event queue."""
        key = envelope(call, _Call.SUBSCRIBE)
        queue = self._hub.open(key)
        try:
            self._calls.executor_subscribe(*key, call.subscribe)
        except (InvalidCall, UnknownTarget):
            self._hub.close(key, queue)
            raise
        return key, queue

    async def events(
        self, key: Key, queue: asyncio.Queue[executor_pb2.Event | None]
    ) -> AsyncIterator[executor_pb2.Event]:
        """The subscription's events until it ends (a new subscription, the agent's stop)."""
        try:
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), self._heartbeat)
                except TimeoutError:
                    yield executor_pb2.Event(type=executor_pb2.Event.HEARTBEAT)
                    continue
                if event is None:
                    return
                yield event
        finally:
            if self._hub.close(key, queue):
                self._calls.executor_disconnected(*key)


class ExecutorService(executor_pb2_grpc.ExecutorServicer):
    """ExecutorService serves the executor API for one agent."""

    def __init__(
        self, calls: ExecutorCalls, hub: ExecutorHub, heartbeat: float = HEARTBEAT_INTERVAL
    ) -> None:
        self._calls = calls
        self._subscriptions = Subscription(calls, hub, heartbeat)

    async def Subscribe(
        self, request: executor_pb2.Call, context: aio.ServicerContext[object, object]
    ) -> AsyncIterator[executor_pb2.Event]:
        """SUBSCRIBE: the executor's event stream, starting with SUBSCRIBED."""
        try:
            key, queue = self._subscriptions.open(request)
        except (InvalidCall, UnknownTarget) as error:
            await _abort(context, error)
        async for event in self._subscriptions.events(key, queue):
            yield event

    async def _unary(
        self,
        request: executor_pb2.Call,
        context: aio.ServicerContext[object, object],
        handle: Callable[[ExecutorCalls, executor_pb2.Call], None],
    ) -> executor_pb2.Accepted:
        try:
            handle(self._calls, request)
        except (InvalidCall, UnknownTarget) as error:
            await _abort(context, error)
        return executor_pb2.Accepted()

    async def Update(
        self, request: executor_pb2.Call, context: aio.ServicerContext[object, object]
    ) -> executor_pb2.Accepted:
        """UPDATE: a task status update (the executor set its uuid)."""
        return await self._unary(request, context, update_call)

    async def Message(
        self, request: executor_pb2.Call, context: aio.ServicerContext[object, object]
    ) -> executor_pb2.Accepted:
        """MESSAGE: opaque data for the scheduler."""
        return await self._unary(request, context, message_call)

    async def Heartbeat(
        self, request: executor_pb2.Call, context: aio.ServicerContext[object, object]
    ) -> executor_pb2.Accepted:
        """HEARTBEAT: nothing to do but answer."""
        return await self._unary(request, context, _heartbeat_call)


async def start_executor_server(
    service: ExecutorService, ports: list[int]
) -> tuple[aio.Server, int]:
    """Serve ``service`` on 127.0.0.1 at the first of ``ports`` that binds (0: any port)."""
    for port in ports:
        if port and not _bindable(port):  # (Checked first: gRPC would log its own error.)
            log.warning("Executor API: port %d is taken", port)
            continue
        server = aio.server(options=GRPC_MESSAGE_OPTIONS)
        executor_pb2_grpc.add_ExecutorServicer_to_server(service, server)
        try:
            bound = server.add_insecure_port(f"127.0.0.1:{port}")
        except RuntimeError:
            bound = 0
        if bound:
            await server.start()
            return server, bound
        log.warning("Executor API: port %d is taken", port)
    taken = ", ".join(f"127.0.0.1:{port}" for port in ports)
    raise OSError(f"cannot serve the executor API on {taken} (--executor-port): in use")


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
