"""OperatorEvents: the live operator event stream (SUBSCRIBE), fanned out to subscribers.

While at least one subscriber exists, the hub is the :class:`~master.core.history.Watcher` of
the leading master's history: the core tells it of each change as it happens, the hub builds the
event's JSON **once** and appends it to every subscriber's queue. With no subscriber the watcher
is unset and the core builds nothing (one attribute test per change).

In-process listeners (:meth:`OperatorEvents.listen`: the web UI) are told of the same changes
with the changed objects themselves; the hub builds no JSON for them.

A subscription may carry a :class:`~master.core.operator_json.Visibility` (the subscriber's
``view_frameworks`` / ``view_tasks`` ACLs): it is then never sent an event about a framework or
task it may not see (TASK_ADDED, TASK_UPDATED, FRAMEWORK_ADDED/UPDATED/REMOVED), and its
SUBSCRIBED state leaves them out. The event is still built once; each restricted subscriber
costs one cached check per event.

Each subscriber's queue is bounded (``queue_limit`` events): one that falls further behind is
dropped (its iteration ends, :attr:`EventSubscription.dropped` says why), never buffered without
bound. A subscription also ends when its master stops leading (a new term builds a new state
machine: subscribers reconnect, as Mesos's do after a failover) and sends HEARTBEAT every
``heartbeat_interval`` seconds of silence.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from master.core import Agent, Framework, Master, Task
from master.core.history import Watcher
from master.core.operator_json import (
    Visibility,
    agent_v1,
    framework_info_of,
    framework_v1,
    proto_json,
    task_status_v1,
    task_v1,
)
from master.core.operator_views import get_state
from master.http.leadership import NotLeadingError
from master.http.view import MasterView
from protos.v1 import mesos_pb2

__all__ = [
    "DEFAULT_QUEUE_LIMIT",
    "HEARTBEAT_SECONDS",
    "EventSubscription",
    "Listening",
    "OperatorEvents",
]

log = logging.getLogger("master.http.operator")

JSON = dict[str, Any]

HEARTBEAT_SECONDS = 15.0
"""Seconds of silence after which a subscriber gets HEARTBEAT (Mesos's interval)."""

DEFAULT_QUEUE_LIMIT = 10_000
"""Events a subscriber may fall behind before it is dropped."""

_LEADERSHIP_CHECK_SECONDS = 1.0
"""How often an idle subscription checks that its master still leads."""

_state_name = mesos_pb2.TaskState.Name


class EventSubscription:
    """EventSubscription is one subscriber: ``async for event in sub`` yields event dicts.

    The first is SUBSCRIBED. The dicts are shared with the other subscribers: read-only.
    """

    def __init__(
        self, hub: OperatorEvents, master: Master, limit: int, visible: Visibility | None = None
    ) -> None:
        self.master = master
        self.visible = visible
        """What this subscriber may see (None: everything)."""
        self._hub = hub
        self._limit = limit
        self._queue: deque[JSON] = deque()
        self._wakeup = asyncio.Event()
        self._closed = False
        self.dropped: str | None = None
        """Why the subscription ended, when the hub ended it (None while it runs)."""

    def push(self, event: JSON) -> None:
        """Queue ``event`` (the hub's side); drop the subscriber if it is too far behind."""
        if self._closed:
            return
        if len(self._queue) >= self._limit:
            self.end(f"the subscriber fell more than {self._limit} events behind")
            return
        self._queue.append(event)
        self._wakeup.set()

    def end(self, reason: str) -> None:
        """End the subscription from the hub's side, saying why."""
        if not self._closed:
            self.dropped = reason
            log.info("operator event subscriber dropped: %s", reason)
        self.close()

    def close(self) -> None:
        """Stop receiving events: the iteration ends at once (what is queued is dropped)."""
        if self._closed:
            return
        self._closed = True
        self._queue.clear()
        self._wakeup.set()
        self._hub.forget(self)

    @property
    def closed(self) -> bool:
        """Whether the subscription ended."""
        return self._closed

    def __aiter__(self) -> AsyncIterator[JSON]:
        return self._events()

    async def _events(self) -> AsyncIterator[JSON]:
        hub = self._hub
        quiet_since = time.monotonic()
        while True:
            if self._queue:
                quiet_since = time.monotonic()
                yield self._queue.popleft()
                continue
            if self._closed:
                return
            if hub.view.leading_master() is not self.master:
                self.end("the master stopped leading")
                return
            wait = min(
                _LEADERSHIP_CHECK_SECONDS,
                max(0.0, quiet_since + hub.heartbeat_interval - time.monotonic()),
            )
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=wait)
            except TimeoutError:
                if time.monotonic() - quiet_since >= hub.heartbeat_interval:
                    quiet_since = time.monotonic()
                    yield {"type": "HEARTBEAT"}


