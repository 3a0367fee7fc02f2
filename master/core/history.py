"""History: what the master remembers of the past, and the tap the operator event stream reads.

Without it a failure leaves no trace at the master: a task that ends is forgotten once its
terminal update is acknowledged, a torn-down framework as soon as it goes. :class:`History`
keeps, as Mesos does,

* each framework's **completed tasks** in a ring of ``--max-completed-tasks-per-framework``
  (1000), and the **completed frameworks** (with their rings) in a ring of
  ``--max-completed-frameworks`` (50);
* every task's **statuses** (state, source, reason, message, time; at most
  :data:`MAX_STATUSES`, the first and the newest), from STAGING at launch to its end;
* **counters** of terminal states (``master/tasks_finished`` ...) and of (state, source, reason);
* **latencies** in fixed-bucket histograms: allocation cycles (observed by the runtime), the time
  from launch to TASK_RUNNING, and how long offers stay outstanding until their framework
  answers;
* the **utilisation** ring (:mod:`master.core.utilization`), sampled by the runtime.

Every method is called by the core at the one place a fact changes and costs O(1): a task that
ends appends one record; nothing here walks the cluster. The core calls :class:`History`, never
the HTTP layer: operator events reach subscribers through :attr:`History.watcher`, a
:class:`Watcher` the HTTP layer installs while someone subscribes (None otherwise, so an event
nobody reads costs one attribute test).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from master.core.model import TERMINAL_STATES, Agent, Framework, Offer, Task
from master.core.utilization import UtilizationRing
from protos.resources import Resources
from protos.v1 import mesos_pb2

__all__ = [
    "LATENCY_BUCKETS",
    "MAX_STATUSES",
    "Buckets",
    "CompletedFramework",
    "History",
    "StatusEntry",
    "Watcher",
    "status_entry",
]

MAX_STATUSES = 32
"""Statuses kept per task: the first (STAGING at launch) and the newest 31. A task flapping
between healthy and unhealthy must not grow without bound."""

LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
"""Upper bounds (seconds) of the latency histograms' buckets; one more bucket holds the rest."""

_Status = mesos_pb2.TaskStatus
_STARTING = frozenset({mesos_pb2.TASK_STAGING, mesos_pb2.TASK_STARTING})


class StatusEntry(NamedTuple):
    """StatusEntry is one status of a task as the history keeps it (no data, no uuid)."""

    state: int
    source: int
    reason: int | None
    """None when the status gave none (0 is REASON_COMMAND_EXECUTOR_FAILED)."""
    message: str
    timestamp: float
    healthy: bool | None = None


def status_entry(status: mesos_pb2.TaskStatus) -> StatusEntry:
    """The entry of ``status`` (reads each field once)."""
    healthy = status.healthy if status.HasField("healthy") else None
    reason = status.reason if status.HasField("reason") else None
    return StatusEntry(
        status.state, status.source, reason, status.message, status.timestamp, healthy
    )


class Buckets:
    """Buckets is a fixed-bucket histogram: Prometheus's shape, observed in O(log buckets)."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        """Observations per bucket (not cumulative); the last is above every bound."""
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Count one observation of ``value``."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.sum += value

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, observations <= it)`` per bucket, the last bound infinite."""
        out, total = [], 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += n
            out.append((bound, total))
        return out


class WindowedBuckets(Buckets):
    """WindowedBuckets is a histogram that also keeps its last ``window`` observations, for
    Mesos's timer statistics (mean, min, max and percentiles over a recent window)."""

    __slots__ = ("recent",)

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS, window: int = 1000) -> None:
        super().__init__(bounds)
        self.recent: deque[float] = deque(maxlen=window)

    def observe(self, value: float) -> None:
        """Count one observation of ``value`` and keep it in the window."""
        super().observe(value)
        self.recent.append(value)

    def summary(self) -> dict[str, float]:
        """Mesos's timer figures of the window: ``""`` (the mean), ``min``, ``max``, ``p50``,
        ``p90``, ``p95``, ``p99``, ``p999``, ``p9999``, and ``count``; {} when it is empty."""
        values = sorted(self.recent)
        if not values:
            return {}
        last = len(values) - 1
        out = {
            "": sum(values) / len(values),
            "min": values[0],
            "max": values[-1],
            "count": float(len(values)),
        }
        for name, q in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)):
            out[name] = values[round(q * last)]
        out["p999"] = values[round(0.999 * last)]
        out["p9999"] = values[round(0.9999 * last)]
        return out


