"""MasterNode: the real master core (and its real allocator) as one simulated process.

It plays the master's runtime: every input becomes one call into :class:`master.core.Master`;
effects go out in order, every effect after a :class:`~master.core.PersistRegistry` held back
until the write is durable (as :mod:`master.runtime.outbox` does), writes to the registry's
in-memory twin (:class:`master.registry.MemoryRegistry`) take simulated time and merge while one
runs; timers fire when :meth:`Master.next_deadline` says; allocation runs soon after a change
(unless agents are still returning after a failover) and every allocation interval.

A crash loses the core, its held effects and its connections; a write in flight reaches the
registry or not, at random (a ZooKeeper write that was sent may commit). :meth:`start` after a
crash is a failover: a new core, a new master id, recovering from the registry.

An exception other than :class:`~master.core.CallError` out of the core, or a broken invariant
(``Master.validate()`` after every call), is a violation; the runtime's answer to it (INTERNAL
for a call, the agent's session ended) is played too.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING

from master.config import MasterConfig
from master.core import (
    CallError,
    CloseSubscription,
    DisconnectAgent,
    Effect,
    IdGenerator,
    Master,
    MasterInvariantError,
    PersistRegistry,
    SendEvent,
    SendToAgent,
    make_master_info,
)
from master.core.events import error_event
from master.registry import MemoryRegistry, Operation
from protos.v1 import agent_internal_pb2, scheduler_pb2

if TYPE_CHECKING:
    from emporion.testing.simulation.loop import Timer
    from emporion.testing.simulation.network import Link
    from emporion.testing.simulation.world import World

__all__ = ["MasterNode"]

EventSink = Callable[[scheduler_pb2.Event], None]
MessageSink = Callable[[agent_internal_pb2.MasterMessage], None]


class MasterNode:
    """MasterNode is the one master slot of a simulation (see the module docstring)."""

    def __init__(self, world: World, config: MasterConfig) -> None:
        self.world = world
        self.config = config
        self.registry = MemoryRegistry()
        self.core: Master | None = None
        self.term = 0
        self.crashes = 0
        self._rng = world.rng_for("master")
        self._streams = 0
        self._subscriptions: dict[str, tuple[Link, EventSink]] = {}
        self._connections: dict[str, tuple[Link, MessageSink]] = {}
        self._pending: deque[Effect] = deque()
        self._writing: list[Operation] | None = None
        self.followers: list[Callable[[str], None]] = []
        """Told the new leader's address (``m<term>``) when one is elected, as ZooKeeper
        watchers are (agents and schedulers that follow the leader)."""
        self._tick: Timer | None = None
        self._soon: Timer | None = None
        self._periodic: Timer | None = None

    @property
    def address(self) -> str:
        """The address of the leading (or last) master: ``m<term>``."""
        return f"m{self.term}"

    @property
    def up(self) -> bool:
        """Whether a master leads now."""
        return self.core is not None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Lead: a fresh core recovers from the registry (a failover after a crash)."""
        self.term += 1
        ids = IdGenerator(master_id=f"m{self.term}")
        info = make_master_info(ids.master_id, "master", 5050)
        core = Master(self.config, ids=ids, master_info=info)
        self.core = core
        self.world.note(
            f"master m{self.term} leads (registry version {self.registry.state.version})"
        )
        self._guard(lambda: core.recover(self.registry.load(), self.world.loop.now), "recover")
        self.world.net.master_up = True
        address = self.address
        for follower in self.followers:
            self.world.loop.after(self._rng.uniform(0.001, 1.0), partial(follower, address))
        self._periodic = self.world.loop.after(self.config.allocation_interval, self._periodic_due)

    def crash(self) -> None:
        """The master process dies (see the module docstring)."""
        if self.core is None:
            return
        self.world.note(f"master m{self.term} crashes")
        self.crashes += 1
        if self._writing is not None and self._rng.random() < 0.5:
            self.registry.apply(self._writing)  # The write was sent and committed.
        self.core = None
        self._writing = None
        self._pending.clear()
        self._subscriptions.clear()
        self._connections.clear()
        for timer in (self._tick, self._soon, self._periodic):
            if timer is not None:
                timer.cancel()
        self._tick = self._soon = self._periodic = None
        self.world.net.master_down()

    # -- calling the core -----------------------------------------------------------------------

    def _guard(self, run: Callable[[], list[Effect]], what: str) -> bool:
        """Run one core call and carry its effects out; False if it raised (a violation)."""
        core = self.core
        assert core is not None
        world = self.world
        world.counts["master_calls"] += 1
        try:
            effects = run()
        except CallError:
            raise
        except Exception as error:  # What the runtime would log and answer as INTERNAL.
            world.violation("master-exception", f"{what}: {type(error).__name__}: {error}")
            return False
        self._apply(effects)
        if world.validate_every_step:
            self.validate(what)
        return True

    def validate(self, what: str) -> None:
        """Check the core's invariants (a violation if broken)."""
        if self.core is None:
            return
        try:
            self.core.validate()
        except MasterInvariantError as error:
            self.world.violation("master-invariant", f"after {what}: {error}")

    def _apply(self, effects: Iterable[Effect]) -> None:
        core = self.core
        assert core is not None
        self._pending.extend(effects)
        if self._writing is None:
            self._drain()
        loop = self.world.loop
        if core.allocation_wanted and self._soon is None and not core.state.recovering_agents:
            self._soon = loop.after(self.config.allocation_delay, self._allocate_soon)
        deadline = core.next_deadline()
        if deadline is not None and (self._tick is None or deadline < self._tick.at):
            if self._tick is not None:
                self._tick.cancel()
            self._tick = loop.at(deadline, self._tick_due)

    def _drain(self) -> None:
        pending = self._pending
        while pending:
            effect = pending.popleft()
            if isinstance(effect, SendEvent):
                sub = self._subscriptions.get(effect.stream_id)
                if sub is not None:
                    link, sink = sub
                    event = effect.event
                    link.to_client(partial(sink, event))
            elif isinstance(effect, SendToAgent):
                conn = self._connections.get(effect.connection_id)
                if conn is not None:
                    link, msink = conn
                    message = effect.message
                    link.to_client(partial(msink, message))
            elif isinstance(effect, PersistRegistry):
                operations = list(effect.operations)
                rest: deque[Effect] = deque()
                for later in pending:
                    if isinstance(later, PersistRegistry):
                        operations.extend(later.operations)
                    else:
                        rest.append(later)
                self._pending = rest
                self._writing = operations
                self.world.loop.after(self._write_delay(), self._write_done)
                return
            elif isinstance(effect, CloseSubscription):
                sub = self._subscriptions.pop(effect.stream_id, None)
                if sub is not None:
                    link, sink = sub
                    if effect.error is not None:
                        event = error_event(effect.error)
                        link.to_client(partial(sink, event))
                    link.close_by_master()
            elif isinstance(effect, DisconnectAgent):
                conn = self._connections.pop(effect.connection_id, None)
                if conn is not None:
                    conn[0].close_by_master()

    def _write_delay(self) -> float:
        rng = self._rng
        return rng.uniform(0.05, 0.5) if rng.random() < 0.05 else rng.uniform(0.001, 0.02)

    def _write_done(self) -> None:
        operations = self._writing
        if operations is None or self.core is None:
            return  # The master crashed meanwhile.
        self._writing = None
        try:
            self.registry.apply(operations)
        except Exception as error:
            self.world.violation("registry", f"applying {operations}: {error!r}")
            return
        self.world.counts["registry_writes"] += 1
        self._drain()

    # -- timers ---------------------------------------------------------------------------------

    def _tick_due(self) -> None:
        self._tick = None
        core = self.core
        if core is not None:
            self._guard(lambda: core.tick(self.world.loop.now), "tick")

    def _allocate_soon(self) -> None:
        self._soon = None
        self._allocate()

    def _periodic_due(self) -> None:
        self._periodic = self.world.loop.after(self.config.allocation_interval, self._periodic_due)
        self._allocate()

    def _allocate(self) -> None:
        core = self.core
        if core is not None:
            self.world.counts["allocations"] += 1
            self._guard(lambda: core.allocate(self.world.loop.now), "allocate")

    # -- frameworks -----------------------------------------------------------------------------

    def subscribe(
        self,
        link: Link,
        call: scheduler_pb2.Call,
        on_opened: Callable[[str], None],
        on_refused: Callable[[str, str], None],
        sink: EventSink,
    ) -> None:
        """SUBSCRIBE arrived on ``link``: refused (``on_refused(code, message)`` at the client,
        the stream ends) or opened (``on_opened(stream_id)``, then events to ``sink``)."""
        core = self.core
        if core is None:
            return
        self._streams += 1
        stream_id = f"m{self.term}-stream{self._streams}"
        try:
            effects = core.subscribe(stream_id, call, self.world.loop.now)
        except CallError as error:
            code, message = error.code.value, error.message
            link.to_client(lambda: on_refused(code, message))
            link.close_by_master()
            return
        except Exception as error:
            self.world.violation("master-exception", f"subscribe: {type(error).__name__}: {error}")
            link.to_client(lambda: on_refused("INTERNAL", "the master failed to handle the call"))
            link.close_by_master()
            return
        self.world.counts["master_calls"] += 1
        self._subscriptions[stream_id] = (link, sink)
        link.on_master_closed = lambda: self._subscription_ended(stream_id)
        link.to_client(lambda: on_opened(stream_id))
        self._apply(effects)
        if self.world.validate_every_step:
            self.validate("subscribe")

    def _subscription_ended(self, stream_id: str) -> None:
        self._subscriptions.pop(stream_id, None)
        core = self.core
        if core is not None:
            self._guard(
                lambda: core.subscription_closed(stream_id, self.world.loop.now),
                "subscription_closed",
            )

    def call(self, stream_id: str | None, call: scheduler_pb2.Call) -> tuple[str, str]:
        """A unary scheduler call; its answer as (gRPC code name, message)."""
        core = self.core
        if core is None:
            return "UNAVAILABLE", "not the leading master"
        name = scheduler_pb2.Call.Type.Name(call.type)
        try:
            ok = self._guard(lambda: core.call(stream_id, call, self.world.loop.now), name)
        except CallError as error:
            return error.code.value, error.message
        return ("OK", "") if ok else ("INTERNAL", "the master failed to handle the call")

    # -- agents ---------------------------------------------------------------------------------

    def agent_connected(
        self, link: Link, messages: list[agent_internal_pb2.AgentMessage], sink: MessageSink
    ) -> str | None:
        """The first batch of a new agent session on ``link``; the connection id, or None if the
        core failed on it (the session is then aborted)."""
        core = self.core
        if core is None or not messages:
            return None
        self._streams += 1
        connection_id = f"m{self.term}-conn{self._streams}"
        link.connection_id = connection_id
        self._connections[connection_id] = (link, sink)
        link.on_master_closed = lambda: self._agent_ended(connection_id)
        now = self.world.loop.now
        first, rest = messages[0], messages[1:]
        if self._guard(
            lambda: core.agent_connected(connection_id, first, now), "agent_connected"
        ) and self._guard(
            lambda: core.agent_messages(connection_id, rest, now), "agent_messages(first batch)"
        ):
            return connection_id
        self._abort(connection_id)
        return None

    def agent_messages(
        self, connection_id: str, messages: list[agent_internal_pb2.AgentMessage]
    ) -> None:
        """A later batch on an agent session."""
        core = self.core
        if core is None or connection_id not in self._connections:
            return
        now = self.world.loop.now
        if not self._guard(
            lambda: core.agent_messages(connection_id, messages, now), "agent_messages"
        ):
            self._abort(connection_id)

    def _abort(self, connection_id: str) -> None:
        """The runtime ends a session whose input made the core fail (gRPC UNKNOWN: what was
        queued for the agent is not sent)."""
        conn = self._connections.pop(connection_id, None)
        if conn is not None:
            conn[0].cut(noisy=True)

    def _agent_ended(self, connection_id: str) -> None:
        self._connections.pop(connection_id, None)
        core = self.core
        if core is not None:
            self._guard(
                lambda: core.agent_disconnected(connection_id, self.world.loop.now),
                "agent_disconnected",
            )
