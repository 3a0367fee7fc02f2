"""MasterRuntime: the one owner of the state machine on the event loop.

Every input (a scheduler call, an agent message, a closed stream, a timer) becomes one
synchronous call into :class:`~master.core.Master`, whose effects go straight to the
:class:`~master.runtime.outbox.Outbox`; nothing awaits in between, so inputs never interleave.

Allocation policy:

* **Soon after a change.** When an input leaves ``allocation_wanted`` set (resources freed or
  added, a framework added, revived or updated), a cycle runs ``--allocation-delay`` later
  (5 ms by default). Inputs arriving meanwhile join the same cycle, so a burst of status updates
  costs one cycle, and a freed resource is offered again within milliseconds instead of waiting
  for the next interval.
* **Periodically.** A cycle also runs every ``--allocation-interval`` (1 s by default), which
  offers what expired refuse filters give back.
* **Periodically only, while agents come back after a failover** (agents the registry names
  have not all reregistered yet): a cycle soon after every few returning agents, each followed
  by the frameworks' declines and more cycles, costs a new leader more CPU than the
  reregistrations themselves (about 0.3 s of a thousand agents' return in ``bench.failover``
  with declining frameworks). Cycles soon after a change resume once the last agent expected is
  back, or has been marked unreachable.

Timers (pings, heartbeats, failover and offer timeouts) are checked every 100 ms; the cluster's
utilisation is sampled every :data:`~master.core.utilization.SAMPLE_SECONDS` into the history.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from master.core import CallError, Effect, Master
from master.core.errors import invalid
from master.core.faults import CoreFaultError
from master.core.utilization import SAMPLE_SECONDS
from master.runtime.outbox import AgentSink, EventChannel, Outbox
from protos.v1 import agent_internal_pb2, scheduler_pb2

__all__ = ["TICK_SECONDS", "MasterRuntime"]

log = logging.getLogger("master.runtime")

TICK_SECONDS = 0.1
"""How often timers are checked."""


class MasterRuntime:
    """MasterRuntime feeds inputs to the state machine and its effects to the outbox."""

    def __init__(
        self,
        core: Master,
        outbox: Outbox,
        *,
        allocation_interval: float,
        allocation_delay: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.core = core
        self.outbox = outbox
        self.clock = clock
        self.allocation_interval = allocation_interval
        self.allocation_delay = allocation_delay
        self.stopping = False
        self._soon: asyncio.TimerHandle | None = None
        self._timers: list[asyncio.TimerHandle] = []
        self.allocations = 0

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the timer tick and the periodic allocation."""
        loop = asyncio.get_running_loop()
        self._timers = [
            loop.call_later(TICK_SECONDS, self._tick),
            loop.call_later(self.allocation_interval, self._periodic),
            loop.call_later(SAMPLE_SECONDS, self._sample),
        ]

    def stop(self) -> None:
        """Stop feeding the state machine (streams closing at shutdown are not disconnections:
        the master is going away, not the schedulers or agents)."""
        self.stopping = True
        for handle in self._timers:
            handle.cancel()
        if self._soon is not None:
            self._soon.cancel()
            self._soon = None

    def apply(self, effects: list[Effect]) -> None:
        """Carry effects out, and schedule an allocation if the state machine wants one."""
        self.outbox.apply(effects)
        if (
            self.core.allocation_wanted
            and self._soon is None
            and not self.stopping
            and not self.core.state.recovering_agents
        ):
            self._soon = asyncio.get_running_loop().call_later(
                self.allocation_delay, self._allocate_soon
            )

    # -- timers and allocation ----------------------------------------------------------------

    def _reschedule(self, index: int, delay: float, callback: Callable[[], None]) -> None:
        if not self.stopping:
            self._timers[index] = asyncio.get_running_loop().call_later(delay, callback)

    def _tick(self) -> None:
        try:
            self.apply(self.core.tick(self.clock()))
        except Exception:
            log.exception("timer tick failed")
        finally:
            self._reschedule(0, TICK_SECONDS, self._tick)

    def _periodic(self) -> None:
        try:
            self.allocate()
        finally:
            self._reschedule(1, self.allocation_interval, self._periodic)

    def _sample(self) -> None:
        try:
            history = self.core.state.history
            history.utilization.sample(self.core.state, self.clock())
        except Exception:
            log.exception("sampling the utilisation failed")
        finally:
            self._reschedule(2, SAMPLE_SECONDS, self._sample)

    def _allocate_soon(self) -> None:
        self._soon = None
        self.allocate()

    def allocate(self) -> None:
        """Run one allocation cycle now."""
        if self.stopping:
            return
        started = time.perf_counter()
        try:
            effects = self.core.allocate(self.clock())
        except CoreFaultError as fault:  # Logged by the core; what changed still goes out.
            self.outbox.apply(fault.effects)
            return
        self.core.state.history.allocation_cycles.observe(time.perf_counter() - started)
        self.allocations += 1
        self.outbox.apply(effects)

    # -- frameworks ---------------------------------------------------------------------------

    def subscribe(self, stream_id: str, call: scheduler_pb2.Call, channel: EventChannel) -> None:
        """SUBSCRIBE on a new stream whose events go to ``channel``. Raises CallError."""
        try:
            effects = self.core.subscribe(stream_id, call, self.clock())
        except CoreFaultError as fault:
            self.apply(fault.effects)
            raise
        self.outbox.subscriptions[stream_id] = channel
        self.apply(effects)

    def open_subscription(self, stream_id: str, call: scheduler_pb2.Call) -> EventChannel:
        """:meth:`subscribe` on a new channel, returned (the scheduler HTTP API's way in)."""
        channel = EventChannel()
        self.subscribe(stream_id, call, channel)
        return channel

    def call(self, stream_id: str | None, call: scheduler_pb2.Call) -> None:
        """Any other scheduler call. Raises CallError, or CoreFaultError (a bug, logged by the
        core: its effects are carried out before it is raised on)."""
        try:
            effects = self.core.call(stream_id, call, self.clock())
        except CoreFaultError as fault:
            self.apply(fault.effects)
            raise
        self.apply(effects)

    def call_batch(
        self, stream_id: str | None, calls: Iterable[scheduler_pb2.Call]
    ) -> list[Exception | None]:
        """Several calls of subscription ``stream_id``, each taken as :meth:`call` takes it, in
        order; one outcome per call: None, the CallError refusing it, or the CoreFaultError of a
        bug (logged). SUBSCRIBE is refused: it needs a stream of its own.

        The calls share one ``now`` and their effects are carried out together, in order, after
        the last one: nothing else runs in between, so that is the same as one by one.
        """
        now = self.clock()
        core_call = self.core.call
        effects: list[Effect] = []
        outcomes: list[Exception | None] = []
        for call in calls:
            try:
                if call.type == scheduler_pb2.Call.SUBSCRIBE:
                    raise invalid(
                        "SUBSCRIBE cannot be batched: it opens the event stream"
                        " (use Subscribe or SubscribeBatched)"
                    )
                effects += core_call(stream_id, call, now)
            except CallError as error:
                outcomes.append(error)
            except CoreFaultError as fault:  # A bug: this call fails, the others go on.
                effects += fault.effects
                outcomes.append(fault)
            else:
                outcomes.append(None)
        self.apply(effects)
        return outcomes

    def operate(self, action: Callable[[Master, float], list[Effect]]) -> None:
        """An operator's steering input (``master.core.steering``), carried out like any other.
        Raises CallError (nothing changed), or CoreFaultError (a bug, logged by the core)."""
        try:
            effects = action(self.core, self.clock())
        except CoreFaultError as fault:
            self.apply(fault.effects)
            raise
        self.apply(effects)

    def subscription_ended(self, stream_id: str) -> None:
        """A subscription stream ended, whoever ended it."""
        self.outbox.subscriptions.pop(stream_id, None)
        if not self.stopping:
            self._apply_guarded(lambda: self.core.subscription_closed(stream_id, self.clock()))

    def _apply_guarded(self, step: Callable[[], list[Effect]]) -> None:
        """Carry out ``step``'s effects, or a fault's (logged by the core) if it failed."""
        try:
            effects = step()
        except CoreFaultError as fault:
            effects = fault.effects
        self.apply(effects)

    # -- agents -------------------------------------------------------------------------------

    def agent_connected(
        self,
        connection_id: str,
        channel: AgentSink,
        message: agent_internal_pb2.AgentMessage,
        principal: str | None = None,
    ) -> None:
        """The first message of a new agent connection, whose messages go to ``channel``
        (``principal``: who the edge authenticated, the owner of a new agent id)."""
        self.outbox.connections[connection_id] = channel
        try:
            effects = self.core.agent_connected(connection_id, message, self.clock(), principal)
        except CoreFaultError as fault:
            self.apply(fault.effects)
            raise
        self.apply(effects)

    def agent_messages(
        self, connection_id: str, messages: Iterable[agent_internal_pb2.AgentMessage]
    ) -> None:
        """Later messages on an agent connection, in order (ignored once stopped: a master
        that stepped down must not act on what a closing stream still carries)."""
        if self.stopping:
            return
        self.apply(self.core.agent_messages(connection_id, messages, self.clock()))

    def agent_protocol_error(self, connection_id: str, message: str) -> None:
        """The connection carried bytes that are not an agent message: refuse it, in order."""
        if not self.stopping:
            self.apply(self.core.agent_protocol_error(connection_id, message, self.clock()))

    def agent_ended(self, connection_id: str) -> None:
        """An agent connection ended, whoever ended it."""
        self.outbox.connections.pop(connection_id, None)
        if not self.stopping:
            self._apply_guarded(lambda: self.core.agent_disconnected(connection_id, self.clock()))
