"""ExecutorClient: the asyncio-native executor client (the threaded ExecutorDriver is built on it).

::

    async with ExecutorClient() as client:          # reads MESOS_*, waits for SUBSCRIBED
        async for event in client.events():
            match event:
                case executor_session.Launch(task=task):
                    status = messages.TaskStatus(state=messages.TASK_RUNNING)
                    status.task_id.CopyFrom(task.task_id)
                    await client.update(status)
                case executor_session.Message(data=data):
                    await client.message(b"pong " + data)
                case executor_session.Shutdown():
                    break

One background task owns the connection to the agent's gRPC ``Executor`` service: it sends
SUBSCRIBE, reads events, and when the stream breaks asks the sans-I/O
:class:`~framework_sdk.executor_session.ExecutorSession` what to do (subscribe again after a
short random wait, or shut down). :meth:`ExecutorClient.update` records the update as
unacknowledged *before* sending it, so once it returns the update is either with the agent or
queued for the next SUBSCRIBE.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from types import TracebackType

import grpc
import grpc.aio

from framework_sdk.errors import (
    CallError,
    CallFailedError,
    CallRefusedError,
    NotSubscribedError,
    SubscriptionError,
)
from framework_sdk.executor_config import ExecutorConfig
from framework_sdk.executor_session import (
    TRANSPORT_CODES,
    Error,
    ExecutorEvent,
    ExecutorSession,
    Heartbeat,
    Lost,
    ProtocolError,
    Subscribed,
)
from protos.v1 import executor_pb2, executor_pb2_grpc, mesos_pb2

__all__ = ["AgentCallFailedError", "AgentCallRefusedError", "ExecutorClient"]

logger = logging.getLogger("framework_sdk.executor")

_EOF: object = grpc.aio.EOF  # type: ignore[attr-defined]  # (missing from grpc-stubs)


class AgentCallRefusedError(CallRefusedError):
    """AgentCallRefusedError: the agent answered an executor call with an error status.

    ``INVALID_ARGUMENT`` (malformed), ``NOT_FOUND`` (unknown task or executor),
    ``FAILED_PRECONDITION`` (e.g. an update for a task already terminal).
    """

    _verb = "refused by the agent"


class AgentCallFailedError(CallFailedError):
    """AgentCallFailedError: an executor call did not get through to the agent."""

    _verb = "did not reach the agent"


def _call_error(name: str, error: grpc.aio.AioRpcError) -> CallError:
    code = error.code().name
    kind = AgentCallFailedError if code in TRANSPORT_CODES else AgentCallRefusedError
    return kind(name, code, error.details() or "")


class _EventIterator:
    """Async iterator over a client's event queue; ends when the client does."""

    def __init__(self, queue: asyncio.Queue[ExecutorEvent | None], heartbeats: bool) -> None:
        self._queue = queue
        self._heartbeats = heartbeats

    def __aiter__(self) -> _EventIterator:
        return self

    async def __anext__(self) -> ExecutorEvent:
        while True:
            item = await self._queue.get()
            if item is None:
                self._queue.put_nowait(None)  # Any other iterator ends too.
                raise StopAsyncIteration
            if self._heartbeats or not isinstance(item, Heartbeat):
                return item


