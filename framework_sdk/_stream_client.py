"""StreamClient: the scaffolding SchedulerClient and ExecutorClient share.

Each client subscribes over one gRPC stream and keeps subscribed: one background task owns the
connection (:meth:`StreamClient._run`), making one subscription attempt after the other until
the sans-I/O session closes. A client that sets ``_reuse_channels`` keeps one channel for as long
as its attempts go to the same address (closed when they move elsewhere, and with the client);
the others open a fresh channel per attempt. The typed events it produces go into one
queue, read through :meth:`StreamClient.events`; ``None`` in the queue marks the client's end.
Waiters on :meth:`StreamClient.wait_subscribed` wake whenever the subscription changes. What an
attempt does (SUBSCRIBE, read, decide on the next attempt) is the subclass's, as is ``close``.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections.abc import Callable
from types import TracebackType
from typing import ClassVar, Generic, Protocol, Self, TypeVar

import grpc.aio

from framework_sdk.errors import NotSubscribedError, SubscriptionError
from protos.limits import GRPC_MESSAGE_OPTIONS
from protos.security import ClientCredential, TlsConfig, open_aio_channel

__all__ = ["EOF", "ClientSession", "EventIterator", "StreamClient"]

EOF: object = grpc.aio.EOF  # type: ignore[attr-defined]  # (missing from grpc-stubs)

RECONNECT_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
)
"""Options of a reused channel. gRPC reconnects a failed channel by itself, but its own backoff
grows to two minutes by default, and while it waits every call fails at once: capped at a
second, a master back at the same address is connected to again within about that."""

_EventT = TypeVar("_EventT")
_StubT = TypeVar("_StubT")


class ClientSession(Protocol):
    """What the scaffolding needs of a client's sans-I/O session."""

    @property
    def subscribed(self) -> bool:
        """Whether a subscription is live."""
        ...

    @property
    def closed(self) -> bool:
        """Whether the session ended for good."""
        ...

    @property
    def close_reason(self) -> str | None:
        """Why it ended (None while it has not)."""
        ...

    def close(self, reason: str) -> None:
        """End the session for good."""


_SessionT = TypeVar("_SessionT", bound=ClientSession)


class EventIterator(Generic[_EventT]):
    """Async iterator over a client's event queue; ends when the client does.

    Events of type ``heartbeat`` are skipped unless ``heartbeats``.
    """

    def __init__(
        self, queue: asyncio.Queue[_EventT | None], heartbeat: type[object], heartbeats: bool
    ) -> None:
        self._queue = queue
        self._heartbeat = heartbeat
        self._heartbeats = heartbeats

    def __aiter__(self) -> EventIterator[_EventT]:
        return self

    async def __anext__(self) -> _EventT:
        while True:
            item = await self._queue.get()
            if item is None:
                self._queue.put_nowait(None)  # Any other iterator ends too.
                raise StopAsyncIteration
            if self._heartbeats or not isinstance(item, self._heartbeat):
                return item


