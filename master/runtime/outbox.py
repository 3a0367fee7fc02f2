"""Outbox: carries the state machine's effects out, holding them back behind registry writes.

Effects are sent in the order the state machine produced them. A :class:`PersistRegistry`
is a barrier: it and every effect after it wait until the registry write holding its operations
is durable. While one write runs, later operations gather and go in the next write, so a burst of
registrations costs a few writes, not one each. Sends never block: each subscription and agent
connection has its own queue, drained by the task serving that stream.

Why everything after a write waits, even effects that look unrelated to it (a reply to an agent
whose reregistration wrote nothing): the state machine's memory runs ahead of the registry, and
any later effect may show what a pending write holds. Such an agent can be told to shut down a
framework whose removal is not yet durable, or be answered by a master whose fencing write is
about to fail (it was deposed); a scheduler can be offered an agent whose admission is pending.
Telling which effects depend on which operations would take a dependency for every effect, and
each stream's messages must stay in order anyway. So the master avoids the writes instead: it
writes nothing that leaves the registry as it is (an agent reregistering unchanged, a framework
record already held, the grace of frameworks recovered at takeover), and while writes do run,
what queues behind one goes out together as soon as it is durable.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable
from typing import Generic, Protocol, TypeVar

from master.core import (
    CloseSubscription,
    DisconnectAgent,
    Effect,
    PersistRegistry,
    SendEvent,
    SendToAgent,
)
from master.core.events import error_event
from master.registry import Operation, Registry
from protos.v1 import agent_internal_pb2, scheduler_pb2

__all__ = ["AgentChannel", "AgentSink", "EventChannel", "Outbox"]

log = logging.getLogger("master.runtime")

T = TypeVar("T")


class _Channel(Generic[T]):
    """A queue of messages for one stream, drained in batches by the task serving it."""

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._ready = asyncio.Event()
        self.closed = False

    def put(self, item: T) -> None:
        """Queue ``item`` (dropped once the channel is closed)."""
        if not self.closed:
            self._items.append(item)
            self._ready.set()

    def put_all(self, items: Iterable[T]) -> None:
        """Queue ``items``, in order (dropped once the channel is closed)."""
        if not self.closed:
            self._items.extend(items)
            self._ready.set()

    def close(self) -> None:
        """End the stream after what is queued."""
        self.closed = True
        self._ready.set()

    async def take(self) -> list[T] | None:
        """Everything queued (waiting until something is), or None once closed and empty."""
        while not self._items:
            if self.closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        items = list(self._items)
        self._items.clear()
        return items


class EventChannel(_Channel[scheduler_pb2.Event]):
    """EventChannel queues the events of one subscription stream."""


class AgentChannel(_Channel[agent_internal_pb2.MasterMessage]):
    """AgentChannel queues the messages for one agent connection."""


class AgentSink(Protocol):
    """Where one agent connection's messages go: an :class:`AgentChannel` drained by the
    connection's own stream, or a session relayed through a gateway process
    (:mod:`master.runtime.relay`)."""

    def put(self, item: agent_internal_pb2.MasterMessage) -> None:
        """Send ``item`` after what was sent before (dropped once closed)."""

    def close(self) -> None:
        """End the connection after what is queued."""


class Outbox:
    """Outbox sends effects to channels, in order, behind durable registry writes.

    ``on_fatal`` is called if a registry write fails: the master must not go on (its promises
    could be lost), as Mesos aborts when its registry fails.
    """

    def __init__(self, registry: Registry, on_fatal: Callable[[BaseException], None]) -> None:
        self.registry = registry
        self.on_fatal = on_fatal
        self.subscriptions: dict[str, EventChannel] = {}
        self.connections: dict[str, AgentSink] = {}
        self._pending: deque[Effect] = deque()
        self._writing: asyncio.Task[None] | None = None
        self.writes = 0

    def apply(self, effects: Iterable[Effect]) -> None:
        """Carry ``effects`` out (some perhaps later, behind a registry write)."""
        self._pending.extend(effects)
        if self._writing is None:
            self._drain()

    def _drain(self) -> None:
        pending = self._pending
        while pending:
            effect = pending.popleft()
            kind = type(effect)
            if kind is SendEvent:
                assert isinstance(effect, SendEvent)
                channel = self.subscriptions.get(effect.stream_id)
                if channel is not None:
                    channel.put(effect.event)
            elif kind is SendToAgent:
                assert isinstance(effect, SendToAgent)
                connection = self.connections.get(effect.connection_id)
                if connection is not None:
                    connection.put(effect.message)
            elif kind is PersistRegistry:
                assert isinstance(effect, PersistRegistry)
                self._start_write(effect)
                return
            elif kind is CloseSubscription:
                assert isinstance(effect, CloseSubscription)
                sub = self.subscriptions.pop(effect.stream_id, None)
                if sub is not None:
                    if effect.error is not None:
                        sub.put(error_event(effect.error))
                    sub.close()
            elif kind is DisconnectAgent:
                assert isinstance(effect, DisconnectAgent)
                connection = self.connections.pop(effect.connection_id, None)
                if connection is not None:
                    connection.close()

    def _start_write(self, first: PersistRegistry) -> None:
        """Write ``first``'s operations and those of every later PersistRegistry queued."""
        operations: list[Operation] = list(first.operations)
        rest: deque[Effect] = deque()
        for effect in self._pending:
            if isinstance(effect, PersistRegistry):
                operations.extend(effect.operations)
            else:
                rest.append(effect)
        self._pending = rest
        self._writing = asyncio.get_running_loop().create_task(self._write(operations))

    async def _write(self, operations: list[Operation]) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.registry.apply, operations)
        except Exception as error:  # The master cannot keep its promises: stop it.
            log.critical("registry write failed: %s", error)
            self._writing = None
            self.on_fatal(error)
            return
        self.writes += 1
        self._writing = None
        self._drain()

    async def flush(self) -> None:
        """Wait until every registry write started so far is done."""
        while self._writing is not None:
            await asyncio.shield(self._writing)

    def close_all(self) -> None:
        """End every stream (at shutdown)."""
        for sub in self.subscriptions.values():
            sub.close()
        for connection in self.connections.values():
            connection.close()
        self.subscriptions.clear()
        self.connections.clear()
