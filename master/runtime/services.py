"""The gRPC servicers: thin adapters from RPCs to :class:`~master.runtime.driver.MasterRuntime`.

``Scheduler`` (mesos.v1.scheduler): ``Subscribe`` answers with the stream id in the initial
metadata ``mesos-stream-id`` and then streams events; every other method takes the full Call,
checks that its type matches the method, and returns ``Accepted`` once the state machine took the
call. Refused calls end with the gRPC status of their :class:`~master.core.CallError`.

Emporion's extension to it: ``SubscribeBatched`` is ``Subscribe`` writing every event queued
for the stream in one ``Events`` message (an event is never held back to wait for more), and
``Batch`` feeds its calls to the state machine one by one, in order, exactly as their unary
methods would, answering each with its own status in ``CallResults``.

``AgentGateway``: ``Connect`` (one message per stream message) and ``ConnectBatched`` (batches)
carry one agent session each.

Both serve whatever runtime their :class:`Gate` holds: a master that does not lead (``--zk``)
has none, and refuses every call and stream with ``UNAVAILABLE``, naming the leader in the
details (``not the leading master; the leader is at HOST:PORT``) and in the trailing metadata
``emporion-leader`` (absent, and ``no leader`` in the details, while none is known), so clients
go there at once. A stream keeps the runtime it started with: when the master steps down, that
runtime is stopped and its streams are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import NoReturn, TypeVar

import grpc
from grpc import aio

from master.auth import MasterSecurity, PermissionDeniedError
from master.auth.edge import call_principal, refuse
from master.core import CallError, ErrorCode
from master.core.faults import CoreFaultError
from master.runtime.driver import MasterRuntime
from master.runtime.outbox import AgentChannel, EventChannel
from master.runtime.registration import refuse_undecodable, undecodable
from protos.limits import MAX_MESSAGE_BYTES, batches
from protos.v1 import agent_internal_pb2, agent_internal_pb2_grpc, scheduler_pb2, scheduler_pb2_grpc

__all__ = [
    "LEADER_KEY",
    "STREAM_ID_KEY",
    "AgentGatewayService",
    "AgentStreams",
    "Gate",
    "SchedulerService",
]

log = logging.getLogger("master.runtime")

TAKING_LEAD_WAIT_S = 30.0
"""The longest a call waits for a master that was elected to serve (loading the registry)."""

STREAM_ID_KEY = "mesos-stream-id"
"""Metadata key of the subscription stream id (Mesos's ``Mesos-Stream-Id`` header)."""

LEADER_KEY = "emporion-leader"
"""Trailing metadata key of a refusal by a master that does not lead: the leader's address."""

_Call = scheduler_pb2.Call
_ACCEPTED = scheduler_pb2.Accepted()

# Numeric gRPC status codes for CallResults.Result.code (grpc.StatusCode's value is (int, str)).
_OK: int = grpc.StatusCode.OK.value[0]
_INTERNAL: int = grpc.StatusCode.INTERNAL.value[0]
_STATUS_CODES: dict[ErrorCode, int] = {
    code: grpc.StatusCode[code.value].value[0] for code in ErrorCode
}


M = TypeVar("M", agent_internal_pb2.AgentMessage, agent_internal_pb2.AgentMessages)


async def _abort(context: aio.ServicerContext[object, object], error: CallError) -> NoReturn:
    await context.abort(grpc.StatusCode[error.code.value], error.message)
    raise AssertionError("unreachable")  # abort raises


class Gate:
    """Gate holds the runtime serving calls now: the leader's, or None while not leading.

    ``leader`` gives the leading master's gRPC address for refusals (None: none known).
    """

    def __init__(
        self,
        runtime: MasterRuntime | None = None,
        leader: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.runtime = runtime
        self.leader = leader
        self.security: MasterSecurity | None = None
        """Authentication and authorization at this edge (None: none, every call allowed)."""
        self._taking_lead: asyncio.Event | None = None

    def taking_lead(self) -> None:
        """This master was elected and is loading the registry: calls wait for the runtime
        (up to :data:`TAKING_LEAD_WAIT_S`) instead of being refused. Refused, the agents and
        frameworks that ZooKeeper already sent here would back off, some for seconds, and
        come back long after the new leader serves (10,000 agents took 12 s)."""
        if self._taking_lead is None:
            self._taking_lead = asyncio.Event()

    def settled(self) -> None:
        """The election's outcome is known (serving, or not after all): waiting calls go on."""
        waiting, self._taking_lead = self._taking_lead, None
        if waiting is not None:
            waiting.set()

    async def enter(self, context: aio.ServicerContext[object, object]) -> MasterRuntime:
        """The runtime to serve a call with; aborts it with UNAVAILABLE when not leading (a
        call that comes while the master takes the lead waits until it serves)."""
        runtime = self.runtime
        if runtime is not None:
            return runtime
        waiting = self._taking_lead
        if waiting is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiting.wait(), TAKING_LEAD_WAIT_S)
            runtime = self.runtime
            if runtime is not None:
                return runtime
        leader = self.leader()
        if leader is None:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE, "not the leading master; no leader is known"
            )
        context.set_trailing_metadata(((LEADER_KEY, leader),))
        await context.abort(
            grpc.StatusCode.UNAVAILABLE, f"not the leading master; the leader is at {leader}"
        )
        raise AssertionError("unreachable")  # abort raises


