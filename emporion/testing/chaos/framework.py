"""A real framework (the SDK's asyncio client) that runs a job and records every status update.

:class:`RecordingFramework` checkpoints (``checkpoint=True``, ``failover_timeout`` 300 s by
default, so its tasks outlive agent restarts and master failovers), packs as many of its tasks
as fit into each offer, and once every task is launched either keeps declining offers (for 1 s
each: the master offers everything again and again, as to a framework that never suppresses,
and a new leader offers it every reregistering agent at once) or, with ``suppress``, suppresses
offers. It acknowledges every
update that carries a uuid, and records, per task, every update it received (answers to its own
reconciliation requests, which carry no uuid, are kept apart): the first terminal
update settles the task, each further terminal update is a *duplicate* (at-least-once delivery
makes those legal; the suite counts them), and a terminal state outside the task's expected
states (``TASK_FINISHED`` for a task left alone) makes the task *lost*.

A launch whose call failed (no leader, a failover: the SDK cannot say whether the master got it)
is launched again from a later offer under a new id (``<id>.r<n>``): the first id is marked
``launch_failed`` and is missing only if an update for it proves the master did take it. A
launch the master accepted is the master's to carry out: if no terminal update for it ever
comes, the task is *missing*, which the suite reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from framework_sdk import (
    ClientConfig,
    SchedulerClient,
    SchedulerSDKError,
    events,
    messages,
)
from protos.resources import Resources
from protos.v1 import mesos_pb2

__all__ = ["FRAMEWORK_CONFIG", "RecordingFramework", "TaskRecord"]

FRAMEWORK_CONFIG = ClientConfig(
    backoff_initial_seconds=0.05, backoff_max_seconds=0.5, subscribe_timeout_seconds=5.0
)
"""Reconnect fast: the suite measures the cluster's recovery, not the framework's backoff."""


@dataclass
class TaskRecord:
    """Everything one task's framework learned about it."""

    task_id: str
    expected: frozenset[int]
    launched_at: float | None = None
    launch_failed: bool = False
    """The LAUNCH call failed; the task went out again under another id."""
    agent_id: str = ""
    states: list[int] = field(default_factory=list)
    terminal: list[int] = field(default_factory=list)
    """Every terminal update received (reconciliation answers excluded), in order."""
    described: list[str] = field(default_factory=list)
    """Each terminal update as ``STATE (REASON: message)``, for reports."""

    @property
    def settled(self) -> bool:
        """A terminal update arrived."""
        return bool(self.terminal)

    @property
    def owed(self) -> bool:
        """A terminal update is owed to the framework: the launch got through (or may have)."""
        return not self.launch_failed or bool(self.states)

    @property
    def lost(self) -> bool:
        """A terminal update said something other than what the task should end with."""
        return any(state not in self.expected for state in self.terminal)

    @property
    def first_unexpected(self) -> str:
        """The first terminal update outside ``expected``, described ("" if none)."""
        for state, described in zip(self.terminal, self.described, strict=True):
            if state not in self.expected:
                return described
        return ""

    @property
    def duplicates(self) -> int:
        """Terminal updates beyond the first."""
        return max(0, len(self.terminal) - 1)