def _guarded(build: Callable[..., JSON | None]) -> Callable[..., None]:
    """A watcher method: tells the in-process listeners, then (only if someone subscribes)
    publishes the event ``build`` returns; never raises into the core."""
    name = build.__name__

    def method(self: OperatorEvents, *args: Any) -> None:
        for listener in list(self._listeners):
            try:
                getattr(listener.watcher, name)(*args)
            except Exception:  # A listener's bug must not fail the master's input.
                log.exception("operator event listener %r failed on %s", listener.watcher, name)
        if not self._subscribers:
            return
        try:
            event = build(self, *args)
        except Exception:  # A bug here must not fail the master's input: log it, skip the event.
            log.exception("building the operator event %s failed", name)
            return
        if event is not None:
            self.publish(event, (name, args))

    method.__name__ = build.__name__
    method.__doc__ = build.__doc__
    return method


class Listening:
    """Listening is one in-process listener of :meth:`OperatorEvents.listen`; ``close()`` it."""

    def __init__(self, hub: OperatorEvents, master: Master, watcher: Watcher) -> None:
        self.master = master
        self.watcher = watcher
        self._hub = hub
        self.closed = False

    def close(self) -> None:
        """Stop hearing of changes."""
        if not self.closed:
            self.closed = True
            self._hub.forget(self)


