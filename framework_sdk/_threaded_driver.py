"""ThreadedDriver: the machinery SchedulerDriver and ExecutorDriver share (Mesos's classic driver).

Two threads per driver: the *driver thread* runs an asyncio loop with one asyncio client
(:class:`~framework_sdk.aio.SchedulerClient` or
:class:`~framework_sdk.executor_aio.ExecutorClient`) and turns its events into callbacks; the
*callback thread* runs those callbacks one at a time, in event order. Driver methods may be
called from any thread: they queue an :class:`Outgoing` call for the driver thread under the
driver's lock, which also guards the driver's :class:`~framework_sdk.status.Status`
(NOT_STARTED, then RUNNING, then STOPPED or ABORTED, as in Mesos).

Subclasses say which client to build (:meth:`ThreadedDriver._new_client`), which callback each
event calls (:meth:`ThreadedDriver._dispatch`) and how ``error`` reaches their user; the scheduler
driver also sends its queued calls its own way (batches, concurrent acknowledgements).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import functools
import logging
import queue
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from framework_sdk.errors import (
    CallFailedError,
    CallRefusedError,
    DriverStateError,
    NotSubscribedError,
)
from framework_sdk.status import Status

__all__ = ["Callback", "DriverClient", "Outgoing", "Stop", "ThreadedDriver"]

_C = TypeVar("_C")
_EventT = TypeVar("_EventT")
_EventT_co = TypeVar("_EventT_co", covariant=True)


class DriverClient(Protocol[_EventT_co]):
    """What a driver needs of its asyncio client."""

    async def start(self) -> None:
        """Start connecting in the background."""

    async def close(self) -> None:
        """Disconnect for good; ``events()`` ends."""

    def events(self) -> AsyncIterator[_EventT_co]:
        """The client's events, in order, until it ends."""
        ...


_ClientT = TypeVar("_ClientT", bound=DriverClient[Any])


@dataclass(frozen=True, slots=True)
class Outgoing(Generic[_C]):
    """A call queued for the driver thread; ``not_sent`` runs if it is dropped while offline."""

    name: str
    action: Callable[[_C], Awaitable[object]]
    not_sent: Callable[[], None] | None = None


_ItemT = TypeVar("_ItemT", bound=Outgoing[Any])


@dataclass(frozen=True, slots=True)
class Stop:
    """Queued by stop()/abort(): close the client once the calls queued before are sent.

    ``teardown``: a scheduler driver sends TEARDOWN first (an executor has nothing to tear down).
    """

    teardown: bool = False


@dataclass(frozen=True, slots=True)
class Callback:
    """A user callback for the callback thread; ``always`` runs it even if not running."""

    run: Callable[[], None]
    always: bool = False