class Watcher(Protocol):
    """Watcher is told of every change an operator event describes, as it happens.

    Each method runs inside the core, between two changes: it must only read what it is given
    (and copy what it keeps), never call back into the core.
    """

    def task_added(self, task: Task) -> None:
        """A task was launched (STAGING)."""

    def task_updated(self, task: Task, status: mesos_pb2.TaskStatus) -> None:
        """A task's state changed or a status about it arrived (``task.state`` is the newest)."""

    def framework_added(self, fw: Framework) -> None:
        """A framework registered (or was adopted from an agent's report)."""

    def framework_updated(self, fw: Framework) -> None:
        """A framework resubscribed, disconnected, or changed its FrameworkInfo."""

    def framework_removed(self, info: mesos_pb2.FrameworkInfo) -> None:
        """A framework was torn down."""

    def agent_added(self, agent: Agent) -> None:
        """An agent registered or reregistered."""

    def agent_removed(self, agent_id: str) -> None:
        """An agent was marked unreachable or gone, or unregistered."""


@dataclass(slots=True, eq=False)
class CompletedFramework:
    """CompletedFramework is a torn-down framework as the history keeps it."""

    framework: Framework
    """The framework's last record (its live tasks, offers and executors already dropped)."""
    removed_at: float
    reason: str
    tasks: deque[Task] = field(default_factory=deque)
    """Its completed tasks, oldest first."""


