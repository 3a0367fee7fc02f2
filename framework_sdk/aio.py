"""SchedulerClient: the asyncio-native scheduler client (the threaded driver is built on it).

::

    async with SchedulerClient("127.0.0.1:5050", info) as client:   # waits for SUBSCRIBED
        async for event in client.events():
            match event:
                case events.Offers(offers=offers):
                    await client.launch([offers[0].id], [task])
                case events.Update(status=status):
                    await client.acknowledge(status)   # when status.uuid is set

One background task owns the connection: it asks the master detector for the leader, sends
SUBSCRIBE, reads events, and when the stream breaks or goes quiet for ``heartbeat_misses``
heartbeat intervals it reports :class:`~framework_sdk.events.Disconnected` and re-subscribes
with the framework id (a failover, so the master keeps the framework's tasks) after a jittered
exponential backoff. What to do at each step is decided by the sans-I/O
:class:`~framework_sdk.session.SchedulerSession`; this module only does the I/O.

**Emporion's batched API.** The client subscribes with ``SubscribeBatched`` (events arrive in
groups) and falls back to Mesos's ``Subscribe`` when the master answers UNIMPLEMENTED. While
the master offers it, calls made in the same loop iteration (say, the acknowledgements of one
burst of updates, each awaited in its own task) travel in one ``Batch``, applied by the master
in the order they were made, and each awaiting caller gets its own call's outcome; a lone call
goes on its Mesos unary method. :meth:`SchedulerClient.send_all` sends a list of calls in order
(in one ``Batch`` when it can) and returns each one's outcome.

**Following the leader.** A master that does not lead refuses SUBSCRIBE with UNAVAILABLE and
names the leader in the trailing metadata ``emporion-leader`` (:data:`LEADER_METADATA`): the
client's next attempt goes to that address at once, instead of the detector's answer after a
backoff. The hint serves that one attempt; the detector (a ``zk://`` one especially) stays
authoritative for every later one. Besides, the subscription (and every backoff sleep) is raced
against news of the leader (:class:`~framework_sdk._following.LeaderWatch`): a detector that
follows the leader naming another master (or none), or a unary call or ``Batch`` refused with
UNAVAILABLE naming one (the call fails with ``CallFailedError.leader`` set; it is not sent
again). The session decides what that means; leaving a master, the client reports
``Disconnected`` naming the change and subscribes to the leader after a short jittered delay,
the backoff restarted. Events the stream still delivers after the client closed (say, after
TEARDOWN) are dropped quietly.

The scaffolding shared with the executor client is in :mod:`framework_sdk._stream_client`; how
calls are sent, gathered into ``Batch`` or alone, in :mod:`framework_sdk._batching`.

**Security.** ``credential=`` (a ``messages.Credential``, as Mesos's driver takes) is sent with
every call; ``tls=`` (a :class:`~framework_sdk.auth.TlsConfig`) makes the channels TLS. Without
them the ``EMPORION_SDK_PRINCIPAL``/``EMPORION_SDK_TLS_*`` variables decide
(:mod:`framework_sdk.auth`).
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import math
import os
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import grpc
import grpc.aio

from framework_sdk import calls
from framework_sdk import events as ev
from framework_sdk._batching import (
    LEADER_METADATA,
    STREAM_ID_METADATA,
    CallSender,
    Stub,
    _metadata_value,
    leader_hint,
)
from framework_sdk._following import LeaderNews, LeaderWatch
from framework_sdk._stream_client import EOF, EventIterator, StreamClient
from framework_sdk.auth import (
    ClientCredential,
    TlsConfig,
    credential_from_env,
    resolve_credential,
    tls_from_env,
)
from framework_sdk.config import ClientConfig
from framework_sdk.detector import MasterDetector, create_detector
from framework_sdk.errors import CallError, NotSubscribedError
from framework_sdk.session import GiveUp, ProtocolError, Retry, SchedulerSession
from protos.v1 import mesos_pb2, scheduler_pb2, scheduler_pb2_grpc

__all__ = ["LEADER_METADATA", "STREAM_ID_METADATA", "SchedulerClient", "leader_hint"]

logger = logging.getLogger("framework_sdk.aio")

_T = TypeVar("_T")


class _DeadlineError(Exception):
    """The open stream's deadline passed (no SUBSCRIBED, or no event for too long)."""


