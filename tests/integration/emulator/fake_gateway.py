"""A minimal master side of the internal agent protocol, steered by the test.

It registers whoever connects (ids ``agent-<n>``), records every message, answers reregistration
with configurable reconciliations, and lets the test send any ``MasterMessage`` and end or cut a
session. It checks the emulator's side of the protocol; the master's own behaviour is tested
against the real master in ``test_against_master.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio

from emporion.testing.agent_emulator import LEADER_METADATA
from protos.v1 import agent_internal_pb2 as ai
from protos.v1 import agent_internal_pb2_grpc as ai_grpc

_Context = grpc.aio.ServicerContext[Any, Any]


@dataclass(eq=False)
class FakeSession:
    """One agent stream as the fake master sees it."""

    agent_id: str
    hello: ai.AgentMessage
    received: list[ai.AgentMessage] = field(default_factory=list)
    outbound: asyncio.Queue[ai.MasterMessage | None] = field(default_factory=asyncio.Queue)
    batched: bool = False  # the session runs over ConnectBatched
    ended: bool = False

    def send(self, message: ai.MasterMessage) -> None:
        """Queue a message for the agent."""
        self.outbound.put_nowait(message)

    def close(self) -> None:
        """End the stream from the master's side (status OK)."""
        self.outbound.put_nowait(None)

    def updates(self) -> list[ai.StatusUpdate]:
        """Status updates received on this stream, in order."""
        return [m.status_update for m in self.received if m.HasField("status_update")]

    def pongs(self) -> list[int]:
        """Sequence numbers of the pongs received."""
        return [m.pong.seq for m in self.received if m.HasField("pong")]


class FakeGateway(ai_grpc.AgentGatewayServicer):
    """Registers every agent and records what it says; refuses streams while ``refusing``
    (naming ``leader``, if set, as a standby master does)."""

    def __init__(
        self, ping_interval: float = 0.0, ping_timeout: float = 0.0, *, batched: bool = False
    ) -> None:
        self.batched = batched  # serve ConnectBatched; otherwise answer it UNIMPLEMENTED
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.sessions: list[FakeSession] = []
        self.reconciliations: dict[str, list[ai.ReconcileTasks]] = {}
        self.refusing = False
        # While refusing, name this leader as a standby master does (UNAVAILABLE with the
        # ``emporion-leader`` trailing metadata); None: FAILED_PRECONDITION, naming none.
        self.leader: str | None = None
        self.refusals = 0
        self._next_id = 0
        self.address = ""

    def latest(self, agent_id: str) -> FakeSession:
        """The newest session of an agent."""
        return [s for s in self.sessions if s.agent_id == agent_id][-1]

    def live(self) -> list[FakeSession]:
        """Sessions whose stream is still open."""
        return [s for s in self.sessions if not s.ended]

    async def Connect(  # type: ignore[override]  # reader/writer style, not a generator
        self,
        request_iterator: AsyncIterator[ai.AgentMessage],
        context: _Context,
    ) -> None:
        await self._serve(context, batched=False)

    async def ConnectBatched(  # type: ignore[override]
        self,
        request_iterator: AsyncIterator[ai.AgentMessages],
        context: _Context,
    ) -> None:
        if not self.batched:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
        await self._serve(context, batched=True)

    async def _serve(self, context: _Context, *, batched: bool) -> None:
        if self.refusing:
            self.refusals += 1
            if self.leader is not None:
                context.set_trailing_metadata(((LEADER_METADATA, self.leader),))
                await context.abort(grpc.StatusCode.UNAVAILABLE, "not the leading master")
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "not the leader")
        received = _unpack(await context.read())
        first = received.pop(0)
        kind = first.WhichOneof("payload")
        if kind == "register_agent":
            self._next_id += 1
            agent_id = f"agent-{self._next_id}"
            reply = ai.MasterMessage(
                agent_registered=ai.AgentRegistered(
                    ping_interval_seconds=self.ping_interval,
                    ping_timeout_seconds=self.ping_timeout,
                )
            )
            reply.agent_registered.agent_id.value = agent_id
        elif kind == "reregister_agent":
            agent_id = first.reregister_agent.agent_info.id.value
            reply = ai.MasterMessage(
                agent_reregistered=ai.AgentReregistered(
                    ping_interval_seconds=self.ping_interval,
                    ping_timeout_seconds=self.ping_timeout,
                    reconciliations=self.reconciliations.get(agent_id, []),
                )
            )
            reply.agent_reregistered.agent_id.value = agent_id
        else:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"first message is {kind}")
        session = FakeSession(agent_id, first, received, batched=batched)
        self.sessions.append(session)
        reader = asyncio.create_task(self._read(session, context))
        session.send(reply)
        try:
            open_ = True
            while open_:
                batch = [await session.outbound.get()]
                while not session.outbound.empty():  # everything ready goes in one batch
                    batch.append(session.outbound.get_nowait())
                if None in batch:  # close() was called: send what came before, then end
                    batch = batch[: batch.index(None)]
                    open_ = False
                messages = [m for m in batch if m is not None]
                if batched and messages:
                    await context.write(ai.MasterMessages(messages=messages))
                elif not batched:
                    for message in messages:
                        await context.write(message)
        finally:
            session.ended = True
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    @staticmethod
    async def _read(session: FakeSession, context: _Context) -> None:
        while True:
            messages = _unpack(await context.read())
            if not messages:  # EOF: the agent closed its side
                session.ended = True
                session.close()
                return
            session.received.extend(messages)


def _unpack(item: object) -> list[ai.AgentMessage]:
    if isinstance(item, ai.AgentMessages):
        return list(item.messages)
    if isinstance(item, ai.AgentMessage):
        return [item]
    return []  # grpc.aio.EOF


@contextlib.asynccontextmanager
async def running_gateway(
    ping_interval: float = 0.0, ping_timeout: float = 0.0, *, batched: bool = False
) -> AsyncIterator[FakeGateway]:
    """A FakeGateway served on 127.0.0.1, any free port; ``.address`` says where."""
    gateway = FakeGateway(ping_interval, ping_timeout, batched=batched)
    server = grpc.aio.server()
    ai_grpc.add_AgentGatewayServicer_to_server(gateway, server)
    bound = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    gateway.address = f"127.0.0.1:{bound}"
    try:
        yield gateway
    finally:
        for session in gateway.live():
            session.close()
        await server.stop(None)


async def eventually(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait until ``predicate()`` holds (a generous ``timeout`` guards against hangs only)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition never reached"
        await asyncio.sleep(0.005)
