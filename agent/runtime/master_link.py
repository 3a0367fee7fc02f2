"""MasterLink: the agent's session with the master over ``AgentGateway.ConnectBatched``.

It opens the stream, sends RegisterAgent or ReregisterAgent (whichever the agent's state calls
for at that moment), waits for the answer, then relays the master's messages to the runtime and
the runtime's messages to the master. It answers Pings itself, and treats the master as lost
when no Ping arrives for the ping timeout the master announced, or at once when the
connection's HTTP/2 keepalive (:data:`CHANNEL_OPTIONS`) finds the master gone. After any
failure it tries again with jittered exponential backoff (Mesos: 1 s factor, 1 min cap).

Messages travel in batches (``ConnectBatched``): each write carries every message queued by
the time gRPC can take the next one, so a busy agent's updates and pongs share writes, while a
lone message still goes out at once (nothing ever waits for company). A master that does not
serve ``ConnectBatched`` (UNIMPLEMENTED) is remembered and spoken to over ``Connect``, one
message per stream message, at once and from then on.

Where the master is comes from a *detector*: an async callable returning a gRPC target, either
a fixed ``host:port`` (:func:`fixed_master`) or the leading master as ZooKeeper names it
(:class:`agent.master_detector.ZooKeeperMasterDetector`). A detector that can also
``wait_change(target)`` (a :class:`LeaderFollower`) is raced against each session: when the
leader moves, the link leaves the old master at once instead of waiting for its pings to time
out, and reregisters with the new one after a fresh jittered backoff (random in ``[0, factor)``,
so a thousand agents do not arrive in one burst). The backoff sleep after a failed attempt is
raced against the detector too: once it names a leader other than the master of that attempt,
the (possibly grown) sleep ends and the agent reregisters after a fresh short jittered delay,
the backoff reset; while no master leads, it waits for one. A refusal with ``UNAVAILABLE``
naming the leader (trailing metadata ``emporion-leader``) likewise resets the backoff, and so
does a refusal by the very master the detector names saying it does not lead and knows no
leader (``not the leading master``): ZooKeeper is unreachable or an election is under way, and
the same master is often elected again (after a ZooKeeper outage its candidacy survives), which
no detector reports as a change since nothing changed in ZooKeeper; only asking again tells.
Without this, an agent kept backing off on that master for ~50 s after a 30 s ZooKeeper outage
(chaos ``zk_outage``), though it led again within a second of ZooKeeper's return.

The backoff sleep is also raced against the channel to the master of the failed attempt: once
that channel is READY again after it was not (a standalone master restarted on its address, a
leader back after a pause), the sleep ends the same way. gRPC's own reconnect backoff is capped
at a second for this (:data:`CHANNEL_OPTIONS`), so agents are back within about two seconds of
their master listening again, however long it was gone.

Every message, both ways, is bounded by the one limit of :mod:`protos.limits`: batches are
split to stay under it, and a single message over it is dropped with an error rather than
sent, since gRPC would end the whole session over it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import grpc
from grpc import aio

from agent.core import RegistrationBackoff
from agent.runtime.inbox import MasterInbox
from protos.limits import GRPC_MESSAGE_OPTIONS, MAX_MESSAGE_BYTES, batches, fits, framed_size
from protos.security import ClientCredential, TlsConfig, open_aio_channel
from protos.v1 import agent_internal_pb2, agent_internal_pb2_grpc

__all__ = [
    "CHANNEL_OPTIONS",
    "LEADER_KEY",
    "LeaderFollower",
    "MasterDetector",
    "MasterLink",
    "Session",
    "fixed_master",
]

log = logging.getLogger(__name__)

MasterDetector = Callable[[], Awaitable[str]]

_Outbox = asyncio.Queue[agent_internal_pb2.AgentMessage | None]
"""Messages for the master; None (put when the session ends) ends the request stream."""

LEADER_KEY = "emporion-leader"  # Trailing metadata of a refusal by a master that does not lead.

NOT_LEADING = "not the leading master"
"""How a master that does not lead starts its UNAVAILABLE refusal's details."""

KEEPALIVE_MS = 10_000
"""How often the channel PINGs the master, and how long it waits for the answer (HTTP/2
keepalive, in gRPC's C core: no Python runs for it). The master allows pings from every 5 s
(``master.runtime.registration.AGENT_KEEPALIVE_MS``)."""

CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    *GRPC_MESSAGE_OPTIONS,
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.keepalive_time_ms", KEEPALIVE_MS),
    ("grpc.keepalive_timeout_ms", KEEPALIVE_MS),
    ("grpc.http2.ping_timeout_ms", KEEPALIVE_MS),  # What enforces the timeout in gRPC 1.6x+.
    ("grpc.http2.max_pings_without_data", 0),
)
"""Options of the channel to the master: the one message-size limit that the master and the
SDK use too, gRPC's own reconnect backoff capped at a second (its default grows to two
minutes, and while it waits every call fails at once, so a restarted master would be found
only long after it is back), and HTTP/2 keepalive: the master pings rarely (every two minutes
by default, see ``master.core.liveness``), so a master whose host froze or vanished is noticed by
the transport within ``2 x KEEPALIVE_MS``, the session breaking as for a closed connection,
rather than after the announced ping timeout."""


@runtime_checkable
class LeaderFollower(Protocol):
    """A detector that can also tell when the leader moves away from a target."""

    async def __call__(self) -> str:
        """The leading master's gRPC target; waits while none leads."""
        ...

    async def wait_change(self, target: str) -> str | None:
        """Wait until the leader is no longer at ``target``; the new one's target, or None."""
        ...


def fixed_master(target: str) -> MasterDetector:
    """A detector that always answers ``target``."""

    async def detect() -> str:
        return target

    return detect


@dataclass(frozen=True)
class Session:
    """An accepted registration: how the master answered and its ping timeout."""

    reply: agent_internal_pb2.MasterMessage
    ping_timeout: float