class OperatorEvents:
    """OperatorEvents is the event hub of one master process (see the module docstring)."""

    def __init__(
        self,
        view: MasterView,
        *,
        heartbeat_interval: float = HEARTBEAT_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.view = view
        self.heartbeat_interval = heartbeat_interval
        self._clock = clock
        self._subscribers: set[EventSubscription] = set()
        self._listeners: set[Listening] = set()
        self._master: Master | None = None
        self.published = 0
        """Events built since the hub started (for tests and benchmarks)."""

    @property
    def subscribers(self) -> int:
        """How many subscriptions are open."""
        return len(self._subscribers)

    def subscribe(
        self,
        *,
        include_state: bool = True,
        queue_limit: int = DEFAULT_QUEUE_LIMIT,
        visible: Visibility | None = None,
    ) -> EventSubscription:
        """A new subscription whose first event is SUBSCRIBED (with the whole GET_STATE if
        ``include_state``), told only of what ``visible`` shows (None: everything). Raises
        NotLeadingError on a master that does not lead, ValueError for a ``queue_limit`` below
        1."""
        if queue_limit < 1:
            raise ValueError(f"queue_limit must be at least 1, got {queue_limit}")
        master = self._attach()
        subscription = EventSubscription(self, master, queue_limit, visible)
        subscribed: JSON = {"heartbeat_interval_seconds": self.heartbeat_interval}
        if include_state:
            subscribed["get_state"] = get_state(master, visible)
        subscription.push({"type": "SUBSCRIBED", "subscribed": subscribed})
        self._subscribers.add(subscription)
        return subscription

    def listen(self, watcher: Watcher) -> Listening:
        """Tell ``watcher`` (in-process: the web UI) of each change as it happens, with the
        changed objects themselves (the :class:`~master.core.history.Watcher` methods), so no
        JSON is built for it. Its methods run inside the master's input: they must be quick,
        only read what they are given, and never call back into the core (an exception is
        logged and ignored). Raises NotLeadingError on a master that does not lead; it hears
        nothing more once this master stops leading (``master`` tells which term it is of)."""
        master = self._attach()
        listening = Listening(self, master, watcher)
        self._listeners.add(listening)
        return listening

    def _attach(self) -> Master:
        master = self.view.leading_master()
        if master is None:
            raise NotLeadingError
        if self._master is not master:
            self._detach("the master stopped leading")
            self._master = master
        master.state.history.watcher = self
        return master

    @property
    def listeners(self) -> int:
        """How many in-process listeners are attached."""
        return len(self._listeners)

    def forget(self, subscription: EventSubscription | Listening) -> None:
        """A subscription or listener closed; the last one out unsets the watcher."""
        if isinstance(subscription, Listening):
            self._listeners.discard(subscription)
        else:
            self._subscribers.discard(subscription)
        if not self._subscribers and not self._listeners and self._master is not None:
            if self._master.state.history.watcher is self:
                self._master.state.history.watcher = None
            self._master = None

    def close(self, reason: str = "the master is shutting down") -> None:
        """End every subscription."""
        self._detach(reason)

    def _detach(self, reason: str) -> None:
        for subscription in list(self._subscribers):
            subscription.end(reason)
        for listening in list(self._listeners):
            listening.close()
        if self._master is not None and self._master.state.history.watcher is self:
            self._master.state.history.watcher = None
        self._master = None

    def publish(self, event: JSON, about: tuple[str, tuple[Any, ...]] | None = None) -> None:
        """Hand ``event`` to every subscriber that may see what it is ``about`` (the watcher
        method that built it and its arguments; None: every subscriber)."""
        self.published += 1
        for subscription in list(self._subscribers):
            visible = subscription.visible
            if visible is not None and about is not None and not self._shows(visible, *about):
                continue
            subscription.push(event)

    def _shows(self, visible: Visibility, name: str, args: tuple[Any, ...]) -> bool:
        """Whether ``visible`` shows the framework or task of the change ``name(*args)``."""
        if name in ("task_added", "task_updated"):
            task: Task = args[0]
            info = framework_info_of(self._state(), task.framework_id)
            return info is not None and visible.can_view_task(task, info)
        if name in ("framework_added", "framework_updated"):
            fw: Framework = args[0]
            return visible.can_view_framework(fw.info)
        if name == "framework_removed":
            removed: mesos_pb2.FrameworkInfo = args[0]
            return visible.can_view_framework(removed)
        return True  # Agents: not covered by the view_* ACLs.

    # -- the Watcher (master.core.history): one event per change --------------------------------

    def _state(self) -> Any:
        assert self._master is not None
        return self._master.state

    @_guarded
    def task_added(self, task: Task) -> JSON:
        """TASK_ADDED."""
        return {"type": "TASK_ADDED", "task_added": {"task": task_v1(task)}}

    @_guarded
    def task_updated(self, task: Task, status: mesos_pb2.TaskStatus) -> JSON:
        """TASK_UPDATED (``state``: the task's newest state)."""
        return {
            "type": "TASK_UPDATED",
            "task_updated": {
                "framework_id": {"value": task.framework_id},
                "status": task_status_v1(status),
                "state": _state_name(task.state),  # type: ignore[arg-type]
            },
        }

    @_guarded
    def framework_added(self, fw: Framework) -> JSON:
        """FRAMEWORK_ADDED."""
        framework = framework_v1(self._state(), fw)
        return {"type": "FRAMEWORK_ADDED", "framework_added": {"framework": framework}}

    @_guarded
    def framework_updated(self, fw: Framework) -> JSON:
        """FRAMEWORK_UPDATED."""
        framework = framework_v1(self._state(), fw)
        return {"type": "FRAMEWORK_UPDATED", "framework_updated": {"framework": framework}}

    @_guarded
    def framework_removed(self, info: mesos_pb2.FrameworkInfo) -> JSON:
        """FRAMEWORK_REMOVED."""
        return {
            "type": "FRAMEWORK_REMOVED",
            "framework_removed": {"framework_info": proto_json(info)},
        }

    @_guarded
    def agent_added(self, agent: Agent) -> JSON:
        """AGENT_ADDED."""
        return {"type": "AGENT_ADDED", "agent_added": {"agent": agent_v1(self._state(), agent)}}

    @_guarded
    def agent_removed(self, agent_id: str) -> JSON:
        """AGENT_REMOVED."""
        return {"type": "AGENT_REMOVED", "agent_removed": {"agent_id": {"value": agent_id}}}
