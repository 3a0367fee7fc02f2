"""Live pages: the operator event stream, coalesced and pushed to browsers as Server-Sent Events.

One :class:`LiveHub` per master holds **one** subscription to the operator API's event hub
while at least one browser is connected (none otherwise: the master then builds no events for
the UI at all). Where the hub offers ``listen`` (raw in-process listeners, called with the
changed objects themselves), the LiveHub listens instead of subscribing, so the master builds
no JSON for it; its methods ``task_added`` ... ``agent_removed`` are those of
:class:`master.core.history.Watcher`.

Events are folded into a pending batch as they arrive (a dict entry per changed task, the newest
state winning), and once per ``interval`` the batch is flushed:

* a *common* part, encoded once for every viewer: the overview's gauges when anything
  changed, new utilisation samples every ``sample_every`` seconds, how many tasks were added,
  which agents and frameworks changed;
* a *personal* part per viewer: the new states of the tasks its page shows (its *watch set*,
  posted by the page's script), found by looking each watched key up in the batch, so the cost
  per viewer grows with what its page shows, not with the cluster's rate of updates.

The gauges (the ``master/tasks_*``, ``slaves_*``, ``frameworks_*`` and ``outstanding_offers``
figures of ``/metrics/snapshot``) are kept up to date from the events themselves: the live
tasks' states are counted once when the first viewer connects (and again every
``recount_every`` seconds, so nothing can drift for long), then moved by each TASK_ADDED and
TASK_UPDATED; terminal counters are the history's own; agents and frameworks are counted only
when one of them changed. A pass over 100,000 tasks once a second would cost the master
several percent of a core on its own.

An update that leaves a live task in the state it had (a running task's health check, say)
costs one lookup and is not batched. So 10 open pages at 5,000 task updates per second cost a
few dict operations per update and,
per viewer, a few hundred lookups and one small JSON message per second.
A viewer whose principal's ``view_*`` ACLs restrict what it sees (``visibility``) is told
only of what it may see: its watch set keeps only live tasks it may view, and the ids of
changed frameworks and the count of new tasks move from the common part to its personal part,
filtered. The gauges stay cluster-wide, as ``/metrics/snapshot`` is.

A viewer too slow to take its messages (more than ``QUEUE_LIMIT`` flushes behind) loses them
and is told to ``resync`` (its page refreshes its tables). When the master stops leading, the
subscription ends and every viewer's stream closes; the browser then reloads through the
follower's redirect.

Wire format (``text/event-stream``): ``event: hello`` with ``{"viewer": id}`` first, then
``event: batch`` messages ``{"metrics": {...}?, "samples": [...]?, "new_tasks": n,
"agents": [ids], "frameworks": [ids], "tasks": [[framework, task, state], ...],
"refresh": bool, "resync": bool}`` (absent keys: nothing new), and ``: ping`` comments every
15 s to keep proxies from closing an idle stream.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from master.core import TERMINAL_STATES, Agent, Framework, Master, Task
from master.core.operator_json import Visibility, framework_info_of
from protos.v1 import mesos_pb2

from .api import OperatorCalls
from .gauges import gauges, herd_counts, live_task_counts

__all__ = ["LiveHub", "Viewer"]

_log = logging.getLogger(__name__)

QUEUE_LIMIT = 8
"""Flushes a viewer may be behind before it loses them and is told to resync."""
MAX_WATCH = 1000
"""The most tasks one viewer may watch (a page shows at most 500)."""
PING_SECONDS = 15.0
_STATE_NAMES: dict[int, str] = {value: name for name, value in mesos_pb2.TaskState.items()}
"""TaskState value -> name: a dict lookup, not protobuf's ``Name()`` (paid per task update)."""
_TERMINAL_NAMES = frozenset(mesos_pb2.TaskState.Name(s) for s in TERMINAL_STATES)

TaskKey = tuple[str, str]
"""(framework id, task id)."""


