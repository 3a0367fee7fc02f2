"""A gateway's relay to its master: one stream carrying every agent session it holds.

:class:`RelayLink` keeps the relay up (reconnecting while the master lives), batches what the
agents send into ``RelayFrames`` (whatever is ready, one stream write), and hands each
session the master's messages for it. A :class:`Session` is one agent's stream as the servicer
in :mod:`master.gateway.service` drains it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

import grpc
from grpc import aio

from master.runtime.outbox import AgentChannel
from master.runtime.relay import (
    RELAY_KEEPALIVE_OPTIONS,
    RELAY_MESSAGE_OPTIONS,
    RELAY_OPEN_KEY,
    RELAY_OPEN_VALUE,
)
from protos.limits import batches
from protos.v1 import agent_internal_pb2, agent_internal_pb2_grpc

__all__ = ["RelayLink", "Session"]

log = logging.getLogger("master.gateway")

_UNAVAILABLE = grpc.StatusCode.UNAVAILABLE.value[0]
_RETRY_S = (0.05, 0.5)
"""First and longest wait between tries to open the relay (a try to a master that does not
lead is one refused call over the Unix socket: cheap, and a new leader is served at once)."""

_REFUSED_WAIT_S = 1.0
"""How long an agent's stream waits for a relay when the master refused the last one: a try
is made at once (it may have just been elected); if it still refuses, the agent is refused."""


class Session(AgentChannel):
    """The master's side of one agent's stream (an agent connection's channel, as the
    master's own streams drain theirs), and how the stream ends."""

    def __init__(self) -> None:
        super().__init__()
        self.end: agent_internal_pb2.RelayEnd | None = None

    def finish(self, end: agent_internal_pb2.RelayEnd | None) -> None:
        """End the stream after what is queued (``end``: its status; None: OK)."""
        if not self.closed:
            self.end = end
            self.close()


class RelayLink:
    """The relay to the master at ``target`` (``unix:PATH``)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.sessions: dict[str, Session] = {}
        self.ready = False
        """Whether a relay is open (sessions can be opened)."""
        self.refusal = agent_internal_pb2.RelayEnd(
            code=_UNAVAILABLE, details="the master is not reachable from its agent gateway yet"
        )
        """How agents are refused while no relay is open (the master's own refusal if any)."""
        self.refused = False
        """Whether the master refused the last relay (it does not lead): agents then wait
        only briefly for a relay (see :meth:`wait_ready`)."""
        self._changed = asyncio.Event()
        self._in_flight = False
        self._retry = asyncio.Event()
        self._up: list[agent_internal_pb2.RelayFrame] = []
        self._up_ready = asyncio.Event()
        self._stopped = False
        self._epoch = 0

    # -- what the servicer calls --

    async def wait_ready(self, timeout: float) -> bool:
        """Whether a relay is open, waiting up to ``timeout`` while one is being opened (the
        gateway or the master just started, a relay is being reopened, or the master was just
        elected and is loading its registry: it holds the relay until it serves), but only
        :data:`_REFUSED_WAIT_S` for a retry when the master refused the last try (it does
        not lead)."""
        loop = asyncio.get_running_loop()
        began = loop.time()
        self._retry.set()  # Try again now rather than at the next backoff.
        while not self.ready:
            now = loop.time()
            if now - began >= timeout:
                return False
            limit = timeout
            if self.refused and not self._in_flight:
                limit = min(timeout, _REFUSED_WAIT_S)
                if now - began >= limit:
                    return False
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), began + limit - now)
        return True

    def _change(self) -> None:
        """Wake whoever waits in :meth:`wait_ready`: a try began, opened or was refused."""
        self._changed.set()
        self._changed = asyncio.Event()

    def open(
        self,
        connection: str,
        messages: Iterable[agent_internal_pb2.AgentMessage],
        principal: str | None,
    ) -> Session:
        """A new session, opened with its first messages."""
        session = Session()
        self.sessions[connection] = session
        frame = agent_internal_pb2.RelayFrame(
            connection=connection, up=agent_internal_pb2.AgentMessages(messages=messages)
        )
        if principal is not None:
            frame.principal = principal
        self._send(frame)
        return session

    def send(self, connection: str, messages: Iterable[agent_internal_pb2.AgentMessage]) -> None:
        """Later messages of a session (dropped once the master ended it)."""
        if connection in self.sessions:
            self._send(
                agent_internal_pb2.RelayFrame(
                    connection=connection, up=agent_internal_pb2.AgentMessages(messages=messages)
                )
            )

    def protocol_error(self, connection: str, description: str) -> None:
        """The agent sent bytes that are not a message: the master refuses it, in order."""
        if connection in self.sessions:
            end = agent_internal_pb2.RelayEnd(protocol_error=description)
            self._send(agent_internal_pb2.RelayFrame(connection=connection, end=end))

    def close(self, connection: str) -> None:
        """The agent's stream is over, however it ended: tell the master, once."""
        if self.sessions.pop(connection, None) is not None and self.ready:
            end = agent_internal_pb2.RelayEnd()
            self._send(agent_internal_pb2.RelayFrame(connection=connection, end=end))

    def _send(self, frame: agent_internal_pb2.RelayFrame) -> None:
        self._up.append(frame)
        self._up_ready.set()

    # -- the relay --

    async def run(self) -> None:
        """Keep a relay open until cancelled."""
        delay = _RETRY_S[0]
        options = [*RELAY_MESSAGE_OPTIONS, *RELAY_KEEPALIVE_OPTIONS]
        async with aio.insecure_channel(self.target, options=options) as channel:
            stub = agent_internal_pb2_grpc.AgentRelayStub(channel)
            while not self._stopped:
                opened = await self._relay(stub)
                delay = _RETRY_S[0] if opened else min(delay * 2, _RETRY_S[1])
                self._retry.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._retry.wait(), delay)

    async def _relay(self, stub: agent_internal_pb2_grpc.AgentRelayAsyncStub) -> bool:
        """One relay, until it ends; whether the master took it."""
        self._epoch += 1
        call = stub.Relay(self._frames(self._epoch))
        opened = False
        self._in_flight = True
        self._change()
        try:
            # The master accepts by sending its initial metadata, or refuses.
            metadata: Any = await call.initial_metadata()
            self._in_flight = False
            if (RELAY_OPEN_KEY, RELAY_OPEN_VALUE) in tuple(metadata or ()):
                self.ready = opened = True
                self.refused = False
                self._change()
                log.info("relay to the master open")
            async for batch in call:
                self._deliver(batch.frames)
            self._end_all("the master closed its agent gateway's relay")
        except aio.AioRpcError as error:
            metadatums: Any = error.trailing_metadata() or ()
            trailing = {
                str(key): value if isinstance(value, str) else bytes(value).decode()
                for key, value in metadatums
            }
            refusal = agent_internal_pb2.RelayEnd(
                code=error.code().value[0], details=error.details() or "", trailing=trailing
            )
            if error.code() != grpc.StatusCode.UNAVAILABLE or not opened:
                self.refusal = refusal
            self.refused = not opened
            self._end_all(error.details() or "the relay to the master broke", refusal)
        finally:
            self.ready = False
            self._in_flight = False
            self._change()
            call.cancel()
        return opened

    def _end_all(self, why: str, refusal: agent_internal_pb2.RelayEnd | None = None) -> None:
        """End every session's stream (the agents reconnect and reregister)."""
        if self.sessions:
            log.warning("ending %d agent sessions: %s", len(self.sessions), why)
        end = refusal
        if end is None or end.code == 0:
            end = agent_internal_pb2.RelayEnd(code=_UNAVAILABLE, details=why)
        for session in self.sessions.values():
            session.finish(end)
        self.sessions.clear()
        self._up.clear()

    def _deliver(self, frames: Iterable[agent_internal_pb2.RelayFrame]) -> None:
        sessions = self.sessions
        for frame in frames:
            session = sessions.get(frame.connection)
            if session is None:
                continue  # Its agent went away meanwhile.
            kind = frame.WhichOneof("kind")
            if kind == "down":
                session.put_all(frame.down.messages)
            elif kind == "end":
                # Kept until the agent's stream is over: :meth:`close` then tells the master,
                # which ends the session in its runtime as a direct stream's end would.
                session.finish(frame.end if frame.end.code else None)

    async def _frames(self, epoch: int) -> AsyncIterator[agent_internal_pb2.RelayFrames]:
        """What the agents sent, as ready: each write holds every frame queued meanwhile.

        Only while relay ``epoch`` is the current one: gRPC may leave the request iterator of
        an ended call waiting, and it must not take frames meant for the next relay.
        """
        while True:
            while not self._up:
                self._up_ready.clear()
                await self._up_ready.wait()
            if epoch != self._epoch:
                return
            frames, self._up = self._up, []
            for group in batches(frames):
                yield agent_internal_pb2.RelayFrames(frames=group)

    def stop(self) -> None:
        self._stopped = True
