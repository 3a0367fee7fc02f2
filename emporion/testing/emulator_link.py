"""The emulated agents' links to the master: where to connect, the channels, one stream session.

:class:`~emporion.testing.agent_emulator.AgentEmulator` keeps one :class:`AgentLink` per
emulated agent (its live stream, outbox and reconnection state) and runs each session through
:func:`run_session`. Where an agent connects comes from one of two places:

* a fixed list of ``host:port`` (:class:`MasterList`): an agent tries them in turn, and a
  master that does not lead refuses with ``UNAVAILABLE`` naming the leader in the trailing
  metadata ``emporion-leader``, which the agent follows at once (:meth:`MasterList.refused`);
* ZooKeeper (:class:`LeaderWatch`, for a ``zk://`` URL): every agent connects to the leader
  that ZooKeeper names, and all of them leave it together when that changes.

One :class:`LeaderWatch`, hence one ZooKeeper session, serves all the agents of an emulator:
real agents each hold their own session, but a thousand sessions opened by one process would
load ZooKeeper (and the process) with a thousand copies of the same watch, for one answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import grpc
import grpc.aio

from emporion.testing.emulated_agent import EmulatedAgent, Link
from protos.leader_aio import ZooKeeperLeaderFollower
from protos.leader_info import LeaderInfo
from protos.limits import GRPC_MESSAGE_OPTIONS, batches
from protos.security import ClientCredential, TlsConfig, open_aio_channel
from protos.v1 import agent_internal_pb2 as ai
from protos.v1 import agent_internal_pb2_grpc as ai_grpc

__all__ = [
    "LEADER_METADATA",
    "MAX_REDIRECTS",
    "AgentLink",
    "Channels",
    "LeaderWatch",
    "MasterList",
    "SessionEnd",
    "leader_of",
    "run_session",
]

LEADER_METADATA = "emporion-leader"
"""Trailing metadata of a refusal by a master that does not lead: the leader's ``host:port``."""

MAX_REDIRECTS = 3
"""Refusals naming a leader that an agent follows at once, in a row, before backing off."""

_CHANNEL_OPTIONS: list[tuple[str, int]] = [
    *GRPC_MESSAGE_OPTIONS,  # The one limit that the master and real agents use.
    # Each emulator gets its own connections rather than sharing gRPC's global subchannels.
    ("grpc.use_local_subchannel_pool", 1),
]

AnyCall: TypeAlias = (
    grpc.aio.StreamStreamCall[ai.AgentMessage, ai.MasterMessage]
    | grpc.aio.StreamStreamCall[ai.AgentMessages, ai.MasterMessages]
)
"""A ``Connect`` or ``ConnectBatched`` stream."""


def leader_of(error: grpc.aio.AioRpcError) -> str | None:
    """The leader's address an UNAVAILABLE refusal names (``emporion-leader``), else None."""
    if error.code() is not grpc.StatusCode.UNAVAILABLE:
        return None
    metadata: Any = error.trailing_metadata() or ()
    for key, value in metadata:
        if key == LEADER_METADATA:
            text = value.decode() if isinstance(value, bytes) else str(value)
            return text.strip() or None
    return None


@dataclass(eq=False)
class AgentLink:
    """The I/O side of one emulated agent: its current stream and reconnection state."""

    core: EmulatedAgent
    index: int
    master_index: int = 0  # into MasterList.masters (list mode)
    master: str | None = None  # the master of the current session, once it registered us
    call: AnyCall | None = None  # the live stream, if any
    outbox: list[ai.AgentMessage] = field(default_factory=list)  # written by the writer task
    ready: asyncio.Event = field(default_factory=asyncio.Event)  # the outbox has something
    kicked: bool = False  # we cancelled the stream on purpose (lost, restart, master lost)
    dropped: bool = False  # lost with its stream dropped: stays away until restored
    moved: bool = False  # the leader changed (ZooKeeper): rejoin after a jittered pause
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    last_failure: str = ""
    redirects: int = 0  # refusals naming a leader followed at once since the last registration

    def send(self, messages: list[ai.AgentMessage]) -> None:
        """Queue messages for the live stream (dropped when there is none, as by a real agent)."""
        if self.call is not None and messages:
            self.outbox += messages
            self.ready.set()

    def kick(self) -> None:
        """End the live stream on purpose (the session ends as if the master had closed it)."""
        if self.call is not None:
            self.kicked = True
            self.call.cancel()


class Channels:
    """gRPC channels by (master address, channel number), opened on first use."""

    def __init__(
        self, tls: TlsConfig | None = None, credential: ClientCredential | None = None
    ) -> None:
        self._tls = tls  # TLS towards the masters (None: plaintext) ...
        self._credential = credential  # ... and the agents' credential (--authenticate-agents).
        self._channels: dict[tuple[str, int], grpc.aio.Channel] = {}
        self._stubs: dict[tuple[str, int], ai_grpc.AgentGatewayAsyncStub] = {}

    def stub(self, address: str, number: int) -> ai_grpc.AgentGatewayAsyncStub:
        """The gateway stub over channel ``number`` to ``address``."""
        key = (address, number)
        stub = self._stubs.get(key)
        if stub is None:
            channel = open_aio_channel(
                address,
                [*_CHANNEL_OPTIONS, ("emporion.ch", number)],
                tls=self._tls,
                credential=self._credential,
            )
            self._channels[key] = channel
            stub = self._stubs[key] = ai_grpc.AgentGatewayStub(channel)
        return stub

    async def close(self, keep: str | None = None) -> None:
        """Close every channel (but those to ``keep``), cancelling their streams."""
        gone = [key for key in self._channels if key[0] != keep]
        channels = [self._channels.pop(key) for key in gone]
        for key in gone:
            del self._stubs[key]
        await asyncio.gather(*(c.close(None) for c in channels), return_exceptions=True)


