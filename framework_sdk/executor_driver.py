"""ExecutorDriver: Mesos's classic threaded executor driver, over the asyncio executor client.

Two threads per driver: the *driver thread* runs an asyncio loop with one
:class:`~framework_sdk.executor_aio.ExecutorClient` (subscription, reconnection, calls); the
*callback thread* runs the executor's callbacks one at a time, in event order. Driver methods
may be called from any thread (callbacks and the executor's own task threads included): they
check their arguments at once, raising TypeError/ValueError, queue the call for the driver
thread, and return the driver status. Queued calls go out one at a time in the order they were
made, and :meth:`ExecutorDriver.stop` sends everything queued before it, so an executor can
send its last TASK_FINISHED and stop at once.

Status updates are reliable (see :mod:`framework_sdk.executor_session`): each gets a uuid and
is resent in the next SUBSCRIBE until the agent acknowledges it. Framework messages are best
effort and dropped while disconnected.

When the agent sends SHUTDOWN (or is lost for good), ``Executor.shutdown`` runs and the driver
stops when it returns. If it has not returned within ``MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD``,
the driver aborts anyway so ``join()`` returns (the agent kills the executor at about that
time regardless).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import queue
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from framework_sdk.driver import Status
from framework_sdk.errors import (
    CallFailedError,
    CallRefusedError,
    DriverStateError,
    NotSubscribedError,
)
from framework_sdk.executor import Executor
from framework_sdk.executor_aio import ExecutorClient
from framework_sdk.executor_config import ExecutorConfig
from framework_sdk.executor_session import (
    Acknowledged,
    Disconnected,
    Error,
    ExecutorEvent,
    Kill,
    Launch,
    LaunchGroup,
    Message,
    Shutdown,
    Subscribed,
    check_status,
)
from protos.v1 import mesos_pb2

__all__ = ["ExecutorDriver"]

logger = logging.getLogger("framework_sdk.executor")

_Action = Callable[[ExecutorClient], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class _Outgoing:
    """A call queued for the driver thread."""

    name: str
    action: _Action


@dataclass(frozen=True, slots=True)
class _Stop:
    """Queued by stop()/abort(): close the client once the calls queued before are sent."""


@dataclass(frozen=True, slots=True)
class _Callback:
    """An executor callback for the callback thread; ``always`` runs it even if not running."""

    run: Callable[[], None]
    always: bool = False


class ExecutorDriver:
    """ExecutorDriver connects an :class:`~framework_sdk.executor.Executor` to its agent.

    Where the agent is and who the executor is come from the ``MESOS_*`` environment the agent
    set (``environ`` replaces ``os.environ``; ``config`` replaces both): a missing or invalid
    variable raises :class:`~framework_sdk.executor_config.ExecutorEnvironmentError` naming it.
    Methods return :class:`~framework_sdk.driver.Status` values, as Mesos's driver does.
    """

    def __init__(
        self,
        executor: Executor,
        *,
        environ: Mapping[str, str] | None = None,
        config: ExecutorConfig | None = None,
    ) -> None:
        if executor is None:
            raise TypeError("executor must be an Executor, not None")
        self.executor = executor
        self.config = config if config is not None else ExecutorConfig.from_env(environ)
        self._lock = threading.Lock()
        self._status = Status.DRIVER_NOT_STARTED
        self._loop: asyncio.AbstractEventLoop | None = None
        self._outbox: asyncio.Queue[_Outgoing | _Stop] | None = None
        self._client: ExecutorClient | None = None
        self._callbacks: queue.SimpleQueue[_Callback | None] = queue.SimpleQueue()
        self._driver_thread: threading.Thread | None = None
        self._callback_thread: threading.Thread | None = None
        self._finished = threading.Event()
        self._shutting_down = False  # A Shutdown event was dispatched (driver thread only).
        self._overdue = False  # shutdown() outlived the grace period.

    # -- state --

    @property
    def status(self) -> Status:
        """The driver's status now."""
        with self._lock:
            return self._status

    @property
    def client(self) -> ExecutorClient | None:
        """The asyncio client underneath (None before start); for inspection, not for calls."""
        return self._client

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
        self._callback_thread = threading.Thread(
            target=self._callback_main, name="framework_sdk-executor-callbacks", daemon=True
        )
        self._driver_thread = threading.Thread(
            target=self._driver_main, args=(ready,), name="framework_sdk-executor", daemon=True
        )
        self._callback_thread.start()
        self._driver_thread.start()
        ready.wait()
        return Status.DRIVER_RUNNING

    def stop(self) -> Status:
        """Stop the driver: calls made before are sent, then the connection closes.

        Returns DRIVER_STOPPED (DRIVER_ABORTED if the driver had aborted).
        """
        with self._lock:
            status = self._check_started("stop")
            if status is Status.DRIVER_STOPPED:
                return status
            self._status = Status.DRIVER_STOPPED
        self._post(_Stop())
        return Status.DRIVER_ABORTED if status is Status.DRIVER_ABORTED else Status.DRIVER_STOPPED

    def abort(self) -> Status:
        """Abort: no more callbacks and no new calls; calls made before are still sent.

        Returns DRIVER_ABORTED.
        """
        with self._lock:
            status = self._check_started("abort")
            if status is not Status.DRIVER_RUNNING:
                return status
            self._status = Status.DRIVER_ABORTED
        self._post(_Stop())
        return Status.DRIVER_ABORTED

    def join(self) -> Status:
        """Wait until the driver stopped or aborted and its last callback returned."""
        with self._lock:
            self._check_started("join")
        self._finished.wait()
        return self.status

    def run(self) -> Status:
        """start() then join()."""
        status = self.start()
        return status if status is not Status.DRIVER_RUNNING else self.join()

    # -- calls --

    def sendStatusUpdate(self, status: mesos_pb2.TaskStatus) -> Status:
        """Send a task's status update reliably (retried until the agent acknowledges it).

        The driver sets its uuid, ``source`` (SOURCE_EXECUTOR), ``executor_id``, ``agent_id``
        and ``timestamp`` (unless set). TASK_STAGING is refused with ValueError, as Mesos
        refuses it; so is a status without ``task_id`` or ``state``.
        """
        check_status(status, self.config.executor_id)
        copy = mesos_pb2.TaskStatus()
        copy.CopyFrom(status)
        return self._submit("sendStatusUpdate", lambda client: client.update(copy))

    def sendFrameworkMessage(self, data: bytes | str) -> Status:
        """Send opaque data to the scheduler (best effort); a str is sent UTF-8 encoded."""
        if isinstance(data, str):
            data = data.encode()
        if not isinstance(data, bytes):
            raise TypeError(f"data must be bytes or str, not {type(data).__name__}")
        payload = data
        return self._submit("sendFrameworkMessage", lambda client: client.message(payload))

    # -- queueing to the driver thread --

    def _submit(self, name: str, action: _Action) -> Status:
        with self._lock:
            status = self._check_started(name)
            if status is not Status.DRIVER_RUNNING:
                return status
            self._post(_Outgoing(name, action))
            return status

    def _post(self, item: _Outgoing | _Stop) -> None:
        loop, outbox = self._loop, self._outbox
        if loop is None or outbox is None:
            return
        # The loop is gone once the driver thread ended; nothing is left to send then.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(outbox.put_nowait, item)

    # -- the driver thread --

    def _driver_main(self, ready: threading.Event) -> None:
        try:
            asyncio.run(self._async_main(ready))
        except Exception:
            logger.exception("executor driver thread failed")
        finally:
            ready.set()
            with self._lock:
                if self._status is Status.DRIVER_RUNNING:
                    self._status = Status.DRIVER_ABORTED
            self._callbacks.put(None)
            if self._overdue:  # The callback thread is stuck in shutdown(); do not wait for it.
                self._finished.set()

    async def _async_main(self, ready: threading.Event) -> None:
        outbox: asyncio.Queue[_Outgoing | _Stop] = asyncio.Queue()
        client = ExecutorClient(self.config)
        self._loop, self._outbox, self._client = asyncio.get_running_loop(), outbox, client
        ready.set()
        await client.start()
        sender = asyncio.create_task(self._send_loop(client, outbox), name="framework_sdk.calls")
        try:
            async for event in client.events():
                self._dispatch(event, outbox)
            if self._shutting_down:
                # The client ended (agent lost) while shutdown() runs or waits to: the driver
                # stops once it returned (or the grace period passed), not before.
                await asyncio.wait({sender})
        finally:
            if not sender.done():
                outbox.put_nowait(_Stop())
                await sender
            await client.close()

    async def _send_loop(
        self, client: ExecutorClient, outbox: asyncio.Queue[_Outgoing | _Stop]
    ) -> None:
        while True:
            item = await outbox.get()
            if isinstance(item, _Stop):
                await client.close()
                return
            try:
                await item.action(client)
            except NotSubscribedError as error:
                logger.info("%s dropped: %s", item.name, error)
            except CallRefusedError as error:
                self._callbacks.put(_Callback(functools.partial(self._error, str(error))))
            except CallFailedError as error:
                logger.warning("%s: %s", item.name, error)
            except Exception:  # A bad action must not kill the sender (and so the driver).
                logger.exception("%s failed", item.name)

    def _dispatch(self, event: ExecutorEvent, outbox: asyncio.Queue[_Outgoing | _Stop]) -> None:
        """Turn one event into the executor callback it calls (on the callback thread)."""
        executor, put, partial = self.executor, self._callbacks.put, functools.partial
        if isinstance(event, Subscribed):
            if event.resubscribed:
                put(_Callback(partial(executor.reregistered, self, event.agent_info)))
            else:
                registered = partial(
                    executor.registered,
                    self,
                    event.executor_info,
                    event.framework_info,
                    event.agent_info,
                )
                put(_Callback(registered))
        elif isinstance(event, Launch):
            put(_Callback(partial(executor.launchTask, self, event.task)))
        elif isinstance(event, LaunchGroup):
            put(_Callback(partial(executor.launchTaskGroup, self, event.task_group)))
        elif isinstance(event, Kill):
            put(_Callback(partial(executor.killTask, self, event.task_id)))
        elif isinstance(event, Message):
            put(_Callback(partial(executor.frameworkMessage, self, event.data)))
        elif isinstance(event, Disconnected):
            logger.warning("disconnected from the agent: %s", event.reason)
            put(_Callback(partial(executor.disconnected, self)))
        elif isinstance(event, Shutdown):
            logger.info("shutting down: %s", event.reason)
            self._shutting_down = True
            grace = self.config.shutdown_grace_period_seconds
            asyncio.get_running_loop().call_later(grace, self._shutdown_overdue, outbox)
            put(_Callback(self._shutdown))
        elif isinstance(event, Error):
            with self._lock:
                running = self._status is Status.DRIVER_RUNNING
                if running:  # As Mesos: abort first, then tell the executor.
                    self._status = Status.DRIVER_ABORTED
            if running:  # The client ended with this event; the driver thread stops next.
                put(_Callback(partial(self._error, event.message), always=True))
        elif isinstance(event, Acknowledged):
            logger.debug("update %s of task %s acknowledged", event.uuid.hex(), event.task_id.value)

    def _shutdown_overdue(self, outbox: asyncio.Queue[_Outgoing | _Stop]) -> None:
        with self._lock:
            if self._status is not Status.DRIVER_RUNNING:
                return
            self._status = Status.DRIVER_ABORTED
            self._overdue = True
        grace = self.config.shutdown_grace_period_seconds
        logger.warning("Executor.shutdown() still running after %gs; aborting the driver", grace)
        outbox.put_nowait(_Stop())

    # -- the callback thread --

    def _shutdown(self) -> None:
        self.executor.shutdown(self)
        with self._lock:
            if self._status is not Status.DRIVER_RUNNING:
                return
            self._status = Status.DRIVER_STOPPED
        self._post(_Stop())

    def _error(self, message: str) -> None:
        self.executor.error(self, message)

    def _callback_main(self) -> None:
        try:
            while (item := self._callbacks.get()) is not None:
                if not item.always and self.status is not Status.DRIVER_RUNNING:
                    continue
                try:
                    item.run()
                except Exception:
                    logger.exception("executor callback raised; aborting the driver")
                    self.abort()
        finally:
            self._finished.set()