def _stream_id(context: aio.ServicerContext[object, object]) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == STREAM_ID_KEY:
            return value if isinstance(value, str) else value.decode()
    return None


class SchedulerService(scheduler_pb2_grpc.SchedulerServicer):
    """SchedulerService serves the scheduler API (see the module docstring)."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    async def Subscribe(
        self, request: scheduler_pb2.Call, context: aio.ServicerContext[object, object]
    ) -> AsyncIterator[scheduler_pb2.Event]:
        """SUBSCRIBE: register or fail over, then stream events until either side ends."""
        async for events in self._subscription(request, context):
            for event in events:
                yield event

    async def SubscribeBatched(
        self, request: scheduler_pb2.Call, context: aio.ServicerContext[object, object]
    ) -> AsyncIterator[scheduler_pb2.Events]:
        """SUBSCRIBE whose events go out grouped: all those queued, in one message per write
        (several when one would exceed the message limit, :mod:`protos.limits`)."""
        async for events in self._subscription(request, context):
            batch = scheduler_pb2.Events(events=events)
            if len(events) == 1 or batch.ByteSize() <= MAX_MESSAGE_BYTES:
                yield batch
            else:
                for group in batches(events):
                    yield scheduler_pb2.Events(events=group)

    async def _subscription(
        self, request: scheduler_pb2.Call, context: aio.ServicerContext[object, object]
    ) -> AsyncIterator[list[scheduler_pb2.Event]]:
        """Subscribe, send the stream id, then yield the events queued at each wake-up."""
        if (bad := undecodable(request)) is not None:
            await refuse_undecodable(bad, context)
        runtime = await self.gate.enter(context)
        security = self.gate.security
        if security is not None:
            principal = await call_principal(security, context, security.flags.frameworks)
            known = runtime.core.framework(
                request.framework_id.value or request.subscribe.framework_info.id.value
            )
            try:
                security.check_subscribe(principal, request, None if known is None else known.info)
            except PermissionDeniedError as denied:
                await refuse(context, denied)
            if principal is not None:
                request.subscribe.framework_info.principal = principal
        stream_id = str(uuid.uuid4())
        channel = EventChannel()
        try:
            runtime.subscribe(stream_id, request, channel)
        except CallError as error:
            await _abort(context, error)
        except CoreFaultError as fault:
            await context.abort(grpc.StatusCode.INTERNAL, fault.message)
        try:
            await context.send_initial_metadata(((STREAM_ID_KEY, stream_id),))
            while (events := await channel.take()) is not None:
                yield events
        finally:
            runtime.subscription_ended(stream_id)

    async def Batch(
        self, request: scheduler_pb2.Calls, context: aio.ServicerContext[object, object]
    ) -> scheduler_pb2.CallResults:
        """Several calls of one subscription, applied in order; one result per call.

        Each call goes to the state machine as its unary method would take it, so a refused
        call changes nothing and the calls after it still apply.
        """
        if (bad := undecodable(request)) is not None:
            await refuse_undecodable(bad, context)
        runtime = await self.gate.enter(context)
        if (security := self.gate.security) is not None:
            principal = await call_principal(security, context, security.flags.frameworks)
            for call in request.calls:
                known = runtime.core.framework(call.framework_id.value)
                try:
                    security.check_call(principal, call, None if known is None else known.info)
                except PermissionDeniedError as denied:
                    await refuse(context, denied)
        outcomes = runtime.call_batch(_stream_id(context), request.calls)
        reply = scheduler_pb2.CallResults()
        add = reply.results.add
        for outcome in outcomes:
            if outcome is None:
                add(code=_OK)
            elif isinstance(outcome, CallError):
                add(code=_STATUS_CODES[outcome.code], message=outcome.message)
            elif isinstance(outcome, CoreFaultError):
                add(code=_INTERNAL, message=outcome.message)
            else:
                add(code=_INTERNAL, message="the master failed to handle the call")
        return reply

    async def _unary(
        self,
        request: scheduler_pb2.Call,
        context: aio.ServicerContext[object, object],
        expected: int,
    ) -> scheduler_pb2.Accepted:
        if (bad := undecodable(request)) is not None:
            await refuse_undecodable(bad, context)
        if request.type != expected:
            name = _Call.Type.Name(expected)  # type: ignore[arg-type]
            got = _Call.Type.Name(request.type) if request.type in _Call.Type.values() else "?"
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"type {got} does not match the method (it takes {name} calls)",
            )
        runtime = await self.gate.enter(context)
        if (security := self.gate.security) is not None:
            principal = await call_principal(security, context, security.flags.frameworks)
            known = runtime.core.framework(request.framework_id.value)
            try:
                security.check_call(principal, request, None if known is None else known.info)
            except PermissionDeniedError as denied:
                await refuse(context, denied)
        try:
            runtime.call(_stream_id(context), request)
        except CallError as error:
            await _abort(context, error)
        except CoreFaultError as fault:
            await context.abort(grpc.StatusCode.INTERNAL, fault.message)
        return _ACCEPTED

    async def Teardown(
        self, request: _Call, context: aio.ServicerContext[object, object]
    ) -> scheduler_pb2.Accepted:
        """TEARDOWN."""
        return await self._unary(request, context, _Call.TEARDOWN)

    async def Accept(
        self, request: _Call, context: aio.ServicerContext[object, object]
    ) -> scheduler_pb2.Accepted:
        """ACCEPT."""
        return await self._unary(request, context, _Call.ACCEPT)

    async def Decline(
        self, request: _Call, context: aio.ServicerContext[object, object]
    ) -> scheduler_pb2.Accepted:
        """DECLINE."""
        return await self._unary(request, context, _Call.DECLINE)

    async def AcceptInverseOffers(
        self, request: _Call, context: aio.ServicerContext[object, object]
    ) -> scheduler_pb2.Accepted:
        """ACCEPT_INVERSE_OFFERS."""
        return await self._unary(request, context, _Call.ACCEPT_INVERSE_OFFERS)

    async def DeclineInverseOffers(
        self, request: _Call, context: aio.ServicerContext[object, object]
    ) -> scheduler_pb2.Accepted:
        """DECLINE_INVERSE_OFFERS."""
        return await self._unary(request, context, _Call.DECLINE_INVERSE_OFFERS)

    async def Revive(
        self, request: _Call, context: aio.ServicerContext[object, object]
    ) -> scheduler_pb2.Accepted:
        """REVIVE."""
        return await self._unary(request, context, _Call.REVIVE)

    async def Kill(
        self, request: _Call, context: aio.ServicerContext[object, object]
    ) -> scheduler_pb2.Accepted:
        """KILL."""
        return await self._unary(request, context, _Call.KILL)

    async def Shutdown(
        self, request: _Call, context: aio.ServicerContext[object, object]
    ) -> scheduler_pb2.Accepted:
        """SHUTDOWN."""
        return await self._unary(request, context, _Call.SHUTDOWN)

    async def Acknowledge(
        self, request: _Call, context: aio.ServicerContext[object, object]
    ) -> scheduler_pb2.Accepted:
        """ACKNOWLEDGE."""
        return await self._unary(request, context, _Call.ACKNOWLEDGE)

    async def AcknowledgeOperationStatus(
        self, request: _Call, context: aio.ServicerContext[object, object]
    ) -> scheduler_pb2.Accepted:
        """ACKNOWLEDGE_OPERATION_STATUS."""
        return await self._unary(request, context, _Call.ACKNOWLEDGE_OPERATION_STATUS)

    async def Reconcile(
        self, request: _Call, context: aio.ServicerContext[object, object]
    ) -> scheduler_pb2.Accepted:
        """RECONCILE."""
        return await self._unary(request, context, _Call.RECONCILE)

    async def ReconcileOperations(
        self, request: _Call, context: aio.ServicerContext[object, object]
    ) -> scheduler_pb2.Accepted:
        """RECONCILE_OPERATIONS."""
        return await self._unary(request, context, _Call.RECONCILE_OPERATIONS)

    async def Message(
        self, request: _Call, context: aio.ServicerContext[object, object]
    ) -> scheduler_pb2.Accepted:
        """MESSAGE."""
        return await self._unary(request, context, _Call.MESSAGE)

    async def Request(
        self, request: _Call, context: aio.ServicerContext[object, object]
    ) -> scheduler_pb2.Accepted:
        """REQUEST."""
        return await self._unary(request, context, _Call.REQUEST)

    async def Suppress(
        self, request: _Call, context: aio.ServicerContext[object, object]
    ) -> scheduler_pb2.Accepted:
        """SUPPRESS."""
        return await self._unary(request, context, _Call.SUPPRESS)

    async def UpdateFramework(
        self, request: _Call, context: aio.ServicerContext[object, object]
    ) -> scheduler_pb2.Accepted:
        """UPDATE_FRAMEWORK."""
        return await self._unary(request, context, _Call.UPDATE_FRAMEWORK)


class AgentStreams(agent_internal_pb2_grpc.AgentGatewayServicer):
    """The two ways an agent session is carried (``Connect``, ``ConnectBatched``) over one
    ``_session``: the master's own service, and its gateways' (:mod:`master.gateway`)."""

    async def Connect(
        self,
        request_iterator: AsyncIterator[agent_internal_pb2.AgentMessage],
        context: aio.ServicerContext[object, object],
    ) -> AsyncIterator[agent_internal_pb2.MasterMessage]:
        """One agent session, one message per stream message."""
        async for batch in self._session(request_iterator, lambda m: (m,), context):
            for message in batch:
                yield message

    async def ConnectBatched(
        self,
        request_iterator: AsyncIterator[agent_internal_pb2.AgentMessages],
        context: aio.ServicerContext[object, object],
    ) -> AsyncIterator[agent_internal_pb2.MasterMessages]:
        """One agent session, messages in batches (each under the message limit)."""
        async for batch in self._session(request_iterator, lambda m: m.messages, context):
            message = agent_internal_pb2.MasterMessages(messages=batch)
            if len(batch) == 1 or message.ByteSize() <= MAX_MESSAGE_BYTES:
                yield message
            else:
                for group in batches(batch):
                    yield agent_internal_pb2.MasterMessages(messages=group)

    def _session(
        self,
        requests: AsyncIterator[M],
        unpack: Callable[[M], Iterable[agent_internal_pb2.AgentMessage]],
        context: aio.ServicerContext[object, object],
    ) -> AsyncIterator[list[agent_internal_pb2.MasterMessage]]:
        """One session: the master's messages for the agent, in batches as queued."""
        raise NotImplementedError