class ThreadedDriver(abc.ABC, Generic[_ClientT, _EventT, _ItemT]):
    """The two threads, the status and the call queue of a classic driver (see the module)."""

    # The driver thread's and the callback thread's names.
    _thread_names: ClassVar[tuple[str, str]]
    # Whose driver this is ("scheduler", "executor"), for log messages.
    _role: ClassVar[str]
    _log: ClassVar[logging.Logger]
    # Refusal codes (gRPC status names) that count as a dropped call rather than an error.
    _dropped_codes: ClassVar[frozenset[str]] = frozenset()

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status = Status.DRIVER_NOT_STARTED
        self._loop: asyncio.AbstractEventLoop | None = None
        self._outbox: asyncio.Queue[_ItemT | Stop] | None = None
        self._client: _ClientT | None = None
        self._callbacks: queue.SimpleQueue[Callback | None] = queue.SimpleQueue()
        self._driver_thread: threading.Thread | None = None
        self._callback_thread: threading.Thread | None = None
        self._finished = threading.Event()  # The driver thread ended.
        # The callback thread is stuck in a callback that outlived its welcome: join() returns
        # without waiting for it (set on the driver thread before it ends).
        self._callbacks_abandoned = False

    # -- what a subclass provides --

    @abc.abstractmethod
    def _new_client(self) -> _ClientT:
        """The asyncio client, built on the driver thread's loop."""

    @abc.abstractmethod
    def _dispatch(self, event: _EventT) -> None:
        """Turn one event into the callback it calls (queued for the callback thread)."""

    @abc.abstractmethod
    def _error(self, message: str) -> None:
        """Call the user's ``error`` callback (on the callback thread)."""

    async def _events_ended(self, sender: asyncio.Task[None]) -> None:
        """Called on the driver thread once the client's events ended, before it stops."""

    # -- state --

    @property
    def status(self) -> Status:
        """The driver's status now."""
        with self._lock:
            return self._status

    def _check_started(self, method: str) -> Status:
        status = self._status
        if status is Status.DRIVER_NOT_STARTED:
            raise DriverStateError(f"{method}() called before start(): the driver is not running")
        return status

    # -- lifecycle --

    def start(self) -> Status:
        """Start the driver threads and subscribe in the background; DRIVER_RUNNING."""
        with self._lock:
            if self._status is not Status.DRIVER_NOT_STARTED:
                return self._status
            self._status = Status.DRIVER_RUNNING
        ready = threading.Event()
        driver_name, callback_name = self._thread_names
        self._callback_thread = threading.Thread(
            target=self._callback_main, name=callback_name, daemon=True
        )
        self._driver_thread = threading.Thread(
            target=self._driver_main, args=(ready,), name=driver_name, daemon=True
        )
        self._callback_thread.start()
        self._driver_thread.start()
        ready.wait()
        return Status.DRIVER_RUNNING

    def _stop(self, *, teardown: bool) -> Status:
        """stop(): DRIVER_STOPPED from now on; queues a Stop (TEARDOWN first if ``teardown`` and
        the driver was running). Returns DRIVER_ABORTED if it had aborted, else DRIVER_STOPPED."""
        with self._lock:
            status = self._check_started("stop")
            if status is Status.DRIVER_STOPPED:
                return status
            self._status = Status.DRIVER_STOPPED
        self._post(Stop(teardown=teardown and status is Status.DRIVER_RUNNING))
        return Status.DRIVER_ABORTED if status is Status.DRIVER_ABORTED else Status.DRIVER_STOPPED

    def abort(self) -> Status:
        """Abort: no more callbacks and no new calls; calls made before are still sent, then the
        driver disconnects (a scheduler's framework is not torn down). Returns DRIVER_ABORTED.
        """
        with self._lock:
            status = self._check_started("abort")
            if status is not Status.DRIVER_RUNNING:
                return status
            self._status = Status.DRIVER_ABORTED
        self._post(Stop())
        return Status.DRIVER_ABORTED

    def join(self) -> Status:
        """Wait until the driver stops or aborts (and its last callback returned)."""
        with self._lock:
            self._check_started("join")
        self._finished.wait()
        callback_thread = self._callback_thread
        if (
            callback_thread is not None
            and callback_thread is not threading.current_thread()
            and not self._callbacks_abandoned
        ):
            callback_thread.join()
        return self.status

    def run(self) -> Status:
        """start() then join()."""
        status = self.start()
        return status if status is not Status.DRIVER_RUNNING else self.join()

    # -- queueing to the driver thread --

    def _queue_call(self, item: _ItemT) -> Status:
        """Queue a call unless the driver is not running; the driver's status."""
        with self._lock:
            status = self._check_started(item.name)
            if status is not Status.DRIVER_RUNNING:
                return status
            self._post(item)
            return status

    def _post(self, item: _ItemT | Stop) -> None:
        loop, outbox = self._loop, self._outbox
        if loop is None or outbox is None:
            return
        # The loop is gone once the driver thread ended; nothing is left to send then.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(outbox.put_nowait, item)

    def _callback(self, function: Callable[..., None], *args: object) -> None:
        """Queue ``function(*args)`` for the callback thread (skipped once not running)."""
        self._callbacks.put(Callback(functools.partial(function, *args)))

    def _abort_with_error(self, message: str) -> None:
        """An ERROR ended the client: as Mesos, abort first, then tell the user (if running)."""
        with self._lock:
            running = self._status is Status.DRIVER_RUNNING
            if running:
                self._status = Status.DRIVER_ABORTED
        if running:
            self._callbacks.put(Callback(functools.partial(self._error, message), always=True))

    # -- the driver thread --

    def _driver_main(self, ready: threading.Event) -> None:
        try:
            asyncio.run(self._async_main(ready))
        except Exception:
            self._log.exception("%s driver thread failed", self._role)
        finally:
            ready.set()
            with self._lock:
                if self._status is Status.DRIVER_RUNNING:
                    self._status = Status.DRIVER_ABORTED
            self._callbacks.put(None)
            self._finished.set()

    async def _async_main(self, ready: threading.Event) -> None:
        outbox: asyncio.Queue[_ItemT | Stop] = asyncio.Queue()
        client = self._new_client()
        self._loop, self._outbox, self._client = asyncio.get_running_loop(), outbox, client
        ready.set()
        await client.start()
        sender = asyncio.create_task(self._send_loop(client, outbox), name="framework_sdk.calls")
        try:
            async for event in client.events():
                self._dispatch(event)
            await self._events_ended(sender)
        finally:
            if not sender.done():
                outbox.put_nowait(Stop())
                await sender
            await client.close()

    async def _send_loop(self, client: _ClientT, outbox: asyncio.Queue[_ItemT | Stop]) -> None:
        """Send the queued calls one at a time, in order, until a Stop closes the client."""
        while True:
            item = await outbox.get()
            if isinstance(item, Stop):
                await client.close()
                return
            await self._send_one(client, item)

    async def _send_one(self, client: _ClientT, item: _ItemT) -> None:
        try:
            await item.action(client)
        except Exception as error:
            self._outcome(item, error)

    def _outcome(self, item: _ItemT, error: Exception) -> None:
        """What a call that was not taken means to the user."""
        # A call refused by a master that does not lead (it names the leader) was not
        # applied, exactly like one never sent: launches in it are reported lost.
        if (
            isinstance(error, NotSubscribedError)
            or (isinstance(error, CallRefusedError) and error.code in self._dropped_codes)
            or (isinstance(error, CallFailedError) and error.leader is not None)
        ):
            self._log.info("%s dropped: %s", item.name, error)
            if item.not_sent is not None:
                item.not_sent()
        elif isinstance(error, CallRefusedError):
            self._callback(self._error, str(error))
        elif isinstance(error, CallFailedError):
            self._log.warning("%s: %s", item.name, error)
        else:  # A bad action must not kill the sender (and so the driver).
            self._log.error("%s failed", item.name, exc_info=error)

    # -- the callback thread --

    def _callback_main(self) -> None:
        while (item := self._callbacks.get()) is not None:
            if not item.always and self.status is not Status.DRIVER_RUNNING:
                continue
            try:
                item.run()
            except Exception:
                self._log.exception("%s callback raised; aborting the driver", self._role)
                self.abort()