class MasterList:
    """A fixed list of masters (``host:port``), tried in turn; leaders named by refusals are
    added to it."""

    def __init__(self, masters: Iterable[str]) -> None:
        self.masters = list(masters)

    def target(self, link: AgentLink) -> str:
        """The master this agent tries next."""
        return self.masters[link.master_index % len(self.masters)]

    def failed(self, link: AgentLink) -> None:
        """The agent's session failed: it tries the next master."""
        link.master_index += 1

    def refused(self, link: AgentLink, error: grpc.aio.AioRpcError) -> bool:
        """Point the agent at the leader a standby's refusal names, adding it to the masters if
        new; whether to reconnect at once.

        Only ``MAX_REDIRECTS`` in a row are followed at once: masters that name each other
        (a stale view during an election) then get the usual backoff instead of a spin.
        """
        leader = leader_of(error)
        if leader is None or link.redirects >= MAX_REDIRECTS:
            link.redirects = 0
            return False
        if leader not in self.masters:
            self.masters.append(leader)
        link.master_index = self.masters.index(leader)
        link.redirects += 1
        return True


class LeaderWatch:
    """The leading master under a ``zk://`` URL, for every agent of one emulator.

    :meth:`run` follows ZooKeeper and calls ``on_change(address)`` on the loop for each new
    leader (``None`` while none is known); :attr:`address` is the latest.
    :meth:`wait_known` waits while there is none. The ZooKeeper session opens on the first
    :meth:`run` and ends with :meth:`close` (a later :meth:`run` opens a new one).
    """

    def __init__(self, url: str, session_timeout: float) -> None:
        self._follower = ZooKeeperLeaderFollower(url, session_timeout=session_timeout)
        self.address: str | None = None
        self._known = asyncio.Event()

    @property
    def url(self) -> str:
        """The ``zk://`` URL followed."""
        return str(self._follower.url)

    async def run(self, on_change: Callable[[str | None], None]) -> None:
        """Follow the leader until cancelled (to where it takes agents: its gateways' port
        when it has gateways, as a real agent does)."""
        leader: LeaderInfo | None = None
        while True:
            leader = await self._follower.wait_change(leader)
            self.address = None if leader is None else leader.agents_target
            if self.address is None:
                self._known.clear()
            else:
                self._known.set()
            on_change(self.address)

    async def wait_known(self) -> str:
        """The leader's address, waiting while none is known."""
        while self.address is None:
            await self._known.wait()
        return self.address

    async def close(self) -> None:
        """End the ZooKeeper session; the leader is unknown until the next :meth:`run`."""
        self.address = None
        self._known = asyncio.Event()  # a later run may be on another loop
        await self._follower.close()


@dataclass(frozen=True, slots=True)
class SessionEnd:
    """How a session ended: whether the master registered the agent, and the error, if any."""

    accepted: bool
    error: grpc.aio.AioRpcError | None = None


async def run_session(
    link: AgentLink, address: str, stub: ai_grpc.AgentGatewayAsyncStub, batched: bool
) -> SessionEnd:
    """One stream with the master at ``address`` (over ``stub``), from hello to its end
    (``batched``: ``ConnectBatched``)."""
    core = link.core
    call: AnyCall = stub.ConnectBatched(None) if batched else stub.Connect(None)
    link.call, link.kicked = call, False
    link.outbox = [core.hello()]
    link.ready.set()
    writer = asyncio.create_task(_write(call, link, batched))
    accepted = False
    try:
        handle = core.handle
        while True:
            received = await call.read()
            if isinstance(received, ai.MasterMessages):
                messages: Iterable[ai.MasterMessage] = received.messages
            elif isinstance(received, ai.MasterMessage):
                messages = (received,)
            else:  # grpc.aio.EOF
                link.last_failure = "stream ended by the master"
                break
            now = time.time()
            outbox = link.outbox
            for message in messages:
                outbox += handle(message, now)
            if outbox:
                link.ready.set()
            if core.link is Link.REGISTERED:
                accepted = True
                link.master = address
            elif core.shut_down:
                break
    except grpc.aio.AioRpcError as error:
        link.last_failure = f"{error.code().name}: {error.details()}"
        return SessionEnd(accepted, error)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if not link.kicked or (task is not None and task.cancelling()):
            raise
        link.last_failure = "stream closed by the emulator"
    finally:
        writer.cancel()
        call.cancel()
        link.call = None
        link.master = None
        link.outbox = []
        core.disconnected()
    return SessionEnd(accepted)


async def _write(call: AnyCall, link: AgentLink, batched: bool) -> None:
    """Send what the agent has queued: everything ready in one write when batched."""
    ready = link.ready
    try:
        while True:
            await ready.wait()
            ready.clear()
            pending, link.outbox = link.outbox, []
            if not pending:
                continue
            if batched:
                for group in batches(pending):  # Each write under the message limit.
                    await call.write(ai.AgentMessages(messages=group))  # type: ignore[arg-type]
            else:
                for message in pending:
                    await call.write(message)  # type: ignore[arg-type]
    except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
        return  # the stream is over; the reader notices and reconnects
