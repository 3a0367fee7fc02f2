"""FrameworkNode: a scheduler built on the SDK's sans-I/O :class:`SchedulerSession`.

The session is the real one (``framework_sdk.session``): it builds SUBSCRIBE, reads the stream,
decides reconnect delays, fills agent ids into calls. Around it this node plays the SDK's
client runtime over the simulated network, and a scheduler that works as a careful Mesos
framework does:

* it launches what the workload asks for (single command tasks, task groups on the default
  executor, with or without a dynamic reservation first) on offers that fit, and declines the
  rest with the refuse filter the workload last chose;
* it acknowledges every update that carries a uuid, kills on request, suppresses and revives,
  unreserves, tears itself down;
* it keeps a **ledger** that a real framework would keep durably: its framework id and every
  task it sent an ACCEPT for, with the last state it heard. That survives a scheduler failover
  (crash and restart), and after every SUBSCRIBED it reconciles the ledger's live tasks
  explicitly, as Mesos asks of frameworks;
* once the workload winds down (:meth:`wind_down`), it kills whatever of its tasks still run
  and reconciles now and then, until every task in its ledger is terminal.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from emporion.testing.simulation.launch_plan import LaunchIntent, plan_launch
from framework_sdk import calls
from framework_sdk.errors import NotSubscribedError
from framework_sdk.session import GiveUp, Phase, SchedulerSession, needs_acknowledgement
from protos.resources import Resources
from protos.v1 import mesos_pb2, scheduler_pb2

if TYPE_CHECKING:
    from emporion.testing.simulation.loop import Timer
    from emporion.testing.simulation.master_node import MasterNode
    from emporion.testing.simulation.network import Link
    from emporion.testing.simulation.world import World

__all__ = ["TERMINAL", "FrameworkNode", "FrameworkSpec", "LedgerTask"]

_E = scheduler_pb2.Event
_Op = mesos_pb2.Offer.Operation
_LOST = mesos_pb2.TASK_LOST

TERMINAL = frozenset(
    {
        mesos_pb2.TASK_FINISHED,
        mesos_pb2.TASK_FAILED,
        mesos_pb2.TASK_KILLED,
        mesos_pb2.TASK_ERROR,
        mesos_pb2.TASK_LOST,
        mesos_pb2.TASK_DROPPED,
        mesos_pb2.TASK_GONE,
        mesos_pb2.TASK_GONE_BY_OPERATOR,
    }
)
"""States after which a framework holds a task for ended."""

RECONCILE_EVERY = 7.0
"""Seconds between reconciliations of live tasks once the workload winds down."""


@dataclass(frozen=True)
class FrameworkSpec:
    """FrameworkSpec says how a framework registers."""

    name: str
    role: str
    checkpoint: bool
    partition_aware: bool
    failover_timeout: float

    def info(self) -> mesos_pb2.FrameworkInfo:
        """Its FrameworkInfo (no id yet)."""
        info = mesos_pb2.FrameworkInfo(
            name=self.name,
            user="sim",
            failover_timeout=self.failover_timeout,
            checkpoint=self.checkpoint,
        )
        info.roles.append(self.role)
        info.capabilities.add(type=mesos_pb2.FrameworkInfo.Capability.MULTI_ROLE)
        if self.partition_aware:
            info.capabilities.add(type=mesos_pb2.FrameworkInfo.Capability.PARTITION_AWARE)
        return info


@dataclass
class LedgerTask:
    """LedgerTask is what the framework durably knows of a task it launched."""

    task_id: str
    agent_id: str
    state: int | None = None
    """The last state heard (None: nothing yet)."""
    terminal_updates: int = 0
    kill_wanted: bool = False


@dataclass
class Ledger:
    """Ledger is what survives a scheduler failover (see the module docstring)."""

    framework_id: str | None = None
    tasks: dict[str, LedgerTask] = field(default_factory=dict)
    removed: str | None = None
    """Why the master removed the framework (torn down), if it did."""


class FrameworkNode:
    """FrameworkNode is one framework's scheduler process; see the module docstring."""

    def __init__(self, world: World, master: MasterNode, index: int, spec: FrameworkSpec) -> None:
        self.world = world
        self.master = master
        self.index = index
        self.name = f"framework{index}"
        self.spec = spec
        self.ledger = Ledger()
        self.session: SchedulerSession | None = None
        self.link: Link | None = None
        self.running = False
        self.winding_down = False
        self.refuse_seconds = 5.0
        self.wants: deque[LaunchIntent] = deque()
        self.offers: dict[str, mesos_pb2.Offer] = {}
        self.unreserve_wanted = False
        self.tearing_down = False
        self.suppress_idle = True
        """Suppress offers while there is nothing to launch (as Mesos advises frameworks)."""
        self._tasks_made = 0
        self._deadline: Timer | None = None
        self._retry: Timer | None = None
        self._reconcile_timer: Timer | None = None
        self._rng = world.rng_for(self.name)

    # -- process lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the scheduler process: a session that fails over if the ledger has an id."""
        if self.running or self.ledger.removed is not None:
            return
        info = self.spec.info()
        if self.ledger.framework_id is not None:
            info.id.value = self.ledger.framework_id
        self.session = SchedulerSession(info, rng=self.world.rng_for(f"{self.name}:session"))
        self.running = True
        self.world.note(f"{self.name} starts (framework id {self.ledger.framework_id})")
        self._connect()

    def crash(self) -> None:
        """The scheduler process dies: its stream breaks; only the ledger survives."""
        if not self.running:
            return
        self.world.note(f"{self.name} crashes")
        self.running = False
        if self.link is not None:
            self.link.cut(noisy=True)
        self.link = None
        self.session = None
        self.offers.clear()
        for timer in (self._deadline, self._retry, self._reconcile_timer):
            if timer is not None:
                timer.cancel()
        self._deadline = self._retry = self._reconcile_timer = None

    def leader_elected(self, address: str) -> None:
        """The detector names a new leader: the session leaves the old one at once and
        subscribes after a short jittered delay (``SchedulerSession.leader_changed``)."""
        session = self.session
        if not self.running or session is None:
            return
        move = session.leader_changed(self.world.loop.now, address, named_by="the detector")
        if move is None:
            return
        _, retry = move
        link, self.link = self.link, None
        if link is not None:
            link.cut(noisy=True)
        self.offers.clear()
        if self._retry is not None:
            self._retry.cancel()
        self._retry = self.world.loop.after(retry.delay, self._connect)

    def break_link(self) -> None:
        """Its subscription's connection breaks (noisily)."""
        if self.link is not None:
            self.link.cut(noisy=True)

    # -- connection -----------------------------------------------------------------------------

    def _connect(self) -> None:
        session = self.session
        if session is None or session.phase not in (Phase.IDLE, Phase.BACKING_OFF):
            return
        world = self.world
        call = session.subscribe_call(world.loop.now, master=self.master.address)
        link = world.net.connect(self.name)
        if link is None:
            world.loop.after(
                self._rng.uniform(0.01, 0.2),
                lambda: self._refused(None, "UNAVAILABLE", "cannot connect"),
            )
            return
        self.link = link
        link.on_client_closed = lambda: self._lost(link, "the stream ended")
        link.to_master(
            lambda: self.master.subscribe(
                link,
                call,
                lambda stream_id: self._opened(link, stream_id),
                lambda code, message: self._refused(link, code, message),
                lambda event: self._event(link, event),
            )
        )
        self._arm_deadline()

    def _current(self, link: Link | None) -> bool:
        return self.running and self.session is not None and link is self.link

    def _opened(self, link: Link, stream_id: str) -> None:
        if self._current(link):
            assert self.session is not None
            self.session.stream_opened(stream_id, batched=False)

    def _refused(self, link: Link | None, code: str, message: str) -> None:
        session = self.session
        if not self.running or session is None or link is not self.link:
            return
        if session.phase is not Phase.CONNECTING:
            return
        self.link = None
        outcome = session.subscribe_failed(code, message, self.world.loop.now)
        self.world.note(f"{self.name} SUBSCRIBE refused: {code} {message}")
        if isinstance(outcome, GiveUp):
            if "torn down" in message:
                self.ledger.removed = message
            self.running = False
            return
        self._retry = self.world.loop.after(outcome.delay, self._connect)

    def _lost(self, link: Link, reason: str) -> None:
        session = self.session
        if not self._current(link) or session is None:
            return
        self.link = None
        if session.phase not in (Phase.CONNECTING, Phase.SUBSCRIBED):
            return
        _, retry = session.stream_lost(self.world.loop.now, reason)
        self.offers.clear()
        self._retry = self.world.loop.after(retry.delay, self._connect)

    def _arm_deadline(self) -> None:
        session = self.session
        deadline = session.deadline() if session is not None else None
        if deadline is None:
            return
        if self._deadline is not None:
            if self._deadline.at <= deadline:
                return  # An earlier check comes first and re-arms.
            self._deadline.cancel()
        self._deadline = self.world.loop.at(deadline, self._deadline_due)

    def _deadline_due(self) -> None:
        self._deadline = None
        session = self.session
        if not self.running or session is None:
            return
        if session.expired(self.world.loop.now):
            link = self.link
            self.world.note(f"{self.name}: no event before the deadline; dropping the stream")
            if link is not None:
                link.cut(noisy=True)
                self._lost(link, "heartbeat deadline passed")
        else:
            self._arm_deadline()

    # -- events ---------------------------------------------------------------------------------

    def _event(self, link: Link, event: scheduler_pb2.Event) -> None:
        session = self.session
        if not self._current(link) or session is None:
            return
        world = self.world
        if session.phase is Phase.CONNECTING and session.stream_id is None:
            return  # Cannot happen over an ordered stream: the id comes first.
        typed = session.receive(event, world.loop.now)
        if typed is None:
            return
        self._arm_deadline()
        kind = event.type
        if kind == _E.SUBSCRIBED:
            self.ledger.framework_id = event.subscribed.framework_id.value
            world.note(f"{self.name} subscribed as {self.ledger.framework_id}")
            self._after_subscribed()
        elif kind == _E.OFFERS:
            for offer in event.offers.offers:
                self.offers[offer.id.value] = offer
            self._use_offers()
        elif kind == _E.RESCIND:
            self.offers.pop(event.rescind.offer_id.value, None)
        elif kind == _E.UPDATE:
            self._update(event.update.status)
        elif kind == _E.ERROR:
            world.note(f"{self.name} got ERROR: {event.error.message}")
            self.ledger.removed = event.error.message
            self.running = False
            self.link = None
        elif kind == _E.FAILURE and not event.failure.HasField("executor_id"):
            self._reconcile_live()

    def _after_subscribed(self) -> None:
        session = self.session
        assert session is not None
        if self.tearing_down:
            self._send(calls.teardown(), self._torn_down)
            return
        self._reconcile_live()
        for task in self.ledger.tasks.values():
            if task.kill_wanted and self._maybe_live(task):
                self._kill(task)

    def _update(self, status: mesos_pb2.TaskStatus) -> None:
        task = self.ledger.tasks.get(status.task_id.value)
        if task is not None:
            if status.state in TERMINAL:
                task.terminal_updates += 1
            task.state = status.state
            if status.agent_id.value:
                task.agent_id = status.agent_id.value
        self.world.counts["updates_seen"] += 1
        if needs_acknowledgement(status):
            self._send(calls.acknowledge(status))

    # -- the scheduler's decisions ----------------------------------------------------------------

    def _send(self, call: scheduler_pb2.Call, on_ok: Callable[[], None] | None = None) -> bool:
        """Send a call now (False if not subscribed); ``on_ok`` runs if the master took it, a
        failure is only noted."""
        session = self.session
        if session is None or not self.running:
            return False
        try:
            prepared = session.prepare(call)
        except NotSubscribedError:
            return False
        stream_id = session.stream_id
        name = scheduler_pb2.Call.Type.Name(prepared.type)
        self.world.counts[f"call_{name}"] += 1

        def replied(code: str, message: str) -> None:
            if code != "OK":
                self.world.counts[f"call_failed_{code}"] += 1
                self.world.note(f"{self.name} {name} failed: {code} {message}")
            elif on_ok is not None:
                on_ok()

        self.world.net.call(self.name, lambda: self.master.call(stream_id, prepared), replied)
        return True

    @staticmethod
    def _ended(task: LedgerTask) -> bool:
        return task.state is not None and task.state in TERMINAL

    @staticmethod
    def _maybe_live(task: LedgerTask) -> bool:
        """Not known ended: not terminal, or TASK_LOST, which a task can come back from (since
        Mesos 1.5 the tasks of a framework that is not partition-aware are not killed when
        their unreachable agent returns), so a careful framework keeps reconciling it."""
        return task.state is None or task.state not in TERMINAL or task.state == _LOST

    def _use_offers(self) -> None:
        role = self.spec.role
        for offer_id, offer in list(self.offers.items()):
            offered = Resources.from_protos(offer.resources)
            operations: list[mesos_pb2.Offer.Operation] = []
            if self.unreserve_wanted:
                reserved = offered.reserved(role).filter(
                    lambda k: bool(k.reservations) and k.reservations[-1].type == "dynamic"
                )
                if reserved:
                    op = _Op(type=_Op.UNRESERVE)
                    op.unreserve.resources.extend(reserved.to_protos(allocation_role=role))
                    operations.append(op)
                    offered = offered - reserved + reserved.pop_reservation()
                    self.unreserve_wanted = False
            while self.wants and not self.winding_down:
                plan = plan_launch(
                    self.wants[0],
                    offer,
                    offered,
                    framework=self.name,
                    role=role,
                    first_task=self._tasks_made + 1,
                )
                if plan is None:
                    break
                offered = offered - plan.uses
                operations.extend(plan.operations)
                self.wants.popleft()
                self._tasks_made += len(plan.task_ids)
                for task_id in plan.task_ids:
                    self.ledger.tasks[task_id] = LedgerTask(task_id, offer.agent_id.value)
                self.world.counts["tasks_launched"] += len(plan.task_ids)
            del self.offers[offer_id]
            if operations:
                self._send(calls.accept([offer_id], operations))
            else:
                self._send(
                    calls.decline([offer_id], mesos_pb2.Filters(refuse_seconds=self.refuse_seconds))
                )
        session = self.session
        idle = not self.wants and not self.unreserve_wanted
        if idle and session is not None and not session.suppressed_roles and self.suppress_idle:
            self.suppress()  # Nothing to run: no more offers until new work revives them.

    # -- workload -------------------------------------------------------------------------------

    def want(self, intent: LaunchIntent) -> None:
        """Launch these tasks on the next offer that fits."""
        if not self.winding_down:
            self.wants.append(intent)
            self._use_offers()
            if self.wants and not self.offers:
                self.revive()  # New work: undo the filters of earlier declines.

    def kill_some(self, pick: int) -> None:
        """Kill one live task of the ledger (the ``pick``-th, wrapping)."""
        live = [t for t in self.ledger.tasks.values() if not self._ended(t)]
        if live:
            task = live[pick % len(live)]
            task.kill_wanted = True
            self._kill(task)

    def _kill(self, task: LedgerTask) -> None:
        self._send(calls.kill(task.task_id, task.agent_id))

    def suppress(self) -> None:
        """SUPPRESS its role."""
        if self.session is not None and self._send(calls.suppress()):
            self.session.note_suppress(())

    def revive(self) -> None:
        """REVIVE its role."""
        if self.session is not None and self._send(calls.revive()):
            self.session.note_revive(())

    def reconcile(self, explicit: bool) -> None:
        """RECONCILE its live tasks (explicit) or everything (implicit)."""
        if explicit:
            self._reconcile_live()
        else:
            self._send(calls.reconcile())

    def _reconcile_live(self) -> None:
        call = scheduler_pb2.Call(type=scheduler_pb2.Call.RECONCILE)
        for task in self.ledger.tasks.values():
            if self._maybe_live(task):
                item = call.reconcile.tasks.add()
                item.task_id.value = task.task_id
                item.agent_id.value = task.agent_id
        if call.reconcile.tasks:
            self._send(call)

    def set_refuse(self, seconds: float) -> None:
        """Decline from now on with this refuse filter."""
        self.refuse_seconds = seconds

    def unreserve(self) -> None:
        """Unreserve the dynamic reservations of the next offer that has some."""
        self.unreserve_wanted = True
        self._use_offers()

    def teardown(self) -> None:
        """TEARDOWN: the framework ends; the master kills its tasks. Sent again after every
        SUBSCRIBED until the master took it (a lost call must not leave it running)."""
        self.tearing_down = True
        self.world.note(f"{self.name} tears down")
        self._send(calls.teardown(), self._torn_down)

    def _torn_down(self) -> None:
        if self.ledger.removed is None:
            self.ledger.removed = "torn down by its scheduler"
        if self.session is not None:
            self.session.close("torn down")
        link, self.link = self.link, None
        if link is not None:
            link.close_by_client()
        self.running = False

    # -- winding down ---------------------------------------------------------------------------

    def wind_down(self) -> None:
        """Stop launching; kill every live task; reconcile until all are terminal."""
        self.winding_down = True
        self.wants.clear()
        self._wind_down_round()

    def _wind_down_round(self) -> None:
        self._reconcile_timer = self.world.loop.after(RECONCILE_EVERY, self._wind_down_round)
        if not self.running:
            return
        for task in self.ledger.tasks.values():
            if self._maybe_live(task):
                task.kill_wanted = True
                self._kill(task)
        self._reconcile_live()

    def settled(self, lost_agents: frozenset[str] = frozenset()) -> str | None:
        """None once every task of the ledger is known terminal; else what is not.

        A task last seen TASK_UNREACHABLE counts as ended if its agent is in ``lost_agents``:
        unreachable at the master and never coming back (its host registered anew under
        another id). Mesos keeps such a task unreachable until the agent is garbage-collected
        from the registry or marked gone; a partition-aware framework decides for itself.
        """
        if self.ledger.removed is not None:
            return None
        live = [
            t
            for t in self.ledger.tasks.values()
            if not self._ended(t)
            and not (t.state == mesos_pb2.TASK_UNREACHABLE and t.agent_id in lost_agents)
        ]
        if live:
            shown = ", ".join(
                f"{t.task_id}@{t.agent_id}:"
                f"{mesos_pb2.TaskState.Name(t.state) if t.state is not None else 'nothing heard'}"  # type: ignore[arg-type]
                for t in live[:5]
            )
            return f"{self.name}: {len(live)} tasks not seen terminal ({shown})"
        return None
