"""The master's end of its agent gateways' relays (``AgentRelay.Relay``, see docs/scale.md).

A gateway process (:mod:`master.gateway`) ends many agents' streams and carries their sessions
over one relay stream; here each relayed session becomes what a direct stream is to the
runtime: ``agent_connected`` with its first message, ``agent_messages`` for the rest,
``agent_protocol_error`` for bytes that did not parse, ``agent_ended`` once. The master's
messages for a relayed agent go through a :class:`RelayedSession` (an
:class:`~master.runtime.outbox.AgentSink`) into the relay's queue, and out in one
``RelayFrames`` with whatever else is ready for that gateway's agents.

What stays in the master, because it needs the state: the leadership gate (a relay to a master
that does not lead is refused as an agent's stream would be, and the gateway refuses its agents
with the same status and leader address) and the agent-id ownership check of an authenticated
agent (the gateway authenticates; it cannot know who owns an agent id).

Why one stream per gateway rather than one per agent: a gRPC stream costs the master's process
about 37 KB (gRPC's C core per call, its servicer coroutines and reader task) and about 1 ms of
CPU to set up; a relayed session costs one small object here, so 50,000 agents fit in the
master's memory target and registrations cost the master what its state machine costs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable

import grpc
from grpc import aio

from master.auth import PermissionDeniedError
from master.core.faults import CoreFaultError
from master.runtime.driver import MasterRuntime
from master.runtime.services import Gate
from protos.limits import MAX_MESSAGE_BYTES, batches
from protos.v1 import agent_internal_pb2, agent_internal_pb2_grpc

__all__ = [
    "RELAY_KEEPALIVE_OPTIONS",
    "RELAY_MESSAGE_OPTIONS",
    "RELAY_OPEN_KEY",
    "RELAY_OPEN_VALUE",
    "AgentRelayService",
    "RelayQueue",
    "RelayedSession",
]

RELAY_MESSAGE_OPTIONS = (
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES + 65536),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES + 65536),
)
"""The relay's message limit: an agent message at the limit still fits in a frame of its own."""

