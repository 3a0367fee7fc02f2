"""Test clients of a real master: a scheduler over the generated stubs, and a fake agent.

Both keep what they received in lists and offer ``wait_for(predicate)``, which polls until the
predicate holds (the time limit only guards against hanging; nothing asserts on timing).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from grpc import aio

from master.config import MasterConfig
from master.runtime import STREAM_ID_KEY, MasterServer
from protos.resources import Resources
from protos.v1 import (
    agent_internal_pb2,
    agent_internal_pb2_grpc,
    mesos_pb2,
    scheduler_pb2,
    scheduler_pb2_grpc,
)

Call = scheduler_pb2.Call
Event = scheduler_pb2.Event
WAIT_LIMIT = 30.0


async def wait_for(predicate: Callable[[], bool], what: str = "condition") -> None:
    """Poll until ``predicate()`` holds; fail after WAIT_LIMIT seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_LIMIT
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def quick_config(work_dir: Path | None = None, **overrides: object) -> MasterConfig:
    """A master on a free port with quick timers."""
    values: dict[str, object] = {
        "port": 0,
        "registry": "file" if work_dir is not None else "memory",
        "work_dir": work_dir,
        "heartbeat_interval": 0.5,
        "allocation_interval": 0.2,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return MasterConfig(**values)  # type: ignore[arg-type]


@asynccontextmanager
async def running_master(config: MasterConfig) -> AsyncIterator[MasterServer]:
    """A MasterServer started in this process, stopped at the end."""
    server = MasterServer(config)
    await server.start()
    try:
        yield server
    finally:
        await server.stop(grace=0.5)


class Scheduler:
    """Scheduler subscribes over the real Scheduler stub and records the events it receives.

    ``batched`` subscribes with ``SubscribeBatched``; ``batches`` then holds the size of each
    ``Events`` message received.
    """

    def __init__(self, address: str, *, batched: bool = False) -> None:
        self.channel = aio.insecure_channel(address)
        self.stub = scheduler_pb2_grpc.SchedulerStub(self.channel)
        self.batched = batched
        self.events: list[scheduler_pb2.Event] = []
        self.batches: list[int] = []
        self.stream_id = ""
        self.framework_id = ""
        self.ended = asyncio.Event()
        self._call: aio.UnaryStreamCall[scheduler_pb2.Call, object] | None = None
        self._reader: asyncio.Task[None] | None = None

    async def subscribe(
        self, info: mesos_pb2.FrameworkInfo | None = None, framework_id: str = ""
    ) -> str:
        """SUBSCRIBE; returns the framework id once SUBSCRIBED arrives."""
        if info is None:
            info = mesos_pb2.FrameworkInfo(user="tester", name="it", failover_timeout=60)
        call = Call(type=Call.SUBSCRIBE)
        call.subscribe.framework_info.CopyFrom(info)
        if framework_id:
            call.framework_id.value = framework_id
            call.subscribe.framework_info.id.value = framework_id
        method = self.stub.SubscribeBatched if self.batched else self.stub.Subscribe
        self._call = method(call)  # type: ignore[assignment]
        assert self._call is not None
        metadata = await self._call.initial_metadata()
        self.stream_id = str(dict(metadata)[STREAM_ID_KEY])
        self._reader = asyncio.get_running_loop().create_task(self._read())
        await wait_for(lambda: bool(self.of(Event.SUBSCRIBED)), "SUBSCRIBED")
        self.framework_id = self.of(Event.SUBSCRIBED)[0].subscribed.framework_id.value
        return self.framework_id

    async def _read(self) -> None:
        assert self._call is not None
        try:
            async for message in self._call:
                if isinstance(message, scheduler_pb2.Events):
                    self.batches.append(len(message.events))
                    self.events.extend(message.events)
                else:
                    assert isinstance(message, scheduler_pb2.Event)
                    self.events.append(message)
        except aio.AioRpcError:
            pass
        finally:
            self.ended.set()

    def of(self, kind: int) -> list[scheduler_pb2.Event]:
        """Events of one type received so far."""
        return [e for e in self.events if e.type == kind]

    def offers(self) -> list[mesos_pb2.Offer]:
        """Every offer received so far."""
        return [o for e in self.of(Event.OFFERS) for o in e.offers.offers]

    def updates(self, task_id: str | None = None) -> list[mesos_pb2.TaskStatus]:
        """Task statuses received so far (of one task)."""
        return [
            e.update.status
            for e in self.of(Event.UPDATE)
            if task_id is None or e.update.status.task_id.value == task_id
        ]

    async def call(
        self, call: scheduler_pb2.Call, method: str, stream_id: str | None = None
    ) -> scheduler_pb2.Accepted:
        """A unary call on ``method`` with this subscription's stream id (or ``stream_id``)."""
        if not call.HasField("framework_id"):
            call.framework_id.value = self.framework_id
        sid = self.stream_id if stream_id is None else stream_id
        metadata = ((STREAM_ID_KEY, sid),) if sid else ()
        result: scheduler_pb2.Accepted = await getattr(self.stub, method)(call, metadata=metadata)
        return result

    async def batch(
        self, calls: list[scheduler_pb2.Call], stream_id: str | None = None
    ) -> list[tuple[int, str]]:
        """``Batch`` with this subscription's stream id (or ``stream_id``); calls without a
        framework id get this one. Returns (code, message) per call."""
        for call in calls:
            if not call.HasField("framework_id"):
                call.framework_id.value = self.framework_id
        sid = self.stream_id if stream_id is None else stream_id
        metadata = ((STREAM_ID_KEY, sid),) if sid else ()
        reply = await self.stub.Batch(scheduler_pb2.Calls(calls=calls), metadata=metadata)
        return [(r.code, r.message) for r in reply.results]

    async def close(self) -> None:
        """Cancel the subscription and close the channel."""
        if self._call is not None:
            self._call.cancel()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self.channel.close(None)


class FakeAgent:
    """FakeAgent is an agent session over AgentGateway (plain or batched) written for tests."""

    def __init__(self, address: str, *, batched: bool = False) -> None:
        self.channel = aio.insecure_channel(address)
        self.stub = agent_internal_pb2_grpc.AgentGatewayStub(self.channel)
        self.batched = batched
        self.received: list[agent_internal_pb2.MasterMessage] = []
        self.agent_id = ""
        self._outgoing: asyncio.Queue[list[agent_internal_pb2.AgentMessage] | None] = (
            asyncio.Queue()
        )
        self._reader: asyncio.Task[None] | None = None
        self._call: object = None
        self.answer_pings = True

    async def _messages(self) -> AsyncIterator[agent_internal_pb2.AgentMessage]:
        while (messages := await self._outgoing.get()) is not None:
            for message in messages:
                yield message

    async def _batches(self) -> AsyncIterator[agent_internal_pb2.AgentMessages]:
        while (messages := await self._outgoing.get()) is not None:
            yield agent_internal_pb2.AgentMessages(messages=messages)

    async def register(self, resources: str, hostname: str = "fake-host") -> str:
        """Connect, register, and return the agent id."""
        message = agent_internal_pb2.AgentMessage()
        message.register_agent.agent_info.hostname = hostname
        message.register_agent.agent_info.resources.extend(Resources.parse(resources).to_protos())
        await self._outgoing.put([message])
        if self.batched:
            batched = self.stub.ConnectBatched(self._batches())
            self._call = batched
            self._reader = asyncio.get_running_loop().create_task(self._read_batches(batched))
        else:
            plain = self.stub.Connect(self._messages())
            self._call = plain
            self._reader = asyncio.get_running_loop().create_task(self._read(plain))
        await wait_for(lambda: bool(self.of("agent_registered")), "AgentRegistered")
        self.agent_id = self.of("agent_registered")[0].agent_registered.agent_id.value
        return self.agent_id

    async def _read(
        self,
        call: aio.StreamStreamCall[
            agent_internal_pb2.AgentMessage, agent_internal_pb2.MasterMessage
        ],
    ) -> None:
        with contextlib.suppress(aio.AioRpcError):
            async for message in call:
                await self._receive(message)

    async def _read_batches(
        self,
        call: aio.StreamStreamCall[
            agent_internal_pb2.AgentMessages, agent_internal_pb2.MasterMessages
        ],
    ) -> None:
        with contextlib.suppress(aio.AioRpcError):
            async for batch in call:
                for message in batch.messages:
                    await self._receive(message)

    async def _receive(self, message: agent_internal_pb2.MasterMessage) -> None:
        self.received.append(message)
        if message.HasField("ping") and self.answer_pings:
            pong = agent_internal_pb2.AgentMessage()
            pong.pong.seq = message.ping.seq
            await self.send(pong)

    def of(self, kind: str) -> list[agent_internal_pb2.MasterMessage]:
        """Messages of one payload kind received so far."""
        return [m for m in self.received if m.WhichOneof("payload") == kind]

    async def send(self, *messages: agent_internal_pb2.AgentMessage) -> None:
        """Send messages to the master (in one stream message if ``batched``)."""
        await self._outgoing.put(list(messages))

    async def status_update(self, framework_id: str, task_id: str, state: int, uuid: bytes) -> None:
        """Report a task state (reliable update, with a uuid)."""
        await self.send(self.status_update_message(framework_id, task_id, state, uuid))

    def status_update_message(
        self, framework_id: str, task_id: str, state: int, uuid: bytes
    ) -> agent_internal_pb2.AgentMessage:
        """The StatusUpdate message reporting a task state (with a uuid)."""
        message = agent_internal_pb2.AgentMessage()
        update = message.status_update
        update.framework_id.value = framework_id
        update.status.task_id.value = task_id
        update.status.state = state  # type: ignore[assignment]
        update.status.uuid = uuid
        update.status.agent_id.value = self.agent_id
        update.status.source = mesos_pb2.TaskStatus.SOURCE_EXECUTOR
        return message

    async def close(self) -> None:
        """End the session and close the channel."""
        await self._outgoing.put(None)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self.channel.close(None)
