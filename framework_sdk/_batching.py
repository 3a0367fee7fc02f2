"""CallSender: how a SchedulerClient's calls reach the master, alone or in Emporion's ``Batch``.

A call goes on its Mesos unary method (``Accept``, ``Kill``...) carrying the subscription's
stream id in the ``mesos-stream-id`` metadata. While the master offers the batched API, calls
made in one loop iteration are *gathered* and go out together in one ``Batch`` at the next
(applied by the master in the order they were made; each caller still gets its own call's
outcome). gRPC errors become :class:`~framework_sdk.errors.CallError` here, once: a code meaning
the call may not have reached the master is a :class:`~framework_sdk.errors.CallFailedError`,
any other is the master's answer, a :class:`~framework_sdk.errors.CallRefusedError`.

A master that does not lead refuses calls (a ``Batch`` as a whole) with ``UNAVAILABLE`` naming
the leader in the trailing metadata ``emporion-leader`` (:data:`LEADER_METADATA`): the error
carries it (``CallFailedError.leader``) and the sender's ``on_leader`` hears of it, so that the
client can move its subscription there. The call itself is not sent again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeAlias

import grpc
import grpc.aio

from framework_sdk.calls import UNARY_METHODS, call_name
from framework_sdk.errors import CallError, CallFailedError, CallRefusedError, NotSubscribedError
from framework_sdk.session import SchedulerSession
from protos.v1 import scheduler_pb2, scheduler_pb2_grpc

__all__ = [
    "LEADER_METADATA",
    "MAX_BATCH_CALLS",
    "STREAM_ID_METADATA",
    "CallSender",
    "LeaderListener",
    "leader_hint",
]

STREAM_ID_METADATA = "mesos-stream-id"

LEADER_METADATA = "emporion-leader"
"""Trailing metadata of a refusal by a master that does not lead: the leader's ``host:port``."""

# Most calls one Batch carries; a longer list goes in several, one after the other.
MAX_BATCH_CALLS = 4096

# Codes meaning the call may not have reached the master (the outcome is unknown); every other
# error code is the master's answer to the call itself.
_TRANSPORT_CODES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED"})
# grpc.StatusCode by number, to read CallResults.Result.code.
_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}
Stub: TypeAlias = "scheduler_pb2_grpc.SchedulerAsyncStub"  # (only in the .pyi stubs)

LeaderListener: TypeAlias = Callable[[Stub, str, str], None]
"""``on_leader(stub, leader, call_name)``: a call sent over ``stub`` was refused by a master
that does not lead, naming ``leader``."""


def _metadata_value(metadata: object, wanted: str) -> str | None:
    if metadata is None:
        return None
    for key, value in metadata:  # type: ignore[attr-defined]
        if key == wanted:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


def leader_hint(error: grpc.aio.AioRpcError) -> str | None:
    """The leader's address an UNAVAILABLE refusal names (``emporion-leader``), else None."""
    if error.code() != grpc.StatusCode.UNAVAILABLE:
        return None
    metadata: object = error.trailing_metadata()
    return (_metadata_value(metadata, LEADER_METADATA) or "").strip() or None


def _error_of(
    call: scheduler_pb2.Call, code: str, message: str, leader: str | None = None
) -> CallError:
    if code in _TRANSPORT_CODES:
        return CallFailedError(call_name(call), code, message, leader=leader)
    return CallRefusedError(call_name(call), code, message)


def _result_error(
    call: scheduler_pb2.Call, result: scheduler_pb2.CallResults.Result
) -> CallError | None:
    if result.code == 0:
        return None
    code = _CODE_NAMES.get(result.code, f"code {result.code}")
    return _error_of(call, code, result.message)


def _metadata(stream_id: str | None) -> tuple[tuple[str, str], ...] | None:
    return ((STREAM_ID_METADATA, stream_id),) if stream_id else None


@dataclass(eq=False)
class _Gathering:
    """Calls made in one loop iteration for one stream, sent together at the next."""

    stub: Stub
    stream_id: str | None
    calls: list[scheduler_pb2.Call] = field(default_factory=list)
    waiters: list[asyncio.Future[None]] = field(default_factory=list)
    dispatched: bool = False