class _StreamDroppedError(Exception):
    """The session dropped the stream meanwhile (closed by the scheduler): nothing to read."""


def _current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def _stream_id(metadata: object) -> str | None:
    return _metadata_value(metadata, STREAM_ID_METADATA)


class SchedulerClient(
    StreamClient[SchedulerSession, ev.Event, "scheduler_pb2_grpc.SchedulerAsyncStub"]
):
    """SchedulerClient subscribes a framework to the master and keeps it subscribed.

    ``master`` is ``"host:port"`` or a :class:`~framework_sdk.detector.MasterDetector`. An
    empty ``framework_info.user`` is filled with the current user; a set ``framework_info.id``
    fails that framework over to this client. ``async with`` starts the client and waits for
    the first SUBSCRIBED; leaving it disconnects *without* tearing the framework down (call
    :meth:`teardown` for that).

    Calls raise :class:`~framework_sdk.errors.NotSubscribedError` while the client is not
    subscribed (nothing is sent), :class:`~framework_sdk.errors.CallRefusedError` when the master
    answers with an error, :class:`~framework_sdk.errors.CallFailedError` when the call did not
    get through. :meth:`suppress`, :meth:`revive` and :meth:`update_framework` are remembered
    while disconnected and take effect with the next subscription.

    ``rng``, ``clock`` and ``sleep`` (how the reconnect delays are waited out) are seams for
    tests; the defaults are the real ones.
    """

    _role = "scheduler"
    _log = logger
    _task_name = "framework_sdk.subscription"
    # Retries to one master share a channel: a fresh one per attempt cost ~0.45 s of CPU per
    # 2 s of retries in the failover benchmark.
    _reuse_channels = True

    def __init__(
        self,
        master: str | MasterDetector,
        framework_info: mesos_pb2.FrameworkInfo,
        *,
        suppressed_roles: Iterable[str] = (),
        offer_constraints: scheduler_pb2.OfferConstraints | None = None,
        config: ClientConfig | None = None,
        credential: mesos_pb2.Credential | ClientCredential | None = None,
        tls: TlsConfig | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        detector = create_detector(master)
        if not isinstance(framework_info, mesos_pb2.FrameworkInfo):
            raise TypeError(f"framework_info must be a FrameworkInfo, not {framework_info!r}")
        info = mesos_pb2.FrameworkInfo()
        info.CopyFrom(framework_info)
        if not info.user:
            info.user = _current_user()
        self.config = config or ClientConfig()
        session = SchedulerSession(
            info,
            config=self.config,
            suppressed_roles=suppressed_roles,
            offer_constraints=offer_constraints,
            rng=rng,
        )
        super().__init__(session, clock)
        # As Mesos's driver: a credential given wins; else the environment's (framework_sdk.auth).
        self._credential = resolve_credential(credential) or credential_from_env()
        self._tls = tls if tls is not None else tls_from_env()
        self._detector = detector
        self._sleep = sleep
        self._address: str | None = None
        self._watch = LeaderWatch(detector)
        self._moved = False  # The last attempt ended leaving for a new leader ...
        self._pending_delay = 0.0  # ... to be subscribed to after this delay.
        self._calls = CallSender(
            session, self.config.call_timeout_seconds, on_leader=self._refusal_named_leader
        )
        self._master_name = master if isinstance(master, str) else repr(detector)
        self._started_at: float | None = None  # The first attempt's time ...
        self._ever_subscribed = False  # ... which counts until the first SUBSCRIBED.

    # -- state --

    @property
    def framework_id(self) -> mesos_pb2.FrameworkID | None:
        """The framework id once subscribed (or given in the framework info)."""
        return self.session.framework_id

    @property
    def batched(self) -> bool:
        """Whether the current subscription offers Emporion's batched API (``Batch``)."""
        return self.session.batched

    @property
    def master_address(self) -> str | None:
        """The address of the master of the current (or last) subscription attempt."""
        return self._address

    # -- lifecycle --

    async def close(self) -> None:
        """Disconnect for good without tearing the framework down; :meth:`events` ends at once
        (events not yet taken are dropped)."""
        self.session.close("closed by the scheduler")
        self._calls.drop_gathered()
        await self._end_task()
        await self._calls.cancel_batches()
        # Events still queued are dropped: a closed client has nothing more to report.
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(None)
        self._notify()
        await self._detector.close()

    def events(self, *, heartbeats: bool = False) -> EventIterator[ev.Event]:
        """The events, in order, as typed :mod:`~framework_sdk.events`; ends when the client does.

        Includes every :class:`~framework_sdk.events.Subscribed` (the first one too) and the
        SDK's :class:`~framework_sdk.events.Disconnected`; heartbeats only if asked for. Meant
        for one consumer.
        """
        return EventIterator(self._queue, ev.Heartbeat, heartbeats)

    # -- the connection task --

    async def _attempt(self) -> float | None:
        watch = self._watch
        if self._started_at is None:
            self._started_at = self._clock()
        address = watch.take_hint()
        if address is None:
            try:
                async with asyncio.timeout(self._connect_time_left()):
                    address = await watch.detect()
            except TimeoutError:
                self._give_up(self._master_name, "no master is known to lead")
                return None
        else:
            logger.info("following the leader hint to %s", address)
        stub = await self._connect(address)
        subscription = asyncio.ensure_future(self._subscription(stub, address))
        self._moved = await watch.race(subscription, self._leader_news)
        if self._moved:
            return self._pending_delay
        retry = subscription.result()
        if retry is None:
            return None
        if self._ever_subscribed or retry.delay == 0:  # (0: a follower named the leader.)
            logger.info("reconnecting in %.2fs: %s", retry.delay, retry.reason)
            return retry.delay
        # Never subscribed yet: likely a wrong address or a master not started. Say so at once,
        # every time, and give up once the connect timeout would pass.
        left = self._connect_time_left()
        if left is not None and retry.delay >= left:
            self._give_up(address, retry.reason)
            return None
        logger.warning(
            "cannot reach the master at %s: %s (retrying in %.2fs)",
            address,
            retry.reason,
            retry.delay,
        )
        return retry.delay

    def _connect_time_left(self) -> float | None:
        """Seconds left before the connect timeout (None: subscribed once, or no timeout)."""
        timeout = self.config.connect_timeout_seconds
        if self._ever_subscribed or self._started_at is None or timeout == math.inf:
            return None
        return max(0.0, self._started_at + timeout - self._clock())

    def _give_up(self, address: str, reason: str) -> None:
        """End the client: no master could be reached within ``connect_timeout_seconds``."""
        timeout = self.config.connect_timeout_seconds
        message = f"cannot reach the master at {address}: {reason} (connect timeout {timeout:g}s)"
        logger.error("%s", message)
        self.session.close(message)
        self._queue.put_nowait(ev.Error(message=message))
        self._notify()

    async def _pause(self, delay: float) -> None:
        """Wait before the next attempt. A backoff after a failure is cut short when the
        leader changes; the delay before subscribing to a new leader is waited out whole."""
        if self._moved or delay <= 0:
            self._moved = False
            await self._sleep(delay)
            return
        sleeper = asyncio.ensure_future(self._sleep(delay))
        if await self._watch.race(sleeper, self._leader_news):
            self._moved = False
            await self._sleep(self._pending_delay)

    def _leader_news(self, news: LeaderNews) -> bool:
        """Tell the session; whether it leaves its master (the delay in ``_pending_delay``)."""
        move = self.session.leader_changed(self._clock(), news.leader, named_by=news.named_by)
        self._watch.taken(news, acted=move is not None)
        if move is None:
            return False
        notice, retry = move
        if notice is not None:
            logger.warning("disconnected from %s: %s", self._address, retry.reason)
            self._queue.put_nowait(notice)
        self._notify()
        logger.info("subscribing again in %.2fs: %s", retry.delay, retry.reason)
        self._pending_delay = retry.delay
        return True

    def _refusal_named_leader(self, stub: Stub, leader: str, what: str) -> None:
        """A call (or Batch) sent over ``stub`` was refused by a master naming ``leader``."""
        # Only the master we are at (or were last at) counts: an answer from one left
        # before says nothing about the current one.
        if stub is not self._stub or leader == self._address or self.session.closed:
            return
        logger.info("%s refused by %s, which names the leader %s", what, self._address, leader)
        self._watch.named_by_refusal(leader, f"the master refusing {what}")

    async def _connect(self, address: str) -> scheduler_pb2_grpc.SchedulerAsyncStub:
        stub = await super()._connect(address)
        self._address = address
        return stub

    def _new_stub(self, channel: grpc.aio.Channel) -> scheduler_pb2_grpc.SchedulerAsyncStub:
        return scheduler_pb2_grpc.SchedulerStub(channel)

    def _error_event(self, message: str) -> ev.Event:
        return ev.Error(message=message)

    async def _before_deadline(self, read: Callable[[], Awaitable[_T]]) -> _T:
        deadline = self.session.deadline()
        if deadline is None:
            # close() ran while this task was about to read: it is cancelled next.
            raise _StreamDroppedError
        try:
            async with asyncio.timeout(max(0.0, deadline - self._clock())):
                return await read()
        except TimeoutError:
            raise _DeadlineError from None

    async def _subscription(
        self, stub: scheduler_pb2_grpc.SchedulerAsyncStub, address: str
    ) -> Retry | None:
        """One subscription attempt; returns when to retry, or None if the session ended."""
        session = self.session
        call = session.subscribe_call(self._clock(), address)
        batched = True
        stream: grpc.aio.UnaryStreamCall[scheduler_pb2.Call, Any] = stub.SubscribeBatched(call)
        self._notify()
        message: Any = None
        try:
            while True:
                try:
                    metadata = await self._before_deadline(stream.initial_metadata)
                    message = await self._before_deadline(stream.read)
                    break
                except grpc.aio.AioRpcError as error:
                    if not batched or error.code() != grpc.StatusCode.UNIMPLEMENTED:
                        raise
                # A master without Emporion's extension (or a Mesos-only proxy): subscribe
                # the Mesos way, at once; this is not a failed attempt.
                stream.cancel()
                batched = False
                stream = stub.Subscribe(call)
            session.stream_opened(_stream_id(metadata), batched=batched)
            while True:
                if message is EOF:
                    status = await stream.code()
                    details = await stream.details()
                    raise ProtocolError(f"the master ended the stream ({status.name}: {details})")
                if self._receive(message.events if batched else (message,)):
                    return None
                message = await self._before_deadline(stream.read)
        except _StreamDroppedError:
            return None
        except _DeadlineError:
            if session.subscribed:
                assert session.heartbeat_interval is not None
                quiet = session.heartbeat_interval * self.config.heartbeat_misses
                reason = f"no event from the master for {quiet:g}s (heartbeats stopped)"
            else:
                reason = f"no SUBSCRIBED within {self.config.subscribe_timeout_seconds:g}s"
            return self._lost(reason)
        except ProtocolError as error:
            return self._lost(str(error))
        except grpc.aio.AioRpcError as error:
            code, details = error.code().name, error.details() or ""
            if session.closed:
                return None
            leader = leader_hint(error)
            if leader is not None and leader != self._address:
                self._watch.hint = leader
            else:
                leader = None
            if not session.subscribed:
                outcome = session.subscribe_failed(code, details, self._clock(), leader=leader)
                self._notify()
                if isinstance(outcome, GiveUp):
                    self._queue.put_nowait(ev.Error(message=outcome.message))
                    return None
                return outcome
            return self._lost(f"the stream broke ({code}: {details})")
        finally:
            stream.cancel()

    def _receive(self, messages: Iterable[scheduler_pb2.Event]) -> bool:
        """Hand events to the session and the queue; whether the session ended."""
        session = self.session
        for message in messages:
            typed = session.receive(message, self._clock())
            if typed is None:  # Closed meanwhile (teardown, close): nobody wants it now.
                name = scheduler_pb2.Event.Type.Name(message.type)
                logger.debug("dropped a %s event: the client is closed", name)
                return True
            if isinstance(typed, ev.Subscribed):
                self._ever_subscribed = True
                self._notify()
                logger.info(
                    "subscribed to %s as framework %s%s",
                    self._address,
                    typed.framework_id.value,
                    "" if session.batched else " (without the batched API)",
                )
            self._queue.put_nowait(typed)
            if session.closed:
                return True
        return False

    def _lost(self, reason: str) -> Retry | None:
        if self.session.closed:  # Closed meanwhile (teardown): the stream's end is expected.
            return None
        notice, retry = self.session.stream_lost(self._clock(), reason)
        if notice is not None:
            logger.warning("disconnected from %s: %s", self._address, reason)
            self._queue.put_nowait(notice)
        self._notify()
        return retry

    # -- calls --

    async def send(self, call: scheduler_pb2.Call) -> None:
        """Send a call built with :mod:`framework_sdk.calls` (framework id added here).

        While the master offers the batched API, calls made in the same loop iteration go
        together in one ``Batch`` (in the order they were made); each caller still gets its own
        call's outcome.
        """
        prepared = self.session.prepare(call)
        stub, stream_id = self._stub, self.session.stream_id
        if stub is None or not self.session.batched:
            await self._calls.invoke(stub, stream_id, prepared)
        else:
            await self._calls.gather(stub, stream_id, prepared)

    async def send_all(self, calls_: Sequence[scheduler_pb2.Call]) -> list[CallError | None]:
        """Send calls built with :mod:`framework_sdk.calls`, applied in this order; each one's
        outcome (None: taken; else the CallError it got), in the same order.

        In one ``Batch`` when the master offers it (a refused call does not stop the others),
        else one unary call after the other. Raises NotSubscribedError, sending nothing, unless
        subscribed; ValueError for SUBSCRIBE or TEARDOWN (use :meth:`teardown`).
        """
        for call in calls_:
            if call.type in (scheduler_pb2.Call.SUBSCRIBE, scheduler_pb2.Call.TEARDOWN):
                raise ValueError(f"{calls.call_name(call)} cannot be sent with send_all")
        session = self.session
        if not session.subscribed or self._stub is None:
            raise NotSubscribedError(
                f"{len(calls_)} calls not sent: the scheduler is {session.phase.value},"
                " not subscribed"
            )
        prepared = [session.prepare(call) for call in calls_]
        return await self._calls.transmit(self._stub, session.stream_id, prepared, session.batched)

    async def accept(
        self,
        offer_ids: object,
        operations: Iterable[mesos_pb2.Offer.Operation],
        filters: mesos_pb2.Filters | None = None,
    ) -> None:
        """ACCEPT offers (of one agent) applying ``operations`` in order."""
        await self.send(calls.accept(offer_ids, operations, filters))

    async def launch(
        self,
        offer_ids: object,
        tasks: Iterable[mesos_pb2.TaskInfo],
        filters: mesos_pb2.Filters | None = None,
    ) -> None:
        """ACCEPT offers with one LAUNCH of ``tasks`` (a task's missing agent_id is filled in)."""
        await self.send(calls.launch(offer_ids, tasks, filters))

    async def decline(self, offer_ids: object, filters: mesos_pb2.Filters | None = None) -> None:
        """DECLINE offers whole, refusing them for ``filters.refuse_seconds`` (default 5 s)."""
        await self.send(calls.decline(offer_ids, filters))

    async def revive(self, roles: object = None) -> None:
        """REVIVE offers for these roles (all if none): clears filters, unsuppresses."""
        call = calls.revive(roles)
        self.session.note_revive(call.revive.roles)
        if self.session.subscribed:
            await self.send(call)

    async def suppress(self, roles: object = None) -> None:
        """SUPPRESS offers for these roles (all if none) until revived."""
        call = calls.suppress(roles)
        self.session.note_suppress(call.suppress.roles)
        if self.session.subscribed:
            await self.send(call)

    async def kill(
        self,
        task_id: object,
        agent_id: object = None,
        kill_policy: mesos_pb2.KillPolicy | None = None,
    ) -> None:
        """KILL a task (its agent is filled in when known)."""
        await self.send(calls.kill(task_id, agent_id, kill_policy))

    async def shutdown(self, executor_id: object, agent_id: object) -> None:
        """SHUTDOWN an executor and its tasks."""
        await self.send(calls.shutdown(executor_id, agent_id))

    async def acknowledge(self, status: mesos_pb2.TaskStatus) -> None:
        """ACKNOWLEDGE a status update (ValueError if it carries no uuid: nothing to ack)."""
        await self.send(calls.acknowledge(status))

    async def acknowledge_operation_status(self, status: mesos_pb2.OperationStatus) -> None:
        """ACKNOWLEDGE_OPERATION_STATUS of an operation update carrying a uuid."""
        await self.send(calls.acknowledge_operation_status(status))

    async def reconcile(self, tasks: Iterable[object] = ()) -> None:
        """RECONCILE tasks (TaskStatus/TaskID/str); none asks for every task (implicit)."""
        await self.send(calls.reconcile(tasks))

    async def message(self, agent_id: object, executor_id: object, data: bytes) -> None:
        """MESSAGE: send opaque ``data`` to an executor (best effort)."""
        await self.send(calls.message(agent_id, executor_id, data))

    async def request(self, requests: Iterable[mesos_pb2.Request]) -> None:
        """REQUEST resources (advisory)."""
        await self.send(calls.request(requests))

    async def teardown(self) -> None:
        """TEARDOWN the framework (all its tasks are killed); the client is closed afterwards,
        whether or not the master took the call."""
        prepared = self.session.prepare(calls.teardown())
        stub, stream_id = self._stub, self.session.stream_id
        # Calls made before go first: the master would refuse them after the teardown.
        await self._calls.flush()
        # Closed before sending, so the master ending the stream is not taken for a failure.
        self.session.close("framework torn down")
        try:
            await self._calls.invoke(stub, stream_id, prepared)
        finally:
            await self.close()

    async def update_framework(
        self,
        framework_info: mesos_pb2.FrameworkInfo,
        suppressed_roles: Iterable[str] | None = None,
        offer_constraints: scheduler_pb2.OfferConstraints | None = None,
    ) -> None:
        """UPDATE_FRAMEWORK: replace info, suppressed roles (None keeps them) and constraints."""
        roles = (
            sorted(self.session.suppressed_roles)
            if suppressed_roles is None
            else calls.roles_of(suppressed_roles, "suppressed_roles")
        )
        self.session.note_update_framework(framework_info, roles, offer_constraints)
        if self.session.subscribed:
            info = self.session.framework_info
            await self.send(calls.update_framework(info, roles, offer_constraints))