class ExecutorClient:
    """ExecutorClient subscribes an executor to its agent and keeps it subscribed.

    ``config`` defaults to :meth:`ExecutorConfig.from_env` over ``environ`` (``os.environ`` by
    default), which raises :class:`~framework_sdk.executor_config.ExecutorEnvironmentError`
    naming a missing or bad variable. ``async with`` starts the client and waits for SUBSCRIBED
    (raising :class:`~framework_sdk.errors.SubscriptionError` if the agent never takes it);
    leaving it closes the connection.
    """

    def __init__(
        self,
        config: ExecutorConfig | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        rng: random.Random | None = None,
        new_uuid: Callable[[], bytes] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config if config is not None else ExecutorConfig.from_env(environ)
        self.session = ExecutorSession(self.config, rng=rng, new_uuid=new_uuid)
        self._clock = clock
        self._wall_clock = wall_clock
        self._queue: asyncio.Queue[ExecutorEvent | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._channel: grpc.aio.Channel | None = None
        self._stub: executor_pb2_grpc.ExecutorAsyncStub | None = None
        self._changed = asyncio.Event()

    # -- state --

    @property
    def subscribed(self) -> bool:
        """Whether the client is subscribed right now."""
        return self.session.subscribed

    @property
    def closed(self) -> bool:
        """Whether the client ended for good."""
        return self.session.closed

    @property
    def agent_info(self) -> mesos_pb2.AgentInfo | None:
        """The agent's info from the latest SUBSCRIBED (None before)."""
        return self.session.agent_info

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # -- lifecycle --

    async def start(self) -> None:
        """Start subscribing in the background (returns at once; idempotent)."""
        if self._task is None and not self.session.closed:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="framework_sdk.executor-subscription"
            )

    async def wait_subscribed(self) -> None:
        """Wait until subscribed; SubscriptionError if the client ends first."""
        while not self.session.subscribed:
            if self.session.closed:
                raise SubscriptionError(self.session.close_reason or "client closed")
            if self._task is None:
                raise NotSubscribedError("the client is not started: call start() first")
            await self._changed.wait()

    async def __aenter__(self) -> ExecutorClient:
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

    async def close(self) -> None:
        """Disconnect for good; :meth:`events` ends once the events already queued are taken."""
        self.session.close("closed by the executor")
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._close_channel()
        self._queue.put_nowait(None)
        self._notify()

    def events(self, *, heartbeats: bool = False) -> _EventIterator:
        """The events in order, as :mod:`~framework_sdk.executor_session` types; ends with the
        client. Includes the SDK's ``Disconnected`` (and its ``Shutdown`` when the agent is
        lost for good); heartbeats only if asked for. Meant for one consumer."""
        return _EventIterator(self._queue, heartbeats)

    # -- the connection task --

    async def _run(self) -> None:
        try:
            while not self.session.closed:
                retry = await self._subscription()
                if retry is not None:
                    await asyncio.sleep(retry)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # A bug here must end the client, not hang it silently.
            logger.exception("executor client failed")
            self.session.close(f"executor client failed: {error!r}")
            self._queue.put_nowait(Error(self.session.close_reason or ""))
        finally:
            await self._close_channel()
            self._queue.put_nowait(None)
            self._notify()

    async def _close_channel(self) -> None:
        channel, self._channel, self._stub = self._channel, None, None
        if channel is not None:
            await channel.close(None)

    async def _subscription(self) -> float | None:
        """One subscription attempt; the delay before the next one, or None when over."""
        session = self.session
        # A fresh channel per attempt: a failed channel sits in gRPC's own reconnect backoff
        # and would fail our attempts without trying the agent.
        await self._close_channel()
        self._channel = grpc.aio.insecure_channel(self.config.agent_endpoint)
        self._stub = executor_pb2_grpc.ExecutorStub(self._channel)
        stream = self._stub.Subscribe(session.subscribe_call(self._clock()))
        self._notify()
        try:
            while True:
                if session.subscribed:
                    message = await stream.read()
                else:  # The agent answers SUBSCRIBE at once; a silent one is retried.
                    async with asyncio.timeout(self.config.subscribe_timeout_seconds):
                        message = await stream.read()
                if message is _EOF:
                    status = await stream.code()
                    raise ProtocolError(f"the agent ended the stream ({status.name})")
                assert isinstance(message, executor_pb2.Event)
                for event in session.receive(message, self._clock()):
                    if isinstance(event, Subscribed):
                        self._notify()
                        logger.info(
                            "executor %s subscribed to the agent at %s%s",
                            self.config.executor_id,
                            self.config.agent_endpoint,
                            " again" if event.resubscribed else "",
                        )
                    self._queue.put_nowait(event)
                if session.closed:
                    return None
        except TimeoutError:
            timeout = self.config.subscribe_timeout_seconds
            reason = f"no SUBSCRIBED within {timeout:g}s"
            return self._lost(session.stream_lost(reason, self._clock()))
        except ProtocolError as error:
            return self._lost(session.stream_lost(str(error), self._clock()))
        except grpc.aio.AioRpcError as error:
            code, details = error.code().name, error.details() or ""
            if session.subscribed:
                return self._lost(session.stream_lost(f"{code}: {details}", self._clock()))
            return self._lost(session.subscribe_failed(code, details, self._clock()))
        finally:
            stream.cancel()

    def _lost(self, lost: Lost) -> float | None:
        for event in lost.events:
            self._queue.put_nowait(event)
        self._notify()
        if lost.retry is None:
            if self.session.close_reason:
                logger.warning("executor client ended: %s", self.session.close_reason)
            return None
        logger.info("subscribing again in %.2fs: %s", lost.retry.delay, lost.retry.reason)
        return lost.retry.delay

    # -- calls --

    async def update(self, status: mesos_pb2.TaskStatus) -> bytes:
        """Send a status update (UPDATE); returns the uuid the client gave it.

        The update counts as unacknowledged until the agent's ACKNOWLEDGED event; if the
        connection is down (or breaks), it goes out with the next SUBSCRIBE, so nothing is lost
        while the executor lives. Raises TypeError/ValueError for a bad status (TASK_STAGING
        included) and :class:`AgentCallRefusedError` when the agent refused it (then it is
        dropped).
        """
        call = self.session.prepare_update(status, self._wall_clock())
        uuid = call.update.status.uuid
        stub = self._stub
        if not self.session.subscribed or stub is None:
            return uuid
        try:
            await stub.Update(call, timeout=self.config.call_timeout_seconds)
        except grpc.aio.AioRpcError as error:
            if self.session.update_refused(uuid, error.code().name):
                raise _call_error("UPDATE", error) from None
            logger.info(
                "UPDATE of task %s kept for the next SUBSCRIBE: %s",
                status.task_id.value,
                error.code().name,
            )
        return uuid

    async def message(self, data: bytes) -> None:
        """Send opaque ``data`` to the scheduler (MESSAGE; best effort).

        Raises :class:`~framework_sdk.errors.NotSubscribedError` while not subscribed (nothing
        is sent), :class:`AgentCallRefusedError` or :class:`AgentCallFailedError` otherwise.
        """
        call = self.session.message_call(data)
        stub = self._stub
        if stub is None:
            raise NotSubscribedError("MESSAGE not sent: no connection")
        try:
            await stub.Message(call, timeout=self.config.call_timeout_seconds)
        except grpc.aio.AioRpcError as error:
            raise _call_error("MESSAGE", error) from None