class RecordingFramework:
    """Runs ``tasks`` tasks of ``command`` named ``<name>-<i>``, recording every update.

    ``master`` is an address or a ``zk://`` URL. ``expected`` maps a task id to the terminal
    states it may end in (default ``{TASK_FINISHED}``); :meth:`expect` changes it later (a
    scenario that kills a task expects TASK_FAILED for it).
    """

    def __init__(
        self,
        master: str,
        name: str,
        tasks: int,
        command: str,
        *,
        resources: str = "cpus:0.1;mem:32",
        failover_timeout: float = 300.0,
        suppress: bool = False,
    ) -> None:
        if tasks < 0:
            raise ValueError(f"tasks must be >= 0, not {tasks}")
        self.name = name
        self.command = command
        self.task_resources = Resources.parse(resources)
        self._resources_text = resources
        info = messages.framework_info(name, failover_timeout=failover_timeout, checkpoint=True)
        self.client = SchedulerClient(master, info, config=FRAMEWORK_CONFIG)
        finished = frozenset({mesos_pb2.TASK_FINISHED})
        self.tasks = {f"{name}-{i}": TaskRecord(f"{name}-{i}", finished) for i in range(tasks)}
        self.commands: dict[str, str] = {}
        """Commands of tasks that do not run ``command`` (set before :meth:`start`)."""
        self.queue = list(reversed(self.tasks))
        """Tasks not launched yet (the next one last)."""
        self.relaunches = 0
        """Launches put back in the queue because the call did not get through."""
        self.reconciled: dict[str, int] = {}
        """The latest reconciliation answer per task (diagnostics, not deliveries)."""
        self.subscribed_at: list[tuple[float, str]] = []
        """``(time.monotonic(), master id)`` of each SUBSCRIBED."""
        self.disconnects = 0
        self.updates = 0
        self.started_at = time.monotonic()
        """Status updates received (reconciliation answers excluded)."""
        self.errors: list[str] = []
        self.suppress = suppress
        self._suppressed = False
        self._changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    # -- lifecycle --

    async def start(self) -> None:
        """Subscribe; then read events (and launch) in the background."""
        await self.client.start()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def close(self, teardown: bool = True) -> None:
        """Tear the framework down (unless told not to) and close the client."""
        if teardown:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.client.teardown(), 10.0)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self.client.close()

    def expect(self, task_id: str, states: Iterable[int]) -> None:
        """The terminal states ``task_id`` may now end in."""
        self.tasks[task_id].expected = frozenset(states)

    # -- events --

    async def _read(self) -> None:
        async for event in self.client.events():
            try:
                await self._handle(event)
            except SchedulerSDKError as error:
                # A call lost with the master: an ACK's update is sent again by the agent.
                self.errors.append(f"{type(error).__name__}: {error}")
            self._changed.set()

    async def _handle(self, event: events.Event) -> None:
        match event:
            case events.Subscribed(master_info=info):
                self.subscribed_at.append((time.monotonic(), info.id if info else ""))
                if self._suppressed and self.queue:
                    await self.client.revive()
                    self._suppressed = False
            case events.Disconnected():
                self.disconnects += 1
            case events.Offers(offers=offers):
                await self._offers(offers)
            case events.Update(status=status):
                self._record(status)
                if status.uuid:
                    await self.client.acknowledge(status)

    def _record(self, status: mesos_pb2.TaskStatus) -> None:
        record = self.tasks.get(status.task_id.value)
        if record is None:
            self.errors.append(f"update for an unknown task {status.task_id.value!r}")
            return
        if status.reason == mesos_pb2.TaskStatus.REASON_RECONCILIATION and not status.uuid:
            # The master's answer to a RECONCILE (no uuid, nothing to acknowledge). An agent's
            # answer to the master's reconciliation (a task it does not know) carries a uuid:
            # that one is a delivery, and counts.
            self.reconciled[record.task_id] = status.state
            return
        record.states.append(status.state)
        self.updates += 1
        if messages.is_terminal(status.state):
            record.terminal.append(status.state)
            record.described.append(
                f"{messages.state_name(status.state)} ({messages.reason_name(status.reason)}:"
                f" {status.message[:200]})"
            )

    async def _offers(self, offers: Iterable[mesos_pb2.Offer]) -> None:
        unused = []
        for offer in offers:
            available = messages.offer_resources(offer)
            batch: list[mesos_pb2.TaskInfo] = []
            while self.queue and available.contains(self.task_resources):
                task_id = self.queue.pop()
                batch.append(
                    messages.task_info(
                        task_id,
                        offer,
                        self._resources_text,
                        command=self.commands.get(task_id.split(".r")[0], self.command),
                    )
                )
                available = available - self.task_resources
            if not batch:
                unused.append(offer.id)
                continue
            try:
                await self.client.launch([offer.id], batch)
            except SchedulerSDKError:
                for task in batch:
                    self._relaunch(self.tasks[task.task_id.value])
                raise
            now = time.monotonic()
            for task in batch:
                record = self.tasks[task.task_id.value]
                record.launched_at = now
                record.agent_id = offer.agent_id.value
        if unused:
            await self.client.decline(unused, messages.filters(refuse_seconds=1.0))
        if self.suppress and not self.queue and not self._suppressed:
            self._suppressed = True
            await self.client.suppress()

    def _relaunch(self, record: TaskRecord) -> None:
        record.launch_failed = True
        self.relaunches += 1
        task_id = f"{record.task_id.split('.r')[0]}.r{self.relaunches}"
        self.tasks[task_id] = TaskRecord(task_id, record.expected)
        self.queue.append(task_id)

    # -- waiting --

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``predicate()`` holds (checked after every event); whether it did."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while not predicate():
                    self._changed.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), 0.5)
                return True
        return predicate()

    def count(self, state: int) -> int:
        """Tasks whose latest update is ``state``."""
        return sum(1 for r in self.tasks.values() if r.states and r.states[-1] == state)

    def settled(self) -> int:
        """Tasks that got a terminal update."""
        return sum(1 for r in self.tasks.values() if r.settled)

    def all_settled(self) -> bool:
        """Every task owed a terminal update got one."""
        return all(r.settled for r in self.tasks.values() if r.owed)

    def subscribed_to(self, master_id: str) -> bool:
        """The latest subscription is with the master ``master_id``."""
        return bool(self.subscribed_at) and self.subscribed_at[-1][1] == master_id

    async def reconcile_unsettled(self, wait: float = 3.0) -> dict[str, str]:
        """Ask the master about every task without a terminal update; its answers, by name."""
        open_ids = [r.task_id for r in self.tasks.values() if r.owed and not r.settled]
        if not open_ids:
            return {}
        with contextlib.suppress(Exception):
            await self.client.reconcile(open_ids)
            await self.wait_for(lambda: all(t in self.reconciled for t in open_ids), wait)
        return {
            t: messages.state_name(self.reconciled[t]) if t in self.reconciled else "no answer"
            for t in open_ids
        }

    def _describe(self, record: TaskRecord) -> str:
        launched = "never launched"
        if record.launched_at is not None:
            launched = f"launched {record.launched_at - self.started_at:.1f}s in"
        states = ", ".join(messages.state_name(s) for s in record.states) or "no update"
        return f"agent {record.agent_id or '?'}, {launched}: {states}"

    def summary(self) -> dict[str, object]:
        """Counts for the report: lost, missing, duplicates, and which tasks."""
        records = list(self.tasks.values())
        lost = [r for r in records if r.lost]
        missing = [r for r in records if r.owed and not r.settled]
        duplicated = [r for r in records if r.duplicates]
        states = Counter(messages.state_name(r.terminal[0]) for r in records if r.terminal)
        return {
            "tasks": sum(1 for r in records if r.owed),
            "tasks_lost": len(lost),
            "terminal_missing": len(missing),
            "duplicate_terminal_updates": sum(r.duplicates for r in records),
            "tasks_with_duplicates": len(duplicated),
            "terminal_states": dict(sorted(states.items())),
            "relaunched_after_failed_call": self.relaunches,
            "lost_reasons": dict(Counter(r.first_unexpected for r in lost).most_common()),
            "lost_examples": {r.task_id: r.described for r in lost[:5]},
            "missing_examples": {r.task_id: self._describe(r) for r in missing[:5]},
            "duplicate_examples": {
                r.task_id: f"agent {r.agent_id or '?'}: {'; '.join(r.described)}"
                for r in duplicated[:5]
            },
        }
