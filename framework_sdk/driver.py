"""SchedulerDriver: Mesos's classic threaded scheduler driver, over the asyncio client.

Two threads per driver (see :mod:`framework_sdk._threaded_driver`): the *driver thread* runs an
asyncio loop with one :class:`~framework_sdk.aio.SchedulerClient` (subscription, reconnection,
calls); the *callback thread* runs the scheduler's callbacks one at a time, in event order.
Driver methods may be called from any thread (callbacks included): they check their arguments
at once, raising TypeError/ValueError, queue the call for the driver thread, and return the
driver status. Queued calls are sent in the order they were made, so a KILL never overtakes the
launch it follows. While the master offers Emporion's batched API, every call queued while the
previous ``Batch`` was on its way goes out in the next one, which the master applies in order;
without it, calls go one at a time, and only acknowledgements, which commute with everything, go
out concurrently.

While the driver is disconnected calls are dropped, as Mesos's driver drops them; launches are
answered with TASK_LOST (TASK_DROPPED for PARTITION_AWARE frameworks) and reason
``REASON_MASTER_DISCONNECTED`` so a scheduler never waits for tasks that were never sent. A
call refused by a master that does not lead (it names the leader) counts as dropped too.
A call the master refuses for what it says (INVALID_ARGUMENT, NOT_FOUND) reaches
``Scheduler.error`` with the master's message; one refused because the subscription ended or was
superseded meanwhile counts as dropped (the stream itself reports the disconnection or ERROR).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from framework_sdk import calls
from framework_sdk import events as ev
from framework_sdk._threaded_driver import Outgoing, Stop, ThreadedDriver
from framework_sdk.aio import SchedulerClient
from framework_sdk.auth import TlsConfig, resolve_credential
from framework_sdk.config import ClientConfig
from framework_sdk.detector import MasterDetector, create_detector
from framework_sdk.errors import (
    CallFailedError,
    CallRefusedError,
    DriverStateError,
    NotSubscribedError,
)
from framework_sdk.scheduler import Scheduler
from framework_sdk.session import needs_acknowledgement
from framework_sdk.status import Status
from protos.v1 import mesos_pb2, scheduler_pb2

__all__ = ["SchedulerDriver", "Status"]

logger = logging.getLogger("framework_sdk.driver")


_Action = Callable[[SchedulerClient], Awaitable[None]]

_MAX_ACKS_IN_FLIGHT = 64


@dataclass(frozen=True, slots=True)
class _Outgoing(Outgoing[SchedulerClient]):
    """A scheduler call queued for the driver thread.

    ``ordered`` calls go out one at a time in the order they were made. Acknowledgements are not
    ordered: they commute with every other call, so they are sent concurrently (up to
    ``_MAX_ACKS_IN_FLIGHT``) instead of each waiting for the master's answer to the previous.
    ``call`` is set when the action only sends that call: such items may share a ``Batch``.
    """

    ordered: bool = True
    call: scheduler_pb2.Call | None = None


class SchedulerDriver(ThreadedDriver[SchedulerClient, ev.Event, _Outgoing]):
    """SchedulerDriver connects a :class:`~framework_sdk.scheduler.Scheduler` to the master.

    ``master`` is ``"host:port"`` or a :class:`~framework_sdk.detector.MasterDetector`. With
    ``implicit_acknowledgements`` (the default) each status update carrying a uuid is
    acknowledged after ``statusUpdate`` returns; without, the scheduler calls
    :meth:`acknowledgeStatusUpdate`. Updates without a uuid are never acknowledged.
    ``stop(failover=False)`` tears the framework down; ``stop(failover=True)`` only
    disconnects, leaving the framework to a new scheduler for ``failover_timeout``.
    """

    _thread_names = ("framework_sdk-driver", "framework_sdk-callbacks")
    _role = "scheduler"
    _log = logger
    # Refusals that concern the caller's subscription rather than the call: not subscribed (any
    # more), or a superseded stream. The stream reports that on its own (Disconnected, or ERROR),
    # so the call counts as dropped while disconnected.
    _dropped_codes = frozenset({"FAILED_PRECONDITION", "PERMISSION_DENIED"})

    def __init__(
        self,
        scheduler: Scheduler,
        framework_info: mesos_pb2.FrameworkInfo,
        master: str | MasterDetector,
        implicit_acknowledgements: bool = True,
        credential: mesos_pb2.Credential | None = None,
        *,
        config: ClientConfig | None = None,
        tls: TlsConfig | None = None,
    ) -> None:
        if scheduler is None:
            raise TypeError("scheduler must be a Scheduler, not None")
        if not isinstance(framework_info, mesos_pb2.FrameworkInfo):
            raise TypeError(f"framework_info must be a FrameworkInfo, not {framework_info!r}")
        calls.subscribe(framework_info)  # Validates the info now, not on the driver thread.
        super().__init__()
        self.scheduler = scheduler
        self._framework_info = mesos_pb2.FrameworkInfo()
        self._framework_info.CopyFrom(framework_info)
        self._detector = create_detector(master)
        self._implicit_acks = bool(implicit_acknowledgements)
        self._config = config or ClientConfig()
        self._credential = resolve_credential(credential)  # Checked now, not on the thread.
        self._tls = tls
        self._partition_aware = any(
            c.type == mesos_pb2.FrameworkInfo.Capability.PARTITION_AWARE
            for c in framework_info.capabilities
        )
        self._registered = False

    # -- state --

    @property
    def framework_id(self) -> mesos_pb2.FrameworkID | None:
        """The framework id once registered (None before)."""
        client = self._client
        framework_id = client.framework_id if client is not None else None
        return None if framework_id is None else mesos_pb2.FrameworkID(value=framework_id.value)

    # -- lifecycle --

    def stop(self, failover: bool = False) -> Status:
        """Stop the driver. Without ``failover`` the framework is torn down (all its tasks
        killed); with it the driver only disconnects, so another scheduler can take over.

        Calls made before are sent first. Returns DRIVER_STOPPED (DRIVER_ABORTED if the driver
        had aborted; then nothing more is sent).
        """
        return self._stop(teardown=not failover)

    # -- calls --

    def launchTasks(
        self,
        offerIds: object,
        tasks: Iterable[mesos_pb2.TaskInfo],
        filters: mesos_pb2.Filters | None = None,
    ) -> Status:
        """Launch ``tasks`` on the offers (one agent); no tasks declines the offers.

        ``offerIds`` is a list of OfferIDs or a single one, as in Mesos.
        """
        call = calls.launch(offerIds, tasks, filters)
        return self._send("launchTasks", call, not_sent=self._tasks_not_sent(call))

    def acceptOffers(
        self,
        offerIds: object,
        operations: Iterable[mesos_pb2.Offer.Operation],
        filters: mesos_pb2.Filters | None = None,
    ) -> Status:
        """Accept offers applying ``operations`` in order (LAUNCH, RESERVE, ...)."""
        call = calls.accept(offerIds, operations, filters)
        return self._send("acceptOffers", call, not_sent=self._tasks_not_sent(call))

    def declineOffer(self, offerId: object, filters: mesos_pb2.Filters | None = None) -> Status:
        """Decline an offer (or a list of offers) whole."""
        return self._send("declineOffer", calls.decline(offerId, filters))

    def reviveOffers(self, roles: Iterable[str] | None = None) -> Status:
        """Revive offers for these roles (all if None); remembered across reconnections."""
        call = calls.revive(roles)
        return self._submit("reviveOffers", lambda c: c.revive(list(call.revive.roles)))

    def suppressOffers(self, roles: Iterable[str] | None = None) -> Status:
        """Suppress offers for these roles (all if None); remembered across reconnections."""
        call = calls.suppress(roles)
        return self._submit("suppressOffers", lambda c: c.suppress(list(call.suppress.roles)))

    def killTask(self, taskId: mesos_pb2.TaskID) -> Status:
        """Kill a task (the driver adds the agent it last heard of)."""
        return self._send("killTask", calls.kill(taskId))

    def acknowledgeStatusUpdate(self, status: mesos_pb2.TaskStatus) -> Status:
        """Acknowledge a status update (only with ``implicit_acknowledgements=False``).

        Updates without a uuid need no acknowledgement and are skipped.
        """
        if self._implicit_acks:
            raise DriverStateError(
                "acknowledgeStatusUpdate() called on a driver with implicit acknowledgements;"
                " create it with implicit_acknowledgements=False"
            )
        if not isinstance(status, mesos_pb2.TaskStatus):
            raise TypeError(f"status must be a TaskStatus, not {type(status).__name__}")
        if not needs_acknowledgement(status):
            with self._lock:
                return self._check_started("acknowledgeStatusUpdate")
        return self._send("acknowledgeStatusUpdate", calls.acknowledge(status), ordered=False)

    def reconcileTasks(self, statuses: Iterable[mesos_pb2.TaskStatus]) -> Status:
        """Ask for the latest state of these tasks; an empty list asks for all of them."""
        return self._send("reconcileTasks", calls.reconcile(statuses))

    def requestResources(self, requests: Iterable[mesos_pb2.Request]) -> Status:
        """Request resources (advisory)."""
        return self._send("requestResources", calls.request(requests))

    def sendFrameworkMessage(
        self, executorId: mesos_pb2.ExecutorID, agentId: mesos_pb2.AgentID, data: bytes | str
    ) -> Status:
        """Send opaque data to an executor (best effort); a str is sent UTF-8 encoded."""
        payload = data.encode() if isinstance(data, str) else data
        return self._send("sendFrameworkMessage", calls.message(agentId, executorId, payload))

    def updateFramework(
        self,
        frameworkInfo: mesos_pb2.FrameworkInfo,
        suppressedRoles: Iterable[str] | None = None,
        offerConstraints: scheduler_pb2.OfferConstraints | None = None,
    ) -> Status:
        """Replace the framework's info (same id), suppressed roles (None keeps them) and offer
        constraints; remembered across reconnections."""
        calls.update_framework(frameworkInfo, suppressedRoles or (), offerConstraints)
        known = self.framework_id
        if frameworkInfo.HasField("id") and known is not None and frameworkInfo.id != known:
            raise ValueError(
                f"frameworkInfo.id {frameworkInfo.id.value!r} is not this framework's id"
                f" {known.value!r}"
            )
        info = mesos_pb2.FrameworkInfo()
        info.CopyFrom(frameworkInfo)
        roles = None if suppressedRoles is None else list(suppressedRoles)
        return self._submit(
            "updateFramework", lambda c: c.update_framework(info, roles, offerConstraints)
        )

    # -- queueing to the driver thread --

    def _send(
        self,
        name: str,
        call: scheduler_pb2.Call,
        not_sent: Callable[[], None] | None = None,
        *,
        ordered: bool = True,
    ) -> Status:
        return self._submit(name, lambda c: c.send(call), not_sent, ordered=ordered, call=call)

    def _submit(
        self,
        name: str,
        action: _Action,
        not_sent: Callable[[], None] | None = None,
        *,
        ordered: bool = True,
        call: scheduler_pb2.Call | None = None,
    ) -> Status:
        return self._queue_call(_Outgoing(name, action, not_sent, ordered, call))

    def _tasks_not_sent(self, call: scheduler_pb2.Call) -> Callable[[], None]:
        state = mesos_pb2.TASK_DROPPED if self._partition_aware else mesos_pb2.TASK_LOST
        task_ids = [
            task.task_id
            for op in call.accept.operations
            if op.type == mesos_pb2.Offer.Operation.LAUNCH
            for task in op.launch.task_infos
        ]

        def report() -> None:
            for task_id in task_ids:
                status = mesos_pb2.TaskStatus(
                    state=state,
                    source=mesos_pb2.TaskStatus.SOURCE_MASTER,
                    reason=mesos_pb2.TaskStatus.REASON_MASTER_DISCONNECTED,
                    message="Master disconnected",
                    timestamp=time.time(),
                )
                status.task_id.CopyFrom(task_id)
                self._callback(self._status_update, status)

        return report

    # -- the driver thread --

    def _new_client(self) -> SchedulerClient:
        return SchedulerClient(
            self._detector,
            self._framework_info,
            config=self._config,
            credential=self._credential,
            tls=self._tls,
        )

    async def _send_loop(
        self, client: SchedulerClient, outbox: asyncio.Queue[_Outgoing | Stop]
    ) -> None:
        acks: set[asyncio.Task[None]] = set()
        room = asyncio.Semaphore(_MAX_ACKS_IN_FLIGHT)
        while True:
            # Everything queued while the last call was on its way: plain calls in a row share
            # one Batch (applied in order) when the master offers it.
            items = [await outbox.get()]
            while not outbox.empty():
                items.append(outbox.get_nowait())
            batch: list[_Outgoing] = []
            for item in items:
                if isinstance(item, _Outgoing) and item.call is not None and client.batched:
                    batch.append(item)
                    continue
                if batch:
                    await self._send_batch(client, batch)
                    batch = []
                if isinstance(item, Stop):
                    if acks:
                        await asyncio.wait(acks)
                    if item.teardown and client.subscribed:
                        try:
                            await client.teardown()
                        except (CallRefusedError, CallFailedError, NotSubscribedError) as error:
                            logger.warning("TEARDOWN failed: %s", error)
                    await client.close()
                    return
                if item.ordered:
                    await self._send_one(client, item)
                    continue
                await room.acquire()
                task = asyncio.create_task(self._send_one(client, item))
                acks.add(task)
                task.add_done_callback(acks.discard)
                task.add_done_callback(lambda _: room.release())
            if batch:
                await self._send_batch(client, batch)

    async def _send_batch(self, client: SchedulerClient, items: list[_Outgoing]) -> None:
        calls_ = [item.call for item in items if item.call is not None]
        try:
            outcomes: list[Exception | None] = list(await client.send_all(calls_))
        except Exception as error:  # Nothing was sent (not subscribed), or a bug.
            outcomes = [error] * len(items)
        for item, outcome in zip(items, outcomes, strict=True):
            if outcome is not None:
                self._outcome(item, outcome)

    def _dispatch(self, event: ev.Event) -> None:
        """Turn one event into the scheduler callback it calls (on the callback thread)."""
        scheduler, callback = self.scheduler, self._callback
        if isinstance(event, ev.Subscribed):
            master_info = event.master_info or mesos_pb2.MasterInfo()
            if self._registered:
                callback(scheduler.reregistered, self, master_info)
            else:
                self._registered = True
                callback(scheduler.registered, self, event.framework_id, master_info)
        elif isinstance(event, ev.Offers):
            callback(scheduler.resourceOffers, self, list(event.offers))
        elif isinstance(event, ev.Rescind):
            callback(scheduler.offerRescinded, self, event.offer_id)
        elif isinstance(event, ev.Update):
            callback(self._status_update, event.status)
        elif isinstance(event, ev.Message):
            callback(
                scheduler.frameworkMessage, self, event.executor_id, event.agent_id, event.data
            )
        elif isinstance(event, ev.Failure):
            agent_id = event.agent_id or mesos_pb2.AgentID()
            if event.executor_id is None:
                callback(scheduler.slaveLost, self, agent_id)
            else:
                status = event.status or 0
                callback(scheduler.executorLost, self, event.executor_id, agent_id, status)
        elif isinstance(event, ev.Disconnected):
            callback(scheduler.disconnected, self)
        elif isinstance(event, ev.Error):
            self._abort_with_error(event.message)
        elif isinstance(event, ev.UpdateOperationStatus):
            if self._implicit_acks and event.status.uuid.value:
                operation = event.status
                self._submit(
                    "acknowledge",
                    lambda c: c.acknowledge_operation_status(operation),
                    ordered=False,
                )
        else:
            logger.debug("no callback for %s", type(event).__name__)

    # -- the callback thread --

    def _status_update(self, status: mesos_pb2.TaskStatus) -> None:
        self.scheduler.statusUpdate(self, status)
        # Acknowledged only after the callback returned, so an update is never lost by a
        # scheduler that crashes while handling it; the agent resends unacknowledged ones.
        if self._implicit_acks and needs_acknowledgement(status):
            self._send("acknowledge", calls.acknowledge(status), ordered=False)

    def _error(self, message: str) -> None:
        self.scheduler.error(self, message)