class CallSender:
    """Sends a SchedulerClient's prepared calls (framework id set) over the stub it is given.

    ``session`` is told when the master turns out not to serve ``Batch`` after all; every call
    waits at most ``call_timeout`` seconds for its answer. ``on_leader`` is called when a
    master that does not lead refuses a call (or a ``Batch``) naming the leader.
    """

    def __init__(
        self,
        session: SchedulerSession,
        call_timeout: float,
        on_leader: LeaderListener | None = None,
    ) -> None:
        self._session = session
        self._timeout = call_timeout
        self._on_leader = on_leader
        self._gathering: _Gathering | None = None
        self._batches: set[asyncio.Task[None]] = set()

    async def invoke(
        self, stub: Stub | None, stream_id: str | None, call: scheduler_pb2.Call
    ) -> None:
        """Send one call on its unary method; raises the CallError it got."""
        if stub is None:
            raise NotSubscribedError(f"{call_name(call)} not sent: no connection")
        method = getattr(stub, UNARY_METHODS[call.type])
        try:
            await method(call, metadata=_metadata(stream_id), timeout=self._timeout)
        except grpc.aio.AioRpcError as error:
            leader = self._leader_named(stub, error, call_name(call))
            raise _error_of(call, error.code().name, error.details() or "", leader) from None

    def _leader_named(self, stub: Stub, error: grpc.aio.AioRpcError, what: str) -> str | None:
        """The leader a refusal of ``what`` names, reported to ``on_leader``; else None."""
        leader = leader_hint(error)
        if leader is not None and self._on_leader is not None:
            self._on_leader(stub, leader, what)
        return leader

    async def gather(self, stub: Stub, stream_id: str | None, call: scheduler_pb2.Call) -> None:
        """Send a call with the others made in this loop iteration (one ``Batch``, in the order
        they were made); raises the CallError this call got."""
        gathering = self._gathering
        if gathering is None or gathering.stub is not stub or gathering.stream_id != stream_id:
            gathering = self._gathering = _Gathering(stub, stream_id)
            asyncio.get_running_loop().call_soon(self._dispatch, gathering)
        waiter = asyncio.get_running_loop().create_future()
        gathering.calls.append(call)
        gathering.waiters.append(waiter)
        await waiter

    def _dispatch(self, gathering: _Gathering) -> None:
        """Send what one loop iteration gathered (calls made later gather anew)."""
        if self._gathering is gathering:
            self._gathering = None
        if gathering.dispatched:
            return
        gathering.dispatched = True
        task = asyncio.get_running_loop().create_task(self._send_gathered(gathering))
        self._batches.add(task)
        task.add_done_callback(self._batches.discard)

    async def _send_gathered(self, gathering: _Gathering) -> None:
        calls = gathering.calls
        outcomes: list[Exception | None]
        try:
            outcomes = list(await self.transmit(gathering.stub, gathering.stream_id, calls, True))
        except asyncio.CancelledError:  # The client closed while the calls were on their way.
            outcomes = [
                _error_of(call, "CANCELLED", "the client closed while the call was on its way")
                for call in calls
            ]
        except Exception as error:  # A bug: every caller gets it rather than waiting forever.
            outcomes = [error] * len(calls)
        for waiter, outcome in zip(gathering.waiters, outcomes, strict=True):
            if waiter.done():  # Its caller was cancelled; the call went out all the same.
                continue
            if outcome is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(outcome)

    async def flush(self) -> None:
        """Send the calls gathered so far now, and wait until every Batch sent has its answer."""
        if self._gathering is not None:
            self._dispatch(self._gathering)
        if self._batches:
            await asyncio.wait(set(self._batches))

    def drop_gathered(self) -> None:
        """The client closed: calls gathered but not sent yet fail with NotSubscribedError."""
        gathering, self._gathering = self._gathering, None
        if gathering is not None and not gathering.dispatched:
            gathering.dispatched = True
            for waiter in gathering.waiters:
                if not waiter.done():
                    waiter.set_exception(NotSubscribedError("not sent: the client closed"))

    async def cancel_batches(self) -> None:
        """The client closed: Batches still on their way answer their callers CANCELLED
        (outcome unknown)."""
        batches = [b for b in self._batches if b is not asyncio.current_task()]
        for batch in batches:
            batch.cancel()
        if batches:
            await asyncio.wait(batches)

    async def transmit(
        self,
        stub: Stub,
        stream_id: str | None,
        prepared: list[scheduler_pb2.Call],
        batched: bool,
    ) -> list[CallError | None]:
        """Send prepared calls in order: in Batches if ``batched`` (a lone call on its unary
        method), else one unary call after the other. Each call's outcome, in order."""
        outcomes: list[CallError | None] = []
        rest = prepared
        while batched and len(rest) > 1:
            chunk, rest = rest[:MAX_BATCH_CALLS], rest[MAX_BATCH_CALLS:]
            try:
                reply = await stub.Batch(
                    scheduler_pb2.Calls(calls=chunk),
                    metadata=_metadata(stream_id),
                    timeout=self._timeout,
                )
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.UNIMPLEMENTED:
                    leader = self._leader_named(stub, error, f"a Batch of {len(chunk)} calls")
                    code, details = error.code().name, error.details() or ""
                    return [*outcomes, *(_error_of(c, code, details, leader) for c in chunk + rest)]
                # Not served after all (a proxy that knows only Mesos's methods): send them
                # one by one, and so every later call of this stream.
                if stream_id == self._session.stream_id:
                    self._session.batch_unavailable()
                rest = chunk + rest
                break
            results = reply.results
            if len(results) != len(chunk):
                message = f"the master answered {len(results)} results for {len(chunk)} calls"
                return [*outcomes, *(_error_of(c, "UNKNOWN", message) for c in chunk + rest)]
            outcomes += [_result_error(c, r) for c, r in zip(chunk, results, strict=True)]
        for call in rest:
            try:
                await self.invoke(stub, stream_id, call)
            except CallError as error:
                outcomes.append(error)
            else:
                outcomes.append(None)
        return outcomes