@dataclass(eq=False)
class Viewer:
    """Viewer is one browser's live stream: its queue of encoded messages and its watch set."""

    viewer_id: str
    queue: asyncio.Queue[bytes | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    tasks: dict[TaskKey, str] = field(default_factory=dict)
    """Watched task -> the state the page shows."""
    agents: frozenset[str] = frozenset()
    frameworks: frozenset[str] = frozenset()
    lost: bool = False
    """Messages were dropped: the next one says ``resync``."""
    refresh: bool = False
    """A watched task changed in a way a row update cannot show (it left the live tasks)."""
    visible: Visibility | None = None
    """What the viewer's principal may see (None: everything)."""

    def send(self, message: bytes) -> None:
        """Queue ``message``; drop it (and remember to resync) if the viewer is behind."""
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.lost = True


@dataclass
class _Batch:
    tasks: dict[TaskKey, str] = field(default_factory=dict)
    added: int = 0
    added_tasks: list[Task] = field(default_factory=list)
    """The added tasks themselves, when heard in-process (for restricted viewers' counts)."""
    agents: set[str] = field(default_factory=set)
    frameworks: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.tasks or self.added or self.agents or self.frameworks)


def _value(obj: Any, key: str) -> str:
    inner = obj.get(key) if isinstance(obj, dict) else None
    return str(inner.get("value", "")) if isinstance(inner, dict) else ""


