"""Just enough of a framework, over raw ``Scheduler`` stubs, to drive a real master in tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import grpc
import grpc.aio

from protos.resources import Resources
from protos.v1 import mesos_pb2, scheduler_pb2
from protos.v1 import scheduler_pb2_grpc as sched_grpc

Call = scheduler_pb2.Call
Event = scheduler_pb2.Event


class RawFramework:
    """Subscribes, records every event, and sends calls on request (no automatic behaviour)."""

    def __init__(self, address: str, name: str = "test", *, failover_timeout: float = 0.0) -> None:
        self.channel = grpc.aio.insecure_channel(address)
        self.stub = sched_grpc.SchedulerStub(self.channel)
        self.info = mesos_pb2.FrameworkInfo(
            user="test", name=name, failover_timeout=failover_timeout
        )
        self.events: list[Event] = []
        self.metadata: tuple[tuple[str, str], ...] = ()
        self._reader: asyncio.Task[None] | None = None

    @property
    def framework_id(self) -> str:
        """The id from SUBSCRIBED ("" before)."""
        return self.info.id.value

    async def subscribe(self) -> None:
        """Subscribe (resubscribe once it has an id) and wait for SUBSCRIBED."""
        call = self.stub.Subscribe(
            Call(type=Call.SUBSCRIBE, subscribe=Call.Subscribe(framework_info=self.info))
        )
        metadata = dict(await call.initial_metadata())
        self.metadata = (("mesos-stream-id", str(metadata.get("mesos-stream-id", ""))),)
        self._reader = asyncio.create_task(self._read(call))
        await self.wait_for(lambda: any(e.type == Event.SUBSCRIBED for e in self.events))
        subscribed = [e for e in self.events if e.type == Event.SUBSCRIBED][-1]
        self.info.id.CopyFrom(subscribed.subscribed.framework_id)

    async def _read(self, call: grpc.aio.UnaryStreamCall[Call, Event]) -> None:
        async for event in call:
            self.events.append(event)

    async def close(self) -> None:
        """Drop the subscription and the channel."""
        if self._reader is not None:
            self._reader.cancel()
        await self.channel.close(None)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
        """Wait until ``predicate()`` holds (the timeout only guards against hangs)."""
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, "condition never reached"
            await asyncio.sleep(0.01)

    def offers(self) -> list[mesos_pb2.Offer]:
        """Every offer received so far."""
        return [o for e in self.events if e.type == Event.OFFERS for o in e.offers.offers]

    def updates(self, task_id: str | None = None) -> list[mesos_pb2.TaskStatus]:
        """Status updates received, optionally for one task."""
        return [
            e.update.status
            for e in self.events
            if e.type == Event.UPDATE and task_id in (None, e.update.status.task_id.value)
        ]

    async def call(self, method: str, call: Call) -> None:
        """Send a unary call (framework id and stream id filled in)."""
        call.framework_id.CopyFrom(self.info.id)
        await getattr(self.stub, method)(call, metadata=self.metadata)

    async def launch(self, offer: mesos_pb2.Offer, task_ids: list[str], resources: str) -> None:
        """Accept ``offer`` with command tasks of ``resources`` each."""
        role = offer.allocation_info.role if offer.HasField("allocation_info") else None
        launch = mesos_pb2.Offer.Operation.Launch()
        for task_id in task_ids:
            task = launch.task_infos.add(name=task_id)
            task.task_id.value = task_id
            task.agent_id.CopyFrom(offer.agent_id)
            task.resources.extend(Resources.parse(resources).to_protos(allocation_role=role))
            task.command.value = "true"
        operation = mesos_pb2.Offer.Operation(type=mesos_pb2.Offer.Operation.LAUNCH, launch=launch)
        accept = Call.Accept(offer_ids=[offer.id], operations=[operation])
        await self.call("Accept", Call(type=Call.ACCEPT, accept=accept))

    async def acknowledge(self, status: mesos_pb2.TaskStatus) -> None:
        """Acknowledge one update (it must carry a uuid)."""
        call = Call(type=Call.ACKNOWLEDGE)
        call.acknowledge.agent_id.CopyFrom(status.agent_id)
        call.acknowledge.task_id.CopyFrom(status.task_id)
        call.acknowledge.uuid = status.uuid
        await self.call("Acknowledge", call)

    async def reconcile(self) -> None:
        """Implicit reconciliation (every task the master knows of this framework)."""
        await self.call("Reconcile", Call(type=Call.RECONCILE, reconcile=Call.Reconcile()))