RELAY_KEEPALIVE_OPTIONS = (
    ("grpc.keepalive_time_ms", 5000),
    ("grpc.keepalive_timeout_ms", 20000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.http2.min_ping_interval_without_data_ms", 2500),
    ("grpc.http2.max_ping_strikes", 0),
    ("grpc.http2.ping_timeout_ms", 20000),
)
"""Both ends of a relay PING each other every 5 s and give an answer 20 s: a gateway that hangs
(its agents' sessions with it) is noticed by the master within half a minute, and its sessions
ended, instead of at the agents' next application ping, minutes later; a gateway only busy on
a loaded machine is not cut off (all its agents would reconnect at once)."""

RELAY_OPEN_KEY = "emporion-relay"
RELAY_OPEN_VALUE = "open"
"""The initial metadata with which the master takes a relay (it refuses one with a status)."""

log = logging.getLogger("master.runtime")

_Frame = agent_internal_pb2.RelayFrame
_STOP_POLL_S = 0.5
"""How often an idle relay checks whether its runtime stopped (the master stepped down)."""


class RelayQueue:
    """What the master has ready for one gateway's agents: each session's messages in order,
    then its end, if it ended."""

    def __init__(self) -> None:
        self._messages: dict[str, list[agent_internal_pb2.MasterMessage]] = {}
        self._ends: dict[str, agent_internal_pb2.RelayEnd] = {}
        self._ready = asyncio.Event()

    def put(self, connection: str, message: agent_internal_pb2.MasterMessage) -> None:
        queued = self._messages.get(connection)
        if queued is None:
            self._messages[connection] = [message]
        else:
            queued.append(message)
        self._ready.set()

    def end(self, connection: str, end: agent_internal_pb2.RelayEnd) -> None:
        self._ends[connection] = end
        self._ready.set()

    async def take(self, timeout: float) -> list[agent_internal_pb2.RelayFrame]:
        """Everything ready as frames (messages before ends; a session's messages in frames
        under the message limit); [] after ``timeout`` idle."""
        if not self._messages and not self._ends:
            self._ready.clear()
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except TimeoutError:
                return []
        frames = [
            _Frame(connection=connection, down=agent_internal_pb2.MasterMessages(messages=group))
            for connection, queued in self._messages.items()
            for group in (batches(queued) if len(queued) > 1 else (queued,))
        ]
        frames.extend(_Frame(connection=c, end=end) for c, end in self._ends.items())
        self._messages = {}
        self._ends = {}
        return frames


class RelayedSession:
    """One relayed agent session as the outbox sees it (an AgentSink)."""

    __slots__ = ("closed", "connection", "queue")

    def __init__(self, queue: RelayQueue, connection: str) -> None:
        self.queue = queue
        self.connection = connection
        self.closed = False

    def put(self, item: agent_internal_pb2.MasterMessage) -> None:
        if not self.closed:
            self.queue.put(self.connection, item)

    def close(self) -> None:
        self.abort(0, "")

    def abort(self, code: int, details: str) -> None:
        """End the agent's stream with gRPC status ``code`` after what is queued."""
        if not self.closed:
            self.closed = True
            self.queue.end(self.connection, agent_internal_pb2.RelayEnd(code=code, details=details))


def _relay_messages(frames: list[_Frame]) -> Iterable[agent_internal_pb2.RelayFrames]:
    """``frames`` in stream messages under the message limit."""
    return (agent_internal_pb2.RelayFrames(frames=group) for group in batches(frames))


class AgentRelayService(agent_internal_pb2_grpc.AgentRelayServicer):
    """Serves the master's gateways (registered only on the master's Unix socket)."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    async def Relay(
        self,
        request_iterator: AsyncIterator[agent_internal_pb2.RelayFrames],
        context: aio.ServicerContext[object, object],
    ) -> AsyncIterator[agent_internal_pb2.RelayFrames]:
        """One gateway: its sessions in, their messages out, until either side goes away or
        the runtime this relay began with stops (the master stepped down)."""
        runtime = await self.gate.enter(context)
        await context.send_initial_metadata(((RELAY_OPEN_KEY, RELAY_OPEN_VALUE),))
        queue = RelayQueue()
        sessions: dict[str, RelayedSession] = {}
        reader = asyncio.get_running_loop().create_task(
            self._read(runtime, request_iterator, queue, sessions)
        )
        try:
            while not reader.done() and not runtime.stopping:
                frames = await queue.take(_STOP_POLL_S)
                for message in _relay_messages(frames):
                    yield message
            if runtime.stopping:  # The sessions' ends (close_all) first, then the relay.
                for message in _relay_messages(await queue.take(0)):
                    yield message
        finally:
            reader.cancel()
            if sessions and not runtime.stopping:
                log.warning("a gateway's relay ended: %d agent sessions end with it", len(sessions))
            for connection in sessions:
                runtime.agent_ended(connection)
            sessions.clear()

    async def _read(
        self,
        runtime: MasterRuntime,
        requests: AsyncIterator[agent_internal_pb2.RelayFrames],
        queue: RelayQueue,
        sessions: dict[str, RelayedSession],
    ) -> None:
        try:
            async for batch in requests:
                for frame in batch.frames:
                    try:
                        self._frame(runtime, frame, queue, sessions)
                    except Exception:  # A bug: end this agent's session, not its gateway's.
                        log.exception("agent connection %s failed", frame.connection)
                        failed = sessions.pop(frame.connection, None)
                        if failed is not None:
                            failed.close()
                            runtime.agent_ended(frame.connection)
        except asyncio.CancelledError:
            raise
        except aio.AioRpcError as error:
            log.warning("gateway relay ended: %s", error.details())
        except Exception:  # A bug: end this relay (its agents reconnect), not the master.
            log.exception("gateway relay failed")

    def _frame(
        self,
        runtime: MasterRuntime,
        frame: _Frame,
        queue: RelayQueue,
        sessions: dict[str, RelayedSession],
    ) -> None:
        connection = frame.connection
        kind = frame.WhichOneof("kind")
        session = sessions.get(connection)
        if kind == "up":
            if session is not None:
                runtime.agent_messages(connection, frame.up.messages)
            elif frame.up.messages:
                self._open(runtime, frame, queue, sessions)
        elif kind == "end":
            if frame.end.protocol_error:
                if session is not None:
                    runtime.agent_protocol_error(connection, frame.end.protocol_error)
                return
            if sessions.pop(connection, None) is not None:
                runtime.agent_ended(connection)

    def _open(
        self,
        runtime: MasterRuntime,
        frame: _Frame,
        queue: RelayQueue,
        sessions: dict[str, RelayedSession],
    ) -> None:
        """A new relayed session: the checks a direct stream gets, then the runtime takes it."""
        connection = frame.connection
        session = RelayedSession(queue, connection)
        messages = frame.up.messages
        first = messages[0]
        principal = frame.principal if frame.HasField("principal") else None
        security = self.gate.security
        if security is not None:
            known = runtime.core.state.agents.get(first.reregister_agent.agent_info.id.value)
            owner = known.principal if known is not None else None
            try:
                security.check_agent(principal, first, owner)
            except PermissionDeniedError as denied:
                session.abort(grpc.StatusCode.PERMISSION_DENIED.value[0], str(denied))
                return
        if runtime.stopping:
            session.abort(grpc.StatusCode.UNAVAILABLE.value[0], "the master is stopping")
            return
        sessions[connection] = session
        try:
            runtime.agent_connected(connection, session, first, principal)
        except CoreFaultError as fault:
            sessions.pop(connection, None)
            runtime.agent_ended(connection)
            session.abort(grpc.StatusCode.INTERNAL.value[0], fault.message)
            return
        if len(messages) > 1:
            runtime.agent_messages(connection, messages[1:])
