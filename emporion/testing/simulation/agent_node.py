"""AgentNode: the real agent core on a simulated host, with its master link and containers.

The core is the real one (:func:`agent.core.handle` over typed events); its checkpoint is the
in-memory twin (:class:`agent.checkpoint.MemoryCheckpointStore`), written by the core's own
checkpoint effects. Around it this node plays the agent's runtime:

* **the master link** as :mod:`agent.runtime.master_link` runs it: open a stream, send the
  hello (RegisterAgent or ReregisterAgent, from the core), wait for the answer; answer pings;
  give up on the master when no ping came for the ping timeout it announced; try again with
  the jittered registration backoff. Messages are dropped while no session is accepted; what
  one event makes the core send travels as one batch;
* **containers** as processes of the host: a launch starts after a short delay (now and then
  it fails), a task runs for what its command says (``sim run_for=S exit=C``; ``forever``
  until killed) and exits with its code; SIGTERM ends it after a moment, a destroy at once. A
  destroy before it started either cancels the launch (reported as a failed launch, as the
  runtime's launch queue does) or, the container being created, ends it once launched.
  The command executor and the default executor are in-agent, as in the real agent.

A crash drops the core, its timers and its link; the host's containers live on. The restart
recovers from the checkpoint: every container the core looks for is found running or with its
exit; the others (frameworks that do not checkpoint, launches not yet recorded) are orphans,
destroyed silently, as the real agent's restart does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from agent.checkpoint import MemoryCheckpointStore, apply_checkpoint_effect
from agent.core import (
    AgentState,
    ContainerExit,
    CoreSettings,
    RegistrationBackoff,
    RetrySchedule,
    events,
    handle,
    hello_message,
)
from agent.core.effects import (
    CancelTimer,
    DestroyContainer,
    Effect,
    ForwardUpdate,
    LaunchContainer,
    LookForContainer,
    SendToMaster,
    SetTimer,
    SignalContainer,
    StopAgent,
    TimerKey,
)
from agent.core.messages import status_update_message
from protos.resources import Resources
from protos.v1 import agent_internal_pb2, mesos_pb2

if TYPE_CHECKING:
    from emporion.testing.simulation.loop import Timer
    from emporion.testing.simulation.master_node import MasterNode
    from emporion.testing.simulation.network import Link
    from emporion.testing.simulation.workload import AgentSpec
    from emporion.testing.simulation.world import World

__all__ = ["AgentNode", "SimContainer"]

BOOT_ID = "boot-1"
_COMMAND = re.compile(r"sim run_for=(?P<run_for>forever|[0-9.]+) exit=(?P<exit>-?[0-9]+)")
_SIGTERM = 15
_SIGKILL = 9
CANCELLED_LAUNCH = "the launch was cancelled before its container was created"
"""What the real runtime reports for a container destroyed while its launch was queued."""


@dataclass
class SimContainer:
    """SimContainer is a container's process tree on the simulated host."""

    container_id: str
    run_for: float | None
    exit_code: int
    started: bool = False
    destroy_at_start: bool = False
    """Destroyed while it was being created: it ends as soon as it is launched."""
    exit: ContainerExit | None = None
    timer: Timer | None = None


def _ignore(_: object) -> None:
    """Drop a value (a callback that must return None)."""