class LiveHub:
    """LiveHub fans the operator event stream out to the UI's viewers (module docstring).

    ``leading_master`` gives the state machine while this master leads (for the current state
    of newly watched tasks); ``clock`` gives seconds since the epoch.
    """

    def __init__(
        self,
        operator: OperatorCalls,
        leading_master: Callable[[], Master | None],
        *,
        interval: float = 1.0,
        sample_every: float = 5.0,
        recount_every: float = 60.0,
        clock: Callable[[], float] = time.time,
        visibility: Callable[[], Visibility | None] = lambda: None,
    ) -> None:
        self._operator = operator
        self._visibility = visibility
        self._leading_master = leading_master
        self._interval = interval
        self._sample_every = sample_every
        self._recount_every = recount_every
        self._live: dict[TaskKey, str] = {}
        """Live (non-terminal) task -> state name, kept from the events."""
        self._counts: dict[str, int] = {}
        self._counted_at = float("-inf")
        self._herds: dict[str, float] = {}
        """Agents and frameworks counted by state (``master/slaves_*`` and ``frameworks_*``)."""
        self._clock = clock
        self._ids = itertools.count(1)
        self.viewers: dict[str, Viewer] = {}
        self._batch = _Batch()
        self._tasks: list[asyncio.Task[None]] = []
        self._subscription: Any = None
        self._master: Master | None = None
        """The state machine the subscription is of (its term)."""
        self._last_sample = 0.0
        self._sampled_at = float("-inf")
        self._changed = True
        self.flushes = 0
        """Flushes sent so far (for tests and the benchmark)."""

    # -- viewers ----------------------------------------------------------------------------

    def connect(self) -> Viewer:
        """A new viewer; the first one subscribes to the operator events (NotLeadingError on a
        follower, raised before anything changes)."""
        if not self._tasks:
            listen = getattr(self._operator.events, "listen", None)
            loop = asyncio.get_running_loop()
            if listen is not None:
                # Raw in-process listening: the hub hears of each change without the operator
                # API building its JSON (what costs the master most per update).
                self._subscription = listen(self)
                self._tasks = [loop.create_task(self._tick(), name="ui-live-tick")]
            else:
                self._subscription = self._operator.events.subscribe(
                    include_state=False, queue_limit=100_000
                )
                self._tasks = [
                    loop.create_task(self._pump(self._subscription), name="ui-live-pump"),
                    loop.create_task(self._tick(), name="ui-live-tick"),
                ]
            self._master = self._leading_master()
            self._batch = _Batch()
            self._changed = True
            self._sampled_at = float("-inf")
            # Pages embed the samples recorded before they were made: send only newer ones
            # (the charts drop repeats).
            self._last_sample = self._clock() - 2 * self._sample_every
            self._counted_at = float("-inf")
            self._herds = {}
        viewer = Viewer(str(next(self._ids)), visible=self._visibility())
        self.viewers[viewer.viewer_id] = viewer
        viewer.send(_message("hello", {"viewer": viewer.viewer_id}))
        return viewer

    def disconnect(self, viewer: Viewer) -> None:
        """Forget ``viewer``; the last one out ends the subscription."""
        self.viewers.pop(viewer.viewer_id, None)
        if not self.viewers:
            self._stop()

    def watch(
        self,
        viewer_id: str,
        tasks: list[tuple[str, str, str]],
        agents: list[str],
        frameworks: list[str],
    ) -> bool:
        """Set what viewer ``viewer_id``'s page shows: (framework, task, shown state) triples,
        agent ids and framework ids. Tasks whose state moved on since the page was rendered
        are in its next message. False for an unknown viewer."""
        viewer = self.viewers.get(viewer_id)
        if viewer is None:
            return False
        viewer.tasks = {(f, t): s for f, t, s in tasks[:MAX_WATCH]}
        viewer.agents = frozenset(agents[:MAX_WATCH])
        viewer.frameworks = frozenset(frameworks[:MAX_WATCH])
        master = self._leading_master()
        if master is None:
            return True
        visible = viewer.visible
        for (framework_id, task_id), shown in list(viewer.tasks.items()):
            fw = master.state.frameworks.get(framework_id)
            task = fw.tasks.get(task_id) if fw is not None else None
            if task is None:
                # Completed (moved to the history) or unknown: only a refresh can tell.
                if shown and shown not in _TERMINAL_NAMES:
                    viewer.refresh = True
                if visible is not None:
                    del viewer.tasks[(framework_id, task_id)]  # Nothing to follow.
                continue
            if visible is not None and (fw is None or not visible.can_view_task(task, fw.info)):
                del viewer.tasks[(framework_id, task_id)]
                continue
            state = mesos_pb2.TaskState.Name(task.state)  # type: ignore[arg-type]
            if state != shown:
                self._batch.tasks[(framework_id, task_id)] = state
        return True

    async def stream(self, viewer: Viewer) -> AsyncIterator[bytes]:
        """The SSE bytes for ``viewer`` until its stream ends (disconnects it at the end)."""
        try:
            while True:
                try:
                    message = await asyncio.wait_for(viewer.queue.get(), PING_SECONDS)
                except TimeoutError:
                    yield b": ping\n\n"
                    continue
                if message is None:
                    return
                yield message
        finally:
            self.disconnect(viewer)

    # -- the subscription -------------------------------------------------------------------

    def _stop(self, keep: asyncio.Task[Any] | None = None) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            if task is not keep:
                task.cancel()
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
        self._master = None

    async def _pump(self, subscription: Any) -> None:
        try:
            async for event in subscription:
                self.observe(event)
        except asyncio.CancelledError:
            raise
        except Exception:
            _log.exception("the UI's operator event subscription failed")
        # The stream ended: the master stopped leading (or stops).
        if self._subscription is subscription:
            self._end()

    def _end(self) -> None:
        """The subscription's term is over: close every viewer's stream and stop."""
        for viewer in self.viewers.values():
            while viewer.queue.full():
                viewer.queue.get_nowait()
            viewer.queue.put_nowait(None)
        self.viewers.clear()
        self._stop(keep=asyncio.current_task())

    def observe(self, event: dict[str, Any]) -> None:
        """Fold one operator event into the pending batch."""
        kind = event.get("type")
        batch = self._batch
        if kind == "TASK_UPDATED":
            body = event["task_updated"]
            key = (_value(body, "framework_id"), _value(body.get("status", {}), "task_id"))
            state = str(body.get("state", ""))
            if self._live.get(key) == state:
                return  # as in task_updated: nothing a page shows changed
            batch.tasks[key] = state
            self._count(key, state)
        elif kind == "TASK_ADDED":
            task = event["task_added"]["task"]
            key = (_value(task, "framework_id"), _value(task, "task_id"))
            state = str(task.get("state", ""))
            batch.tasks[key] = state
            batch.added += 1
            self._count(key, state)
        elif kind == "AGENT_ADDED":
            batch.agents.add(_value(event["agent_added"]["agent"].get("agent_info", {}), "id"))
        elif kind == "AGENT_REMOVED":
            batch.agents.add(_value(event["agent_removed"], "agent_id"))
        elif kind in ("FRAMEWORK_ADDED", "FRAMEWORK_UPDATED"):
            body = event[kind.lower()]["framework"]
            batch.frameworks.add(_value(body.get("framework_info", {}), "id"))
        elif kind == "FRAMEWORK_REMOVED":
            batch.frameworks.add(_value(event["framework_removed"]["framework_info"], "id"))
        else:
            return
        self._changed = True

    # -- raw listening (master.core.history.Watcher): the same folding, from the objects ------

    def task_added(self, task: Task) -> None:
        """TASK_ADDED, heard in-process."""
        key = (task.framework_id, task.task_id)
        state = _STATE_NAMES[task.state]
        self._batch.tasks[key] = state
        self._batch.added += 1
        self._batch.added_tasks.append(task)
        self._count(key, state)
        self._changed = True

    def task_updated(self, task: Task, status: mesos_pb2.TaskStatus) -> None:
        """TASK_UPDATED, heard in-process.

        An update that leaves a live task in its state (a running task's health or data
        update, the commonest kind) changes nothing a page shows: one lookup, nothing batched.
        """
        key = (task.framework_id, task.task_id)
        state = _STATE_NAMES[task.state]
        if self._live.get(key) == state:
            return
        self._batch.tasks[key] = state
        self._count(key, state)
        self._changed = True

    def framework_added(self, fw: Framework) -> None:
        """FRAMEWORK_ADDED, heard in-process."""
        self._batch.frameworks.add(fw.framework_id)
        self._changed = True

    def framework_updated(self, fw: Framework) -> None:
        """FRAMEWORK_UPDATED, heard in-process."""
        self._batch.frameworks.add(fw.framework_id)
        self._changed = True

    def framework_removed(self, info: mesos_pb2.FrameworkInfo) -> None:
        """FRAMEWORK_REMOVED, heard in-process."""
        self._batch.frameworks.add(info.id.value)
        self._changed = True

    def agent_added(self, agent: Agent) -> None:
        """AGENT_ADDED, heard in-process."""
        self._batch.agents.add(agent.agent_id)
        self._changed = True

    def agent_removed(self, agent_id: str) -> None:
        """AGENT_REMOVED, heard in-process."""
        self._batch.agents.add(agent_id)
        self._changed = True

    def _count(self, key: TaskKey, state: str) -> None:
        """Move task ``key`` to ``state`` in the live counts (terminal: out of them)."""
        live, counts = self._live, self._counts
        old = live.get(key)
        if old == state:
            return
        if old is not None:
            counts[old] -= 1
        if state in _TERMINAL_NAMES:
            live.pop(key, None)
        else:
            live[key] = state
            counts[state] = counts.get(state, 0) + 1

    def _recount(self, master: Master) -> None:
        """Count the live tasks' states from the state machine (the events keep them after)."""
        self._counts = live_task_counts(master)
        name = mesos_pb2.TaskState.Name
        self._live = {
            (task.framework_id, task.task_id): name(task.state)  # type: ignore[arg-type]
            for fw in master.state.frameworks.values()
            for task in fw.tasks.values()
            if task.state not in TERMINAL_STATES
        }

    def _gauges(self, master: Master, batch: _Batch) -> dict[str, float]:
        """The overview's figures, as ``/metrics/snapshot`` names them."""
        if batch.agents or batch.frameworks or not self._herds:
            self._herds = herd_counts(master)
        return gauges(master, self._counts, self._herds)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            if self._leading_master() is not self._master:
                self._end()  # a new term (or none): pages reload from the leader
                return
            try:
                self.flush()
            except Exception:
                _log.exception("the UI's live flush failed")

    # -- flushing ---------------------------------------------------------------------------

    def flush(self) -> None:
        """Send every viewer what changed since the last flush (see the module docstring)."""
        batch, self._batch = self._batch, _Batch()
        common: dict[str, Any] = {}
        now = self._clock()
        master = self._leading_master()
        if master is not None and now - self._counted_at >= self._recount_every:
            self._counted_at = now
            self._recount(master)
            self._changed = True
        if self._changed and master is not None:
            self._changed = False
            common["metrics"] = self._gauges(master, batch)
        if master is not None and now - self._sampled_at >= self._sample_every:
            # The samples the master recorded since the last ones sent, read from its ring:
            # GET_UTILIZATION would also measure the cluster afresh (a pass over every agent
            # and task) for a figure the charts do not need every few seconds.
            self._sampled_at = now
            recorded = master.state.history.utilization.since(self._last_sample or None)
            if recorded:
                common["samples"] = [sample.to_dict() for sample in recorded]
                self._last_sample = float(recorded[-1].time)
        if batch.added:
            common["new_tasks"] = batch.added
        if batch.agents:
            common["agents"] = sorted(batch.agents)
        if batch.frameworks:
            common["frameworks"] = sorted(batch.frameworks)
        shared = json.dumps(common, separators=(",", ":"))[1:-1]
        restricted: str | None = None
        # Each approver's part, worked out once per flush: the viewers of one principal share
        # one approver.
        parts: dict[int, dict[str, Any]] = {}
        for viewer in list(self.viewers.values()):
            mine: dict[str, Any] = {}
            mine_shared = shared
            if viewer.visible is not None:
                if restricted is None:
                    rest = {k: v for k, v in common.items() if k not in ("new_tasks", "frameworks")}
                    restricted = json.dumps(rest, separators=(",", ":"))[1:-1]
                mine_shared = restricted
                part = parts.get(id(viewer.visible))
                if part is None:
                    part = parts[id(viewer.visible)] = _visible_part(master, viewer.visible, batch)
                mine.update(part)
            if viewer.tasks and batch.tasks:
                mine["tasks"] = _watched(viewer.tasks, batch.tasks)
                if not mine["tasks"]:
                    del mine["tasks"]
            if viewer.refresh:
                mine["refresh"] = True
                viewer.refresh = False
            if viewer.lost:
                mine["resync"] = True
                viewer.lost = False
            if not mine and not mine_shared:
                continue
            personal = json.dumps(mine, separators=(",", ":"))[1:-1]
            body = "{" + ",".join(p for p in (mine_shared, personal) if p) + "}"
            viewer.send(b"event: batch\ndata: " + body.encode() + b"\n\n")
        self.flushes += 1


def _visible_part(master: Master | None, visible: Visibility, batch: _Batch) -> dict[str, Any]:
    """A restricted viewer's ``new_tasks`` and ``frameworks``: those it may see."""
    out: dict[str, Any] = {}
    if master is None:
        return out
    state = master.state
    infos = {fid: framework_info_of(state, fid) for fid in batch.frameworks}
    frameworks = sorted(
        fid for fid, info in infos.items() if info is not None and visible.can_view_framework(info)
    )
    if frameworks:
        out["frameworks"] = frameworks
    added = 0
    for task in batch.added_tasks:
        info = framework_info_of(state, task.framework_id)
        added += info is not None and visible.can_view_task(task, info)
    if added:
        out["new_tasks"] = added
    return out


def _watched(watch: dict[TaskKey, str], changed: dict[TaskKey, str]) -> list[list[str]]:
    """The changed tasks among the watched ones, updating the states the page now shows."""
    out: list[list[str]] = []
    small, large = (watch, changed) if len(watch) <= len(changed) else (changed, watch)
    for key in small:
        if key in large:
            state = changed[key]
            if watch[key] != state:
                watch[key] = state
                out.append([key[0], key[1], state])
    return out


def _message(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()
