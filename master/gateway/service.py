"""The agent-facing service of a gateway: ``AgentGateway`` as the master serves it.

Each agent stream becomes a relayed session (:class:`~master.gateway.link.RelayLink`): the
agent is authenticated here (the master's flags), its first messages open the session, later
ones follow in order, bytes that are not a message are refused as the master would refuse
them, and the stream ends as the master (or a broken relay) says.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TypeVar

import grpc
from grpc import aio

from master.auth import MasterSecurity
from master.auth.edge import call_principal
from master.gateway.link import RelayLink, Session
from master.runtime.registration import refuse_undecodable, undecodable
from master.runtime.services import AgentStreams
from protos.v1 import agent_internal_pb2

__all__ = ["GatewayService"]

log = logging.getLogger("master.gateway")

_READY_WAIT_S = 5.0
"""How long an agent's stream waits for a relay that is being opened before it is refused."""

M = TypeVar("M", agent_internal_pb2.AgentMessage, agent_internal_pb2.AgentMessages)


class GatewayService(AgentStreams):
    """Agents' sessions, relayed to the master by ``link``."""

    def __init__(self, link: RelayLink, security: MasterSecurity | None) -> None:
        self.link = link
        self.security = security

    async def _session(
        self,
        requests: AsyncIterator[M],
        unpack: Callable[[M], Iterable[agent_internal_pb2.AgentMessage]],
        context: aio.ServicerContext[object, object],
    ) -> AsyncIterator[list[agent_internal_pb2.MasterMessage]]:
        link = self.link
        principal = None
        if self.security is not None:
            principal = await call_principal(self.security, context, self.security.flags.agents)
        if not await link.wait_ready(_READY_WAIT_S):
            await _end(context, link.refusal)
        first: list[agent_internal_pb2.AgentMessage] | None = None
        async for head in requests:
            if (bad := undecodable(head)) is not None:
                await refuse_undecodable(bad, context)
            first = list(unpack(head))
            break
        if not first:
            return
        if not link.ready:  # The relay broke while the agent was sending.
            await _end(context, link.refusal)
        connection = str(uuid.uuid4())
        session = link.open(connection, first, principal)
        reader = asyncio.get_running_loop().create_task(
            self._read(requests, unpack, connection, session)
        )
        try:
            while (batch := await session.take()) is not None:
                yield batch
            if session.end is not None:
                await _end(context, session.end)
        finally:
            reader.cancel()
            link.close(connection)

    async def _read(
        self,
        requests: AsyncIterator[M],
        unpack: Callable[[M], Iterable[agent_internal_pb2.AgentMessage]],
        connection: str,
        session: Session,
    ) -> None:
        """Relay the agent's messages until it stops sending; then end its stream."""
        link = self.link
        try:
            async for item in requests:
                if (bad := undecodable(item)) is not None:
                    link.protocol_error(connection, bad.description)
                    return  # The master refuses the session, in order.
                link.send(connection, unpack(item))
        except asyncio.CancelledError:
            raise
        except aio.AioRpcError as error:
            log.debug("agent connection %s ended: %s", connection, error)
        except Exception:  # A bug: end this session rather than the gateway.
            log.exception("agent connection %s failed", connection)
        session.finish(None)


async def _end(
    context: aio.ServicerContext[object, object], end: agent_internal_pb2.RelayEnd
) -> None:
    """End the agent's stream with ``end``'s status (and trailing metadata)."""
    if end.trailing:
        context.set_trailing_metadata(tuple(end.trailing.items()))
    await context.abort(_STATUS.get(end.code, grpc.StatusCode.UNAVAILABLE), end.details)


_STATUS = {code.value[0]: code for code in grpc.StatusCode if code != grpc.StatusCode.OK}