class AgentNode:
    """AgentNode is one agent process and its host; see the module docstring."""

    def __init__(self, world: World, master: MasterNode, index: int, spec: AgentSpec) -> None:
        self.world = world
        self.master = master
        self.index = index
        self.name = f"agent{index}"
        self.spec = spec
        self.total = Resources.scalars(cpus=spec.cpus, mem=spec.mem)
        self.store = MemoryCheckpointStore()
        self.store.write_boot_id(BOOT_ID)
        self.containers: dict[str, SimContainer] = {}
        """The host's live containers (they outlive agent crashes)."""
        self.state: AgentState | None = None
        self.left = False
        """The agent was shut down for good (by the master)."""
        self.crashes = 0
        self._rng = world.rng_for(self.name)
        self._ids = 0
        self._timers: dict[TimerKey, Timer] = {}
        self._known: set[str] = set()
        """Containers the current core knows of (launched or recovered by it)."""
        self._link: Link | None = None
        self._accepted = False
        self._ping_timeout = 75.0
        self._ping_timer: Timer | None = None
        self._retry: Timer | None = None
        self._backoff = RegistrationBackoff(1.0, 60.0, random=self._rng.random)

    # -- process lifecycle ----------------------------------------------------------------------

    def _new_state(self) -> AgentState:
        info = mesos_pb2.AgentInfo(hostname=self.spec.hostname, port=5051)
        info.resources.extend(self.total.to_protos())
        settings = CoreSettings(status_update_retry=RetrySchedule(2.0, 30.0))
        return AgentState(
            self.total,
            info,
            settings,
            new_uuid=lambda: self._rng.randbytes(16),
            new_container_id=self._container_id,
        )

    def _container_id(self) -> str:
        self._ids += 1
        return f"{self.name}-c{self._ids}"

    def start(self) -> None:
        """Start the agent process: recover from the checkpoint, then connect."""
        if self.state is not None or self.left:
            return
        state = self.state = self._new_state()
        self._known = set()
        checkpoint = self.store.read()
        world = self.world
        world.note(f"{self.name} starts (checkpointed agent: {checkpoint.agent is not None})")
        if checkpoint.agent is not None:
            looked = self._handle(events.RecoverFromCheckpoint(checkpoint.agent))
            for effect in looked:
                if not isinstance(effect, LookForContainer):
                    continue
                cid = effect.container_id
                container = self.containers.get(cid)
                if container is not None and container.exit is None:
                    self._known.add(cid)
                    self._handle(events.ContainerRecovered(cid))
                else:
                    gone = container.exit if container is not None else None
                    self.containers.pop(cid, None)
                    exit = gone or ContainerExit(message="the container was not found")
                    self._handle(events.ContainerExited(cid, exit))
            self._handle(events.RecoveryDone())
        for cid in [c for c in self.containers if c not in self._known]:
            orphan = self.containers.pop(cid)  # Destroyed silently, as the real restart does.
            if orphan.timer is not None:
                orphan.timer.cancel()
        if state is self.state:
            self._attempt_soon(self._backoff.next_delay())

    def crash(self) -> None:
        """The agent process dies; its containers live on."""
        if self.state is None:
            return
        self.world.note(f"{self.name} crashes")
        self.crashes += 1
        self.state = None
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for pending in (self._ping_timer, self._retry):
            if pending is not None:
                pending.cancel()
        self._ping_timer = self._retry = None
        if self._link is not None:
            self._link.cut(noisy=True)
        self._link = None
        self._accepted = False
        self._backoff.reset()

    def leader_elected(self, address: str) -> None:
        """The detector names a new leader: an agent without a session stops waiting out its
        grown backoff and reregisters after a fresh jittered delay, as the real link does."""
        if self.state is None or self._accepted:
            return
        self._backoff.reset()
        if self._link is None:
            self._attempt_soon(self._backoff.next_delay())

    def break_link(self) -> None:
        """Its session's connection breaks (noisily)."""
        if self._link is not None:
            self._link.cut(noisy=True)

    # -- the core -------------------------------------------------------------------------------

    def _handle(self, event: events.Event) -> list[Effect]:
        state = self.state
        assert state is not None
        world = self.world
        world.counts["agent_events"] += 1
        try:
            effects = handle(state, event, world.loop.now)
        except Exception as error:
            world.violation("agent-exception", f"{self.name} {event!r}: {error!r}")
            return []
        self._carry_out(effects)
        if world.validate_every_step and self.state is state:
            try:
                state.validate()
            except AssertionError as error:
                world.violation(
                    "agent-invariant", f"{self.name} after {type(event).__name__}: {error}"
                )
        return effects

    def _carry_out(self, effects: list[Effect]) -> None:
        batch: list[agent_internal_pb2.AgentMessage] = []
        loop = self.world.loop
        for effect in effects:
            if apply_checkpoint_effect(self.store, effect):
                continue
            if isinstance(effect, ForwardUpdate):
                batch.append(
                    status_update_message(
                        effect.framework_id, effect.executor_id, effect.status, effect.latest_state
                    )
                )
            elif isinstance(effect, SendToMaster):
                batch.append(effect.message)
            elif isinstance(effect, SetTimer):
                old = self._timers.pop(effect.key, None)
                if old is not None:
                    old.cancel()
                key = effect.key
                self._timers[key] = loop.at(effect.at, partial(self._timer_due, key))
            elif isinstance(effect, CancelTimer):
                old = self._timers.pop(effect.key, None)
                if old is not None:
                    old.cancel()
            elif isinstance(effect, LaunchContainer):
                self._launch(effect)
            elif isinstance(effect, SignalContainer):
                self._signal(effect.container_id, effect.signal)
            elif isinstance(effect, DestroyContainer):
                self._signal(effect.container_id, _SIGKILL)
            elif isinstance(effect, StopAgent):
                loop.after(0.0, partial(self._leave, effect.message))
        if batch:
            self._send(batch)

    def _timer_due(self, key: TimerKey) -> None:
        self._timers.pop(key, None)
        if self.state is not None:
            self._handle(events.TimerFired(key))

    def _leave(self, message: str) -> None:
        """The master shut this agent down: stop everything, unregister, forget the checkpoint."""
        if self.state is None or self.left:
            return
        self.world.note(f"{self.name} shut down by the master: {message}")
        self._handle(events.AgentStopping(kill_all=True))
        for cid in list(self.containers):
            self._signal(cid, _SIGKILL)
        unregister = agent_internal_pb2.AgentMessage()
        unregister.unregister_agent.message = "the agent was shut down"
        self._send([unregister])
        self.left = True
        self.crash()
        self.store.clear_agents()

    # -- containers -----------------------------------------------------------------------------

    def _launch(self, effect: LaunchContainer) -> None:
        cid = effect.container_id
        match = _COMMAND.fullmatch(effect.command.value) if effect.task_id is not None else None
        if effect.task_id is not None and match is None:
            self.world.violation("sim", f"{self.name}: unexpected command {effect.command.value!r}")
            return
        run_for = None
        exit_code = 0
        if match is not None:
            run_for = None if match["run_for"] == "forever" else float(match["run_for"])
            exit_code = int(match["exit"])
        container = SimContainer(cid, run_for, exit_code)
        self.containers[cid] = container
        self._known.add(cid)
        rng = self._rng
        if rng.random() < 0.02:
            container.exit = ContainerExit(message="simulated launch failure")
            self.containers.pop(cid)
            container.timer = self.world.loop.after(
                rng.uniform(0.001, 0.2),
                partial(self._report_launch_failed, cid, "simulated launch failure"),
            )
            return
        container.timer = self.world.loop.after(
            rng.uniform(0.001, 0.2), lambda: self._started(container)
        )

    def _report_launch_failed(self, cid: str, message: str) -> None:
        if self.state is not None and cid in self._known:
            self._known.discard(cid)
            self._handle(events.ContainerLaunchFailed(cid, message))

    def _started(self, container: SimContainer) -> None:
        if (
            container.exit is not None
            or self.containers.get(container.container_id) is not container
        ):
            return
        container.started = True
        if container.destroy_at_start:
            exit = ContainerExit(signal=_SIGKILL)
            container.timer = self.world.loop.after(0.0, partial(self._exited, container, exit))
        elif container.run_for is not None:
            container.timer = self.world.loop.after(
                container.run_for,
                lambda: self._exited(container, ContainerExit(status=container.exit_code)),
            )
        if self.state is not None and container.container_id in self._known:
            self._handle(events.ContainerLaunched(container.container_id, {"sim": True}))

    def _signal(self, cid: str, signal: int) -> None:
        container = self.containers.get(cid)
        if container is None or container.exit is not None:
            return
        if not container.started:
            if signal == _SIGKILL and self._rng.random() < 0.5:
                # Still queued: the launch is cancelled, as the runtime's launch queue does.
                if container.timer is not None:
                    container.timer.cancel()
                container.exit = ContainerExit(signal=signal)
                self.containers.pop(cid)
                container.timer = self.world.loop.after(
                    0.0, partial(self._report_launch_failed, cid, CANCELLED_LAUNCH)
                )
            elif signal == _SIGKILL:  # Being created: destroyed once launched.
                container.destroy_at_start = True
            return  # No process yet to signal.
        if signal == _SIGTERM and self._rng.random() < 0.1:
            return  # It ignores SIGTERM: the core's kill timer destroys it later.
        delay = self._rng.uniform(0.001, 0.3 if signal == _SIGTERM else 0.05)
        if container.timer is not None:
            container.timer.cancel()
        container.timer = self.world.loop.after(
            delay, lambda: self._exited(container, ContainerExit(signal=signal))
        )

    def _exited(self, container: SimContainer, exit: ContainerExit) -> None:
        cid = container.container_id
        if container.exit is not None or self.containers.get(cid) is not container:
            return
        container.exit = exit
        if self.state is None:
            return  # Nobody watches: the restart finds it exited.
        self.containers.pop(cid, None)
        if cid in self._known:
            self._known.discard(cid)
            self._handle(events.ContainerExited(cid, exit))

    def live_containers(self) -> list[str]:
        """The host's containers still running."""
        return [c.container_id for c in self.containers.values() if c.exit is None]

    # -- the master link ------------------------------------------------------------------------

    def _attempt_soon(self, delay: float) -> None:
        if self._retry is not None:
            self._retry.cancel()
        self._retry = self.world.loop.after(delay, self._attempt)

    def _attempt(self) -> None:
        self._retry = None
        state = self.state
        if state is None or self._link is not None:
            return
        link = self.world.net.connect(self.name)
        if link is None:
            self._attempt_soon(self._rng.uniform(0.01, 0.2) + self._backoff.next_delay())
            return
        self._link = link
        self._accepted = False
        hello = hello_message(state, BOOT_ID, "sim")
        link.on_client_closed = lambda: self._session_ended(link)
        master = self.master
        receiver = partial(self._received, link)
        link.to_master(lambda: _ignore(master.agent_connected(link, [hello], receiver)))
        # A session nobody answers is given up after the default ping timeout.
        self._arm_ping(link, self._ping_timeout)

    def _received(self, link: Link, message: agent_internal_pb2.MasterMessage) -> None:
        if self.state is None or link is not self._link:
            return
        kind = message.WhichOneof("payload")
        if not self._accepted:
            if kind not in ("agent_registered", "agent_reregistered"):
                self.world.note(f"{self.name} registration refused: {kind} {message}")
                if kind == "shutdown_agent":
                    self._handle(events.MasterMessageReceived(message))
                link.close_by_client()
                return
            body = getattr(message, kind)
            self._accepted = True
            self._backoff.reset()
            self._ping_timeout = body.ping_timeout_seconds or 75.0
            self._arm_ping(link, self._ping_timeout)
            self.world.note(f"{self.name} {kind.removeprefix('agent_')} as {body.agent_id.value}")
            self._handle(events.MasterMessageReceived(message))
            return
        if kind == "ping":
            self._arm_ping(link, self._ping_timeout)
            pong = agent_internal_pb2.AgentMessage()
            pong.pong.seq = message.ping.seq
            self._send([pong])
            return
        self._handle(events.MasterMessageReceived(message))

    def _arm_ping(self, link: Link, timeout: float) -> None:
        if self._ping_timer is not None:
            self._ping_timer.cancel()
        self._ping_timer = self.world.loop.after(timeout, lambda: self._ping_missed(link))

    def _ping_missed(self, link: Link) -> None:
        self._ping_timer = None
        if link is self._link and self.state is not None:
            self.world.note(f"{self.name}: no ping for {self._ping_timeout:g} s; reconnecting")
            link.cut(noisy=True)
            self._session_ended(link)

    def _session_ended(self, link: Link) -> None:
        if link is not self._link or self.state is None:
            return
        self._link = None
        if self._ping_timer is not None:
            self._ping_timer.cancel()
            self._ping_timer = None
        if self._accepted:
            self._accepted = False
            self._handle(events.Disconnected())
        if self.state is not None and not self.left:
            self._attempt_soon(self._backoff.next_delay())

    def _send(self, batch: list[agent_internal_pb2.AgentMessage]) -> None:
        link = self._link
        if link is None or not self._accepted:
            return  # Dropped: no session (the core resends what matters).
        master = self.master
        link.to_master(lambda: master.agent_messages(link.connection_id or "", batch))
