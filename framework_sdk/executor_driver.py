"""ExecutorDriver: Mesos's classic threaded executor driver, over the asyncio executor client.

Two threads per driver (see :mod:`framework_sdk._threaded_driver`): the *driver thread* runs an
asyncio loop with one :class:`~framework_sdk.executor_aio.ExecutorClient` (subscription,
reconnection, calls); the *callback thread* runs the executor's callbacks one at a time, in
event order. Driver methods may be called from any thread (callbacks and the executor's own
task threads included): they check their arguments at once, raising TypeError/ValueError, queue
the call for the driver thread, and return the driver status. Queued calls go out one at a time
in the order they were made, and :meth:`ExecutorDriver.stop` sends everything queued before it,
so an executor can send its last TASK_FINISHED and stop at once.

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
import logging
from collections.abc import Awaitable, Callable, Mapping

from framework_sdk._threaded_driver import Outgoing, Stop, ThreadedDriver
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
from framework_sdk.status import Status
from protos.v1 import mesos_pb2

__all__ = ["ExecutorDriver"]

logger = logging.getLogger("framework_sdk.executor")

_Action = Callable[[ExecutorClient], Awaitable[object]]


class ExecutorDriver(ThreadedDriver[ExecutorClient, ExecutorEvent, Outgoing[ExecutorClient]]):
    """ExecutorDriver connects an :class:`~framework_sdk.executor.Executor` to its agent.

    Where the agent is and who the executor is come from the ``MESOS_*`` environment the agent
    set (``environ`` replaces ``os.environ``; ``config`` replaces both): a missing or invalid
    variable raises :class:`~framework_sdk.executor_config.ExecutorEnvironmentError` naming it.
    Methods return :class:`~framework_sdk.driver.Status` values, as Mesos's driver does.
    """

    _thread_names = ("framework_sdk-executor", "framework_sdk-executor-callbacks")
    _role = "executor"
    _log = logger

    def __init__(
        self,
        executor: Executor,
        *,
        environ: Mapping[str, str] | None = None,
        config: ExecutorConfig | None = None,
    ) -> None:
        if executor is None:
            raise TypeError("executor must be an Executor, not None")
        super().__init__()
        self.executor = executor
        self.config = config if config is not None else ExecutorConfig.from_env(environ)
        self._shutting_down = False  # A Shutdown event was dispatched (driver thread only).

    # -- state --

    @property
    def client(self) -> ExecutorClient | None:
        """The asyncio client underneath (None before start); for inspection, not for calls."""
        return self._client

    # -- lifecycle --

    def stop(self) -> Status:
        """Stop the driver: calls made before are sent, then the connection closes.

        Returns DRIVER_STOPPED (DRIVER_ABORTED if the driver had aborted).
        """
        return self._stop(teardown=False)

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

    def _submit(self, name: str, action: _Action) -> Status:
        return self._queue_call(Outgoing(name, action))

    # -- the driver thread --

    def _new_client(self) -> ExecutorClient:
        return ExecutorClient(self.config)

    async def _events_ended(self, sender: asyncio.Task[None]) -> None:
        if self._shutting_down:
            # The client ended (agent lost) while shutdown() runs or waits to: the driver
            # stops once it returned (or the grace period passed), not before.
            await asyncio.wait({sender})

    def _dispatch(self, event: ExecutorEvent) -> None:
        """Turn one event into the executor callback it calls (on the callback thread)."""
        executor, callback = self.executor, self._callback
        if isinstance(event, Subscribed):
            if event.resubscribed:
                callback(executor.reregistered, self, event.agent_info)
            else:
                callback(
                    executor.registered,
                    self,
                    event.executor_info,
                    event.framework_info,
                    event.agent_info,
                )
        elif isinstance(event, Launch):
            callback(executor.launchTask, self, event.task)
        elif isinstance(event, LaunchGroup):
            callback(executor.launchTaskGroup, self, event.task_group)
        elif isinstance(event, Kill):
            callback(executor.killTask, self, event.task_id)
        elif isinstance(event, Message):
            callback(executor.frameworkMessage, self, event.data)
        elif isinstance(event, Disconnected):
            logger.warning("disconnected from the agent: %s", event.reason)
            callback(executor.disconnected, self)
        elif isinstance(event, Shutdown):
            logger.info("shutting down: %s", event.reason)
            self._shutting_down = True
            grace = self.config.shutdown_grace_period_seconds
            asyncio.get_running_loop().call_later(grace, self._shutdown_overdue)
            callback(self._shutdown)
        elif isinstance(event, Error):
            # The client ended with this event; the driver thread stops next.
            self._abort_with_error(event.message)
        elif isinstance(event, Acknowledged):
            logger.debug("update %s of task %s acknowledged", event.uuid.hex(), event.task_id.value)

    def _shutdown_overdue(self) -> None:
        with self._lock:
            if self._status is not Status.DRIVER_RUNNING:
                return
            self._status = Status.DRIVER_ABORTED
            # The callback thread is stuck in shutdown(); join() does not wait for it.
            self._callbacks_abandoned = True
        grace = self.config.shutdown_grace_period_seconds
        logger.warning("Executor.shutdown() still running after %gs; aborting the driver", grace)
        assert self._outbox is not None  # Set before the first event.
        self._outbox.put_nowait(Stop())

    # -- the callback thread --

    def _shutdown(self) -> None:
        self.executor.shutdown(self)
        with self._lock:
            if self._status is not Status.DRIVER_RUNNING:
                return
            self._status = Status.DRIVER_STOPPED
        self._post(Stop())

    def _error(self, message: str) -> None:
        self.executor.error(self, message)
