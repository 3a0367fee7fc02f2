"""MasterLink: the agent's session with the master over ``AgentGateway.ConnectBatched``.

It opens the stream, sends RegisterAgent or ReregisterAgent (whichever the agent's state calls
for at that moment), waits for the answer, then relays the master's messages to the runtime and
the runtime's messages to the master. It answers Pings itself, and treats the master as lost
when no Ping arrives for the ping timeout the master announced. After any failure it tries
again with jittered exponential backoff (Mesos: 1 s factor, 1 min cap).

Messages travel in batches (``ConnectBatched``): each write carries every message queued by
the time gRPC can take the next one, so a busy agent's updates and pongs share writes, while a
lone message still goes out at once (nothing ever waits for company). A master that does not
serve ``ConnectBatched`` (UNIMPLEMENTED) is remembered and spoken to over ``Connect``, one
message per stream message, at once and from then on.

Where the master is comes from a *detector*: an async callable returning a gRPC target. Today
that is a fixed ``host:port``; leader detection through ZooKeeper plugs in here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import grpc
from grpc import aio

from agent.core import RegistrationBackoff
from protos.v1 import agent_internal_pb2, agent_internal_pb2_grpc

__all__ = ["MasterDetector", "MasterLink", "Session", "fixed_master"]

log = logging.getLogger(__name__)

MasterDetector = Callable[[], Awaitable[str]]


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
    accepted session ends. All three run on the event loop and must not block.
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
    ) -> None:
        self._detector = detector
        self._hello = hello
        self._on_session = on_session
        self._on_message = on_message
        self._on_lost = on_lost
        self._backoff = backoff
        self._default_ping_timeout = default_ping_timeout
        self._outbox: asyncio.Queue[agent_internal_pb2.AgentMessage] | None = None
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
        """Queue ``message`` for the master; False (dropped) when no session is open."""
        if not self.connected or self._outbox is None:
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
        while not self._stopping:
            if not retry_now:
                await asyncio.sleep(self._backoff.next_delay())
            retry_now = False
            try:
                await self._session()
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
            except Exception:
                log.exception("Master session ended with an error")
            finally:
                if self.connected:
                    self.connected = False
                    self._on_lost()
                self._outbox = None

    async def _channel_for(self) -> aio.Channel:
        target = await self._detector()
        if self._channel is None or target != self._target:
            if self._channel is not None:
                await self._channel.close(None)
            self._channel = aio.insecure_channel(target)
            self._target = target
        return self._channel

    async def _session(self) -> None:
        channel = await self._channel_for()
        stub = agent_internal_pb2_grpc.AgentGatewayStub(channel)
        outbox: asyncio.Queue[agent_internal_pb2.AgentMessage] = asyncio.Queue()
        self.batched = self._target not in self._unbatched
        replies: AsyncIterator[agent_internal_pb2.MasterMessage]
        if self.batched:
            batched = stub.ConnectBatched(self._batches(self._hello(), outbox))
            unbatched = self._unbatch(batched)
            replies, cancel = unbatched, batched.cancel
        else:
            call = stub.Connect(self._requests(self._hello(), outbox))
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
            cancel()
            if unbatched is not None:
                await unbatched.aclose()

    @staticmethod
    async def _batches(
        hello: agent_internal_pb2.AgentMessage,
        outbox: asyncio.Queue[agent_internal_pb2.AgentMessage],
    ) -> AsyncIterator[agent_internal_pb2.AgentMessages]:
        yield agent_internal_pb2.AgentMessages(messages=[hello])
        while True:
            batch = [await outbox.get()]  # Waits only while there is nothing at all to send.
            while not outbox.empty():
                batch.append(outbox.get_nowait())
            yield agent_internal_pb2.AgentMessages(messages=batch)  # Resumes once gRPC took it.
            for _ in batch:
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
        outbox: asyncio.Queue[agent_internal_pb2.AgentMessage],
    ) -> AsyncIterator[agent_internal_pb2.AgentMessage]:
        yield hello
        while True:
            message = await outbox.get()
            yield message  # Resumes once gRPC has taken it.
            outbox.task_done()

    async def _read(
        self, replies: AsyncIterator[agent_internal_pb2.MasterMessage], ping_timeout: float
    ) -> None:
        loop = asyncio.get_running_loop()
        try:
            # One deadline for the whole session, pushed back by every Ping (and only by Pings).
            async with asyncio.timeout(ping_timeout) as deadline:
                async for message in replies:
                    kind = message.WhichOneof("payload")
                    if kind == "ping":
                        deadline.reschedule(loop.time() + ping_timeout)
                        pong = agent_internal_pb2.AgentMessage()
                        pong.pong.seq = message.ping.seq
                        self.send(pong)
                        continue
                    if kind == "shutdown_agent":
                        self._stopping = True  # The master removed this agent: do not come back.
                    self._on_message(message)
                    if kind == "shutdown_agent":
                        return
            log.warning("The master ended the session")
        except TimeoutError:
            log.warning("No ping from the master for %.1f s: reconnecting", ping_timeout)