class AgentGatewayService(AgentStreams):
    """AgentGatewayService serves agent sessions (see the module docstring)."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    async def _session(
        self,
        requests: AsyncIterator[M],
        unpack: Callable[[M], Iterable[agent_internal_pb2.AgentMessage]],
        context: aio.ServicerContext[object, object],
    ) -> AsyncIterator[list[agent_internal_pb2.MasterMessage]]:
        runtime = await self.gate.enter(context)
        security = self.gate.security
        principal = None
        if security is not None:
            principal = await call_principal(security, context, security.flags.agents)
        connection_id = str(uuid.uuid4())
        channel = AgentChannel()
        reader: asyncio.Task[None] | None = None
        try:
            first: Iterator[agent_internal_pb2.AgentMessage] | None = None
            async for head in requests:
                if (bad := undecodable(head)) is not None:
                    await refuse_undecodable(bad, context)
                first = iter(unpack(head))
                break
            if first is None:
                return
            message = next(first, None)
            if message is None:
                return
            if security is not None:
                # The owner of a reregistered id, as the registry keeps it across failovers.
                known = runtime.core.state.agents.get(message.reregister_agent.agent_info.id.value)
                owner = known.principal if known is not None else None
                try:
                    security.check_agent(principal, message, owner)
                except PermissionDeniedError as denied:
                    await refuse(context, denied)
            try:
                runtime.agent_connected(connection_id, channel, message, principal)
            except CoreFaultError as fault:
                await context.abort(grpc.StatusCode.INTERNAL, fault.message)
            runtime.agent_messages(connection_id, first)
            reader = asyncio.get_running_loop().create_task(
                self._read(runtime, requests, unpack, connection_id, channel)
            )
            while (batch := await channel.take()) is not None:
                yield batch
        finally:
            if reader is not None:
                reader.cancel()
            runtime.agent_ended(connection_id)

    async def _read(
        self,
        runtime: MasterRuntime,
        requests: AsyncIterator[M],
        unpack: Callable[[M], Iterable[agent_internal_pb2.AgentMessage]],
        connection_id: str,
        channel: AgentChannel,
    ) -> None:
        """Feed the agent's messages in until it stops sending, then end the session.

        Bytes that are not an agent message end the session too, but through the state machine:
        the error and the close then go out after what is already queued for the agent.
        """
        try:
            async for item in requests:
                if (bad := undecodable(item)) is not None:
                    runtime.agent_protocol_error(connection_id, bad.description)
                    return
                runtime.agent_messages(connection_id, unpack(item))
        except asyncio.CancelledError:
            raise
        except aio.AioRpcError as error:  # The stream broke: the session is over.
            log.debug("agent connection %s ended: %s", connection_id, error)
        except Exception:  # A bug: end this session rather than the master.
            log.exception("agent connection %s failed", connection_id)
        channel.close()