class MasterLink:
    """MasterLink keeps one registered session with the master while the agent runs.

    ``hello()`` builds the first message of each attempt. ``on_session(session)`` runs once the
    master accepts it, ``on_message(message)`` for each later message, ``on_lost()`` when an
    accepted session ends. All three run on the event loop and must not block. ``sleep`` (how
    backoff delays are waited out) is a seam for tests.
    """

    def __init__(
        self,
        detector: MasterDetector,
        *,
        hello: Callable[[], agent_internal_pb2.AgentMessage],
        on_session: Callable[[Session], None],
        on_message: Callable[[agent_internal_pb2.MasterMessage], None],
        on_lost: Callable[[], None],
        backoff: RegistrationBackoff,
        default_ping_timeout: float = 75.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        tls: TlsConfig | None = None,
        credential: ClientCredential | None = None,
    ) -> None:
        self._tls = tls
        self._credential = credential
        self._detector = detector
        self._hello = hello
        self._on_session = on_session
        self._on_message = on_message
        self._on_lost = on_lost
        self._backoff = backoff
        self._default_ping_timeout = default_ping_timeout
        self._sleep = sleep
        self._attempted: str | None = None  # The master of the latest attempt.
        self._outbox: _Outbox | None = None
        self._task: asyncio.Task[None] | None = None
        self._channel: aio.Channel | None = None
        self._target: str | None = None
        self._unbatched: set[str] = set()  # Masters found not to serve ConnectBatched.
        self._stopping = False
        self.connected = False
        self.batched = False  # Whether the current (or last) session uses ConnectBatched.
        self.sessions = 0  # Accepted sessions so far (for logs and tests).

    def start(self) -> None:
        """Begin connecting (in the background)."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="master-link")

    async def stop(self) -> None:
        """End the session and stop reconnecting."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._channel is not None:
            await self._channel.close(None)
            self._channel = None

    def send(self, message: agent_internal_pb2.AgentMessage) -> bool:
        """Queue ``message`` for the master; False (dropped) when no session is open, or when
        it exceeds the message limit (sent, it would end the whole session)."""
        if not self.connected or self._outbox is None:
            return False
        if not fits(message):
            log.error(
                "Dropping a %s message of %d bytes: more than the %d-byte message limit",
                message.WhichOneof("payload"),
                framed_size(message),
                MAX_MESSAGE_BYTES,
            )
            return False
        self._outbox.put_nowait(message)
        return True

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait (up to ``timeout``) until queued messages have been written."""
        outbox = self._outbox
        if outbox is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await outbox.join()

    async def _run(self) -> None:
        retry_now = False
        moved = False
        while not self._stopping:
            if not retry_now:
                # After a move the short delay is waited out whole: it is what spreads the
                # agents' arrival at the new leader.
                await self._pause(self._backoff.next_delay(), None if moved else self._attempted)
            retry_now = moved = False
            try:
                if await self._attempt():
                    # A new leader: reregister soon, but jittered like a first attempt.
                    self._backoff.reset()
                    moved = True
            except asyncio.CancelledError:
                raise
            except aio.AioRpcError as error:
                if self.batched and error.code() == grpc.StatusCode.UNIMPLEMENTED:
                    # An older master: speak Connect to it, starting now.
                    log.info("The master at %s lacks ConnectBatched; using Connect", self._target)
                    if self._target is not None:
                        self._unbatched.add(self._target)
                    retry_now = True
                    continue
                log.warning(
                    "Master connection failed: %s %s", error.code().name, error.details() or ""
                )
                if self._named_leader(error) is not None or self._leaderless_refusal(error):
                    # Not the leader, but one is known, or an election is under way at the
                    # master the detector names: try again soon.
                    self._backoff.reset()
            except Exception:
                log.exception("Master session ended with an error")
            finally:
                if self.connected:
                    self.connected = False
                    self._on_lost()
                self._outbox = None

    async def _pause(self, delay: float, failed: str | None) -> None:
        """Wait ``delay`` before the next attempt, cut short (for a fresh short jittered delay,
        the backoff reset) by news that the next attempt can succeed: a following detector
        naming a leader other than ``failed`` (the master of the attempt that ended; None:
        nothing to compare with, wait it out), or the channel to ``failed`` becoming READY
        again after it was not (a master back at the same address: a standalone master
        restarted, or a leader that came back)."""
        sleeper = asyncio.ensure_future(self._sleep(delay))
        watchers: dict[asyncio.Future[str], str] = {}
        detector = self._detector
        if failed is not None and isinstance(detector, LeaderFollower):
            watchers[asyncio.ensure_future(self._leader_other_than(detector, failed))] = "leader"
        channel = self._channel if failed is not None and failed == self._target else None
        if channel is not None:
            watchers[asyncio.ensure_future(self._reachable_again(channel, failed or ""))] = "back"
        news: str | None = None
        why = ""
        everything: list[asyncio.Future[Any]] = [sleeper, *watchers]
        pending = set(everything)
        try:
            while news is None and not sleeper.done():
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for watcher in done:
                    if watcher is sleeper:
                        continue
                    if watcher.exception() is not None:
                        # A failing watcher is no news: it must not turn into a hot loop.
                        log.warning(
                            "Watching for %s failed: %r", watchers[watcher], watcher.exception()
                        )
                    elif news is None:
                        news, why = watcher.result(), watchers[watcher]
            if news is None:
                await sleeper  # Raises if the sleep was cancelled (the link stops).
                return
        finally:
            for task in everything:
                task.cancel()
            await asyncio.gather(*everything, return_exceptions=True)
        if why == "leader":
            log.info("A new leading master at %s (the last attempt was with %s)", news, failed)
        else:
            log.info("The master at %s is reachable again", news)
        self._backoff.reset()
        await self._sleep(self._backoff.next_delay())

    @staticmethod
    async def _reachable_again(channel: aio.Channel, target: str) -> str:
        """Wait until ``channel`` connects after not being connected; ``target``.

        A channel that is READY when the wait begins (the master answered, but the session
        failed for another reason) must first lose its connection: otherwise a master that
        keeps refusing would be retried in a hot loop. gRPC's own reconnect backoff is capped
        (see :data:`CHANNEL_OPTIONS`), so a master back at ``target`` is noticed within about
        a second of it listening.
        """
        state = channel.get_state(try_to_connect=False)
        while state is grpc.ChannelConnectivity.READY:
            await channel.wait_for_state_change(state)
            state = channel.get_state(try_to_connect=False)
        await channel.channel_ready()
        return target

    @staticmethod
    async def _leader_other_than(detector: LeaderFollower, failed: str) -> str:
        """Wait until ``detector`` names a leader other than ``failed``; that leader's target."""
        while True:
            leader = await detector.wait_change(failed)
            if leader is None:
                leader = await detector()  # None leads: wait for an election, not in a loop.
            if leader != failed:
                return leader
            # The same master leads again: its backoff stands.

    def _named_leader(self, error: aio.AioRpcError) -> str | None:
        """The leader a following detector's refusal names (None otherwise)."""
        if not isinstance(self._detector, LeaderFollower):
            return None  # A fixed master: behave as before.
        if error.code() != grpc.StatusCode.UNAVAILABLE:
            return None
        trailing: Any = error.trailing_metadata() or ()
        for key, value in trailing:
            if key == LEADER_KEY and value:
                return value if isinstance(value, str) else bytes(value).decode()
        return None

    def _leaderless_refusal(self, error: aio.AioRpcError) -> bool:
        """Whether the master the following detector named refused as not leading, naming
        no leader: its view and ZooKeeper's disagree for the moment (see the module doc)."""
        if not isinstance(self._detector, LeaderFollower):
            return False
        details = error.details() or ""
        return error.code() == grpc.StatusCode.UNAVAILABLE and details.startswith(NOT_LEADING)

    async def _attempt(self) -> bool:
        """One session with the master the detector names; True if it ended because the leader
        moved (as a following detector saw), False if it ended by itself."""
        self._attempted = None  # Until the detector answers: a failing one is no news.
        target = await self._detector()
        self._attempted = target
        detector = self._detector
        if not isinstance(detector, LeaderFollower):
            await self._session(target)
            return False
        session = asyncio.ensure_future(self._session(target))
        moved = asyncio.ensure_future(detector.wait_change(target))
        try:
            await asyncio.wait({session, moved}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (session, moved):
                task.cancel()
            # Both have ended before this attempt does (also when the link is stopped).
            await asyncio.gather(session, moved, return_exceptions=True)
        if not moved.cancelled() and moved.exception() is None:
            log.info("The leading master moved from %s to %s", target, moved.result() or "nowhere")
            return True
        if not session.cancelled() and session.exception() is not None:
            raise session.exception()  # type: ignore[misc]
        return False

    async def _channel_for(self, target: str) -> aio.Channel:
        if self._channel is None or target != self._target:
            if self._channel is not None:
                await self._channel.close(None)
            self._channel = open_aio_channel(
                target, CHANNEL_OPTIONS, tls=self._tls, credential=self._credential
            )
            self._target = target
        return self._channel

    async def _session(self, target: str) -> None:
        channel = await self._channel_for(target)
        stub = agent_internal_pb2_grpc.AgentGatewayStub(channel)
        outbox: _Outbox = asyncio.Queue()
        self.batched = self._target not in self._unbatched
        hello = self._hello()
        if not fits(hello):
            # gRPC refuses to send it (RESOURCE_EXHAUSTED) and the link keeps trying: say why.
            log.error(
                "The %s message is %d bytes, more than the %d-byte message limit: the master"
                " cannot take it",
                hello.WhichOneof("payload"),
                framed_size(hello),
                MAX_MESSAGE_BYTES,
            )
        replies: AsyncIterator[agent_internal_pb2.MasterMessage]
        if self.batched:
            batched = stub.ConnectBatched(self._batches(hello, outbox))
            unbatched = self._unbatch(batched)
            replies, cancel = unbatched, batched.cancel
        else:
            call = stub.Connect(self._requests(hello, outbox))
            unbatched = None
            replies, cancel = call.__aiter__(), call.cancel
        try:
            try:
                reply = await replies.__anext__()
            except StopAsyncIteration:
                log.warning("Master closed the stream without answering the registration")
                return
            kind = reply.WhichOneof("payload")
            if kind not in ("agent_registered", "agent_reregistered"):
                detail = reply.error.message or reply.shutdown_agent.message
                log.warning("Master refused the registration: %s %s", kind, detail)
                if kind == "shutdown_agent":
                    self._on_message(reply)
                return
            accepted = getattr(reply, kind)
            ping_timeout = accepted.ping_timeout_seconds or self._default_ping_timeout
            self._outbox = outbox
            self.connected = True
            self.sessions += 1
            self._backoff.reset()
            self._on_session(Session(reply, ping_timeout))
            await self._read(replies, ping_timeout)
        finally:
            # Ends the request generator, which gRPC's consumer task may still be waiting in
            # (a refused stream): left waiting, it would be destroyed pending.
            outbox.put_nowait(None)
            cancel()
            if unbatched is not None:
                await unbatched.aclose()

    @staticmethod
    async def _batches(
        hello: agent_internal_pb2.AgentMessage,
        outbox: _Outbox,
    ) -> AsyncIterator[agent_internal_pb2.AgentMessages]:
        yield agent_internal_pb2.AgentMessages(messages=[hello])
        while True:
            first = await outbox.get()  # Waits only while there is nothing at all to send.
            if first is None:
                outbox.task_done()
                return  # The session ended.
            batch = [first]
            while not outbox.empty():
                message = outbox.get_nowait()
                if message is None:  # Send what came before, then end.
                    outbox.task_done()
                    outbox.put_nowait(None)
                    break
                batch.append(message)
            # Split so that no write exceeds the message limit (5,000 updates of a busy agent
            # may well); each group resumes once gRPC took it.
            for group in batches(batch):
                yield agent_internal_pb2.AgentMessages(messages=group)
                for _ in group:
                    outbox.task_done()

    @staticmethod
    async def _unbatch(
        batches: AsyncIterable[agent_internal_pb2.MasterMessages],
    ) -> AsyncGenerator[agent_internal_pb2.MasterMessage]:
        async for batch in batches:
            for message in batch.messages:
                yield message

    @staticmethod
    async def _requests(
        hello: agent_internal_pb2.AgentMessage,
        outbox: _Outbox,
    ) -> AsyncIterator[agent_internal_pb2.AgentMessage]:
        yield hello
        while True:
            message = await outbox.get()
            if message is None:
                outbox.task_done()
                return  # The session ended.
            yield message  # Resumes once gRPC has taken it.
            outbox.task_done()

    async def _read(
        self, replies: AsyncIterator[agent_internal_pb2.MasterMessage], ping_timeout: float
    ) -> None:
        """Read the session: Pings are answered here, as they arrive; every other message goes
        to a :class:`~agent.runtime.inbox.MasterInbox` that :meth:`_handle` empties, one message
        at a time, yielding to the event loop after each. Handling thousands of RunTasks of one
        ACCEPT takes a while: meanwhile the master must still get its pongs (or it takes the
        agent for lost), and other frameworks' messages take their turns."""
        loop = asyncio.get_running_loop()
        inbox = MasterInbox()
        ready = asyncio.Event()
        ended = asyncio.Event()  # The session is over: handle what is left, then return.
        handler = asyncio.ensure_future(self._handle(inbox, ready, ended))
        try:
            try:
                # One deadline for the whole session, pushed back by every Ping (and only them).
                async with asyncio.timeout(ping_timeout) as deadline:
                    async for message in replies:
                        if handler.done():
                            break  # It failed: awaited below, which raises.
                        kind = message.WhichOneof("payload")
                        if kind == "ping":
                            deadline.reschedule(loop.time() + ping_timeout)
                            pong = agent_internal_pb2.AgentMessage()
                            pong.pong.seq = message.ping.seq
                            self.send(pong)
                            continue
                        inbox.put(message)
                        ready.set()
                        if kind == "shutdown_agent":
                            self._stopping = True  # Removed by the master: do not come back.
                            break
                    else:
                        log.warning("The master ended the session")
            except TimeoutError:
                log.warning("No ping from the master for %.1f s: reconnecting", ping_timeout)
            # What the master sent before the session ended is still handled.
            ended.set()
            ready.set()
            await handler
        finally:
            if not handler.done():
                handler.cancel()
                await asyncio.gather(handler, return_exceptions=True)

    async def _handle(self, inbox: MasterInbox, ready: asyncio.Event, ended: asyncio.Event) -> None:
        """Hand ``inbox``'s messages to ``on_message`` one at a time; return once it is empty
        and ``ended`` is set."""
        while True:
            message = inbox.take()
            if message is None:
                if ended.is_set():
                    return
                ready.clear()
                await ready.wait()
                continue
            self._on_message(message)
            await asyncio.sleep(0)  # Pings, container events and HTTP calls in between.