class History:
    """History is the master's memory of the past (see the module docstring)."""

    def __init__(self, max_completed_frameworks: int, max_completed_tasks: int) -> None:
        self.max_completed_frameworks = max_completed_frameworks
        self.max_completed_tasks = max_completed_tasks
        self.watcher: Watcher | None = None
        self.terminal: dict[int, int] = {}
        """Terminal state -> tasks that reached it, since this master took the lead."""
        self.reasons: dict[tuple[int, int | None, int | None], int] = {}
        """(terminal state, source, reason) -> tasks that ended so (None: not known)."""
        self.completed_tasks: dict[str, deque[Task]] = {}
        """Live framework id -> its completed tasks, oldest first."""
        self.completed_frameworks: OrderedDict[str, CompletedFramework] = OrderedDict()
        """Torn-down framework id -> its record, oldest first."""
        self.allocation_cycles = WindowedBuckets()
        """Seconds per allocation cycle (observed by the runtime, which owns the clock)."""
        self.launch_latency = Buckets()
        """Seconds from a task's launch (ACCEPT) to its first TASK_RUNNING at the master."""
        self.offer_latency = Buckets()
        """Seconds an offer was outstanding until its framework accepted or declined it."""
        self.utilization = UtilizationRing()
        self.counters: dict[str, int] = {}
        """Mesos's event counters by their ``/metrics/snapshot`` name
        (``master/slave_registrations``, ``master/valid_status_updates``, ...)."""

    def count(self, name: str) -> None:
        """One more of counter ``name``."""
        self.counters[name] = self.counters.get(name, 0) + 1

    # -- tasks --------------------------------------------------------------------------------

    def task_launched(self, task: Task, now: float) -> None:
        """``task`` was just launched: its first status is STAGING, from the master."""
        task.statuses.append(
            StatusEntry(mesos_pb2.TASK_STAGING, _Status.SOURCE_MASTER, None, "", now)
        )
        watcher = self.watcher
        if watcher is not None:
            watcher.task_added(task)

    def task_updated(
        self, task: Task, status: mesos_pb2.TaskStatus, prior: int, now: float
    ) -> None:
        """``status`` about ``task`` arrived; its state went from ``prior`` to ``task.state``.

        An update resent with the same state and time (a retry) is not kept twice.
        """
        entry = status_entry(status)
        statuses = task.statuses
        if not statuses or statuses[-1] != entry:
            if len(statuses) >= MAX_STATUSES:
                del statuses[1]
            statuses.append(entry)
        latest = task.state
        if latest != prior:
            if latest in TERMINAL_STATES and prior not in TERMINAL_STATES:
                self._count_end(latest, entry if entry.state == latest else None)
            elif latest == mesos_pb2.TASK_RUNNING and prior in _STARTING and statuses:
                first = statuses[0]
                if first.state == mesos_pb2.TASK_STAGING and first.source == _Status.SOURCE_MASTER:
                    self.launch_latency.observe(max(0.0, now - first.timestamp))
        watcher = self.watcher
        if watcher is not None:
            watcher.task_updated(task, status)

    def task_refused(
        self, framework_id: str, info: mesos_pb2.TaskInfo, status: mesos_pb2.TaskStatus
    ) -> None:
        """A launch the master refused (TASK_ERROR, TASK_DROPPED): the task was never tracked,
        but its end is counted and kept in the framework's completed tasks."""
        entry = status_entry(status)
        self._count_end(entry.state, entry)
        kept = mesos_pb2.TaskInfo()
        kept.CopyFrom(info)  # Not a view into the refused call, which would stay alive with it.
        info = kept
        task = Task(
            info.task_id.value,
            framework_id,
            status.agent_id.value,
            info.executor.executor_id.value if info.HasField("executor") else None,
            "",
            Resources.EMPTY,
            state=entry.state,
            info=info,
            latest_status=status,
            allocated=False,
        )
        task.statuses.append(entry)
        self._complete(task)
        watcher = self.watcher
        if watcher is not None:
            watcher.task_updated(task, status)

    def task_forgotten(self, task: Task, *, framework_known: bool) -> None:
        """The master stopped tracking ``task``: keep it if it ended (and its framework is
        registered, or kept as completed: nothing is kept for a framework nobody knows)."""
        if task.state in TERMINAL_STATES and (
            framework_known or task.framework_id in self.completed_frameworks
        ):
            self._complete(task)

    def _count_end(self, state: int, entry: StatusEntry | None) -> None:
        self.terminal[state] = self.terminal.get(state, 0) + 1
        key = (state, entry.source, entry.reason) if entry is not None else (state, None, None)
        self.reasons[key] = self.reasons.get(key, 0) + 1

    def _complete(self, task: Task) -> None:
        # What is kept for long is kept small: a task's ``data`` (opaque bytes, up to the message
        # limit) is dropped, as Mesos drops it, and so is its last TaskStatus once its statuses
        # say it all (the message would keep the agent's whole batch alive).
        info = task.info
        if info is not None and info.HasField("data"):
            kept = mesos_pb2.TaskInfo()
            kept.CopyFrom(info)
            kept.ClearField("data")
            task.info = kept
        if task.statuses:
            task.latest_status = None
        ring = self.completed_tasks.get(task.framework_id)
        if ring is None:
            gone = self.completed_frameworks.get(task.framework_id)
            if gone is not None:
                ring = gone.tasks
            else:
                ring = self.completed_tasks[task.framework_id] = deque()
        if self.max_completed_tasks <= 0:
            return
        if len(ring) >= self.max_completed_tasks:
            ring.popleft()
        ring.append(task)

    # -- frameworks ---------------------------------------------------------------------------

    def framework_added(self, fw: Framework) -> None:
        """``fw`` registered."""
        watcher = self.watcher
        if watcher is not None:
            watcher.framework_added(fw)

    def framework_updated(self, fw: Framework) -> None:
        """``fw`` resubscribed, disconnected or changed its info."""
        watcher = self.watcher
        if watcher is not None:
            watcher.framework_updated(fw)

    def framework_removed(self, fw: Framework, now: float, reason: str) -> None:
        """``fw`` is being torn down (its tasks still attached): keep it with its tasks.

        Tasks still live end as TASK_KILLED / REASON_FRAMEWORK_REMOVED, as in Mesos (the agents
        are told to shut the framework down, which kills them).
        """
        ring = self.completed_tasks.pop(fw.framework_id, None) or deque()
        record = CompletedFramework(fw, now, reason, ring)
        killed = StatusEntry(
            mesos_pb2.TASK_KILLED,
            _Status.SOURCE_MASTER,
            _Status.REASON_FRAMEWORK_REMOVED,
            f"Framework {fw.framework_id} removed: {reason}",
            now,
        )
        self.completed_frameworks[fw.framework_id] = record
        self.completed_frameworks.move_to_end(fw.framework_id)
        for task in list(fw.tasks.values()):
            if task.state not in TERMINAL_STATES:
                task.state = mesos_pb2.TASK_KILLED
                task.statuses.append(killed)
                self._count_end(mesos_pb2.TASK_KILLED, killed)
            self._complete(task)
        while len(self.completed_frameworks) > self.max_completed_frameworks:
            self.completed_frameworks.popitem(last=False)
        watcher = self.watcher
        if watcher is not None:
            watcher.framework_removed(fw.info)

    def completed_tasks_of(self, framework_id: str) -> Sequence[Task]:
        """The completed tasks of a live or torn-down framework, oldest first."""
        ring = self.completed_tasks.get(framework_id)
        if ring is None:
            gone = self.completed_frameworks.get(framework_id)
            ring = gone.tasks if gone is not None else deque()
        return ring

    def all_completed_tasks(self) -> Iterable[Task]:
        """Every completed task kept: live frameworks' first, then torn-down ones'."""
        for ring in self.completed_tasks.values():
            yield from ring
        for record in self.completed_frameworks.values():
            yield from record.tasks

    def completed_task_count(self) -> int:
        """How many completed tasks are kept (O(frameworks))."""
        return sum(map(len, self.completed_tasks.values())) + sum(
            len(r.tasks) for r in self.completed_frameworks.values()
        )

    # -- agents and offers --------------------------------------------------------------------

    def agent_added(self, agent: Agent) -> None:
        """``agent`` registered or reregistered."""
        watcher = self.watcher
        if watcher is not None:
            watcher.agent_added(agent)

    def agent_removed(self, agent_id: str) -> None:
        """The agent was marked unreachable or gone, or unregistered."""
        self.count("master/slave_removals")
        watcher = self.watcher
        if watcher is not None:
            watcher.agent_removed(agent_id)

    def offer_answered(self, offer: Offer, now: float) -> None:
        """Its framework accepted or declined ``offer``."""
        self.offer_latency.observe(max(0.0, now - offer.created_at))