class StreamClient(abc.ABC, Generic[_SessionT, _EventT, _StubT]):
    """The connection task, channel, event queue and subscription signals of a client."""

    # Whose client this is ("scheduler", "executor"), for log messages and the task's name.
    _role: ClassVar[str]
    _log: ClassVar[logging.Logger]
    _task_name: ClassVar[str]
    # Whether attempts to the address of the previous one reuse its channel (and stub).
    _reuse_channels: ClassVar[bool] = False

    def __init__(self, session: _SessionT, clock: Callable[[], float]) -> None:
        self.session = session
        self._clock = clock
        self._queue: asyncio.Queue[_EventT | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._channel: grpc.aio.Channel | None = None
        self._channel_address: str | None = None  # Where ``_channel`` goes.
        self._stub: _StubT | None = None
        self.channels_opened = 0
        """Channels opened so far (for tests and benchmarks)."""
        self._changed = asyncio.Event()
        self._tls: TlsConfig | None = None
        """TLS of the channels (None: plaintext); a subclass sets it before starting."""
        self._credential: ClientCredential | None = None
        """Sent with every call (``authorization`` metadata) when set."""

    # -- what a subclass provides --

    @abc.abstractmethod
    async def _attempt(self) -> float | None:
        """One subscription attempt; seconds to wait before the next, or None when over."""

    @abc.abstractmethod
    def _error_event(self, message: str) -> _EventT:
        """The event that tells the consumer the client ended on a bug."""

    @abc.abstractmethod
    def _new_stub(self, channel: grpc.aio.Channel) -> _StubT:
        """The service's stub over ``channel``."""

    async def _after_run(self) -> None:
        """Called when the connection task ends, before the event queue is closed."""

    async def _pause(self, delay: float) -> None:
        """Wait ``delay`` seconds before the next attempt (a subclass may cut it short)."""
        await asyncio.sleep(delay)

    # -- state --

    @property
    def subscribed(self) -> bool:
        """Whether the client is subscribed right now."""
        return self.session.subscribed

    @property
    def closed(self) -> bool:
        """Whether the client ended for good (closed, or ended by the other side)."""
        return self.session.closed

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # -- lifecycle --

    async def start(self) -> None:
        """Start subscribing in the background (returns at once; idempotent)."""
        if self._task is None and not self.session.closed:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self._task_name)

    async def wait_subscribed(self) -> None:
        """Wait until subscribed; raises SubscriptionError if the client ends first."""
        while not self.session.subscribed:
            if self.session.closed:
                raise SubscriptionError(self.session.close_reason or "client closed")
            if self._task is None:
                raise NotSubscribedError("the client is not started: call start() first")
            await self._changed.wait()

    async def __aenter__(self) -> Self:
        await self.start()
        try:
            await self.wait_subscribed()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @abc.abstractmethod
    async def close(self) -> None:
        """Disconnect for good."""

    async def _end_task(self) -> None:
        """Cancel the connection task (unless it is the caller) and close the channel."""
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._close_channel()

    # -- the connection task --

    async def _run(self) -> None:
        try:
            while not self.session.closed:
                delay = await self._attempt()
                if delay is not None:
                    await self._pause(delay)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # A bug here must end the client, not hang it silently.
            self._log.exception("%s client failed", self._role)
            self.session.close(f"{self._role} client failed: {error!r}")
            self._queue.put_nowait(self._error_event(self.session.close_reason or ""))
        finally:
            await self._after_run()
            self._queue.put_nowait(None)
            self._notify()

    async def _connect(self, address: str) -> _StubT:
        """The stub for an attempt to ``address``: over the channel already open to it when the
        client reuses channels, else over a fresh one (any previous channel closed)."""
        if self._reuse_channels and self._channel_address == address and self._stub is not None:
            return self._stub
        await self._close_channel()
        # Without reuse, a fresh channel per attempt: gRPC's default reconnect backoff would
        # fail our retries for up to minutes without trying the other side. Either way the
        # channel takes and sends messages up to the one limit the master and agents use
        # (gRPC's 4 MiB receive default would drop a big OFFERS event with the stream).
        options = (
            (*GRPC_MESSAGE_OPTIONS, *RECONNECT_OPTIONS)
            if self._reuse_channels
            else GRPC_MESSAGE_OPTIONS
        )
        self._channel = open_aio_channel(
            address, options, tls=self._tls, credential=self._credential
        )
        self._channel_address = address
        self._stub = self._new_stub(self._channel)
        self.channels_opened += 1
        return self._stub

    async def _close_channel(self) -> None:
        channel, self._channel, self._stub = self._channel, None, None
        self._channel_address = None
        if channel is not None:
            await channel.close(None)
            # gRPC completes the cancelled calls' operations a moment later, on this loop; if
            # the loop closed first, gRPC logs "Event loop is closed" for each.
            await asyncio.sleep(0.05)
