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
import logging
import random
import time
from collections.abc import Callable, Mapping

import grpc
import grpc.aio

from framework_sdk._stream_client import EOF, EventIterator, StreamClient
from framework_sdk.errors import (
    CallError,
    CallFailedError,
    CallRefusedError,
    NotSubscribedError,
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


class ExecutorClient(
    StreamClient[ExecutorSession, ExecutorEvent, "executor_pb2_grpc.ExecutorAsyncStub"]
):
    """ExecutorClient subscribes an executor to its agent and keeps it subscribed.

    ``config`` defaults to :meth:`ExecutorConfig.from_env` over ``environ`` (``os.environ`` by
    default), which raises :class:`~framework_sdk.executor_config.ExecutorEnvironmentError`
    naming a missing or bad variable. ``async with`` starts the client and waits for SUBSCRIBED
    (raising :class:`~framework_sdk.errors.SubscriptionError` if the agent never takes it);
    leaving it closes the connection.
    """

    _role = "executor"
    _log = logger
    _task_name = "framework_sdk.executor-subscription"

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
        super().__init__(ExecutorSession(self.config, rng=rng, new_uuid=new_uuid), clock)
        self._wall_clock = wall_clock

    # -- state --

    @property
    def agent_info(self) -> mesos_pb2.AgentInfo | None:
        """The agent's info from the latest SUBSCRIBED (None before)."""
        return self.session.agent_info

    # -- lifecycle --

    async def close(self) -> None:
        """Disconnect for good; :meth:`events` ends once the events already queued are taken."""
        self.session.close("closed by the executor")
        await self._end_task()
        self._queue.put_nowait(None)
        self._notify()

    def events(self, *, heartbeats: bool = False) -> EventIterator[ExecutorEvent]:
        """The events in order, as :mod:`~framework_sdk.executor_session` types; ends with the
        client. Includes the SDK's ``Disconnected`` (and its ``Shutdown`` when the agent is
        lost for good); heartbeats only if asked for. Meant for one consumer."""
        return EventIterator(self._queue, Heartbeat, heartbeats)

    # -- the connection task --

    async def _after_run(self) -> None:
        # A closed session refuses every call (updates and messages), so nothing more needs
        # the channel: it closes with the connection task.
        await self._close_channel()

    def _new_stub(self, channel: grpc.aio.Channel) -> executor_pb2_grpc.ExecutorAsyncStub:
        return executor_pb2_grpc.ExecutorStub(channel)

    def _error_event(self, message: str) -> ExecutorEvent:
        return Error(message)

    async def _attempt(self) -> float | None:
        """One subscription attempt; the delay before the next one, or None when over."""
        session = self.session
        stub = await self._connect(self.config.agent_endpoint)
        stream = stub.Subscribe(session.subscribe_call(self._clock()))
        self._notify()
        try:
            while True:
                if session.subscribed:
                    message = await stream.read()
                else:  # The agent answers SUBSCRIBE at once; a silent one is retried.
                    async with asyncio.timeout(self.config.subscribe_timeout_seconds):
                        message = await stream.read()
                if message is EOF:
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
