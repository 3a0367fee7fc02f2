"""What the web UI's live hub costs the master per task update, measured in-process.

``python -m bench.ui_hub [--tasks 100000] [--viewers 10] [--rate 5000] [--seconds 5]``

:mod:`bench.ui` measures the whole master with a browser attached, but on a small shared
machine its windows differ in pace and load by more than the UI costs, and py-spy's samples of
a thread that the OS preempted while holding the GIL land on whatever line it was on. This
benchmark isolates the UI's part: a real master state machine (:class:`master.core.Master`,
in-memory registry), the real operator event hub and the real :class:`LiveHub` with
``--viewers`` viewers each watching 50 tasks (what the tasks page shows), then the master's
own listener path (``History`` -> operator events -> ``LiveHub.task_updated``) called for
``--rate`` task updates per simulated second, every one a state change (the worst case: the
hub batches it), and one flush per second. CPU time is the thread's own (``time.thread_time``),
so preemption does not count.

Printed (one JSON object): ``listener_us_per_update`` (baseline of the same loop without the
hub subtracted), ``flush_ms`` (one flush to every viewer), ``cpu_ms_per_second`` at ``--rate``,
and ``share_of_a_core``. Compare with :mod:`bench.ui`'s ``master_cpu_<n>_viewers`` (the
master's whole CPU at that pace) for the UI's share of the master.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench._common import emit, machine, rounded
from master.config import MasterConfig
from master.core import Master
from master.core.ids import IdGenerator
from master.core.model import Task
from master.http.operator import OperatorApi
from master.http.ui.live import LiveHub
from master.registry import MemoryRegistry
from protos.resources import Resources
from protos.v1 import mesos_pb2

RUNNING, STARTING = mesos_pb2.TASK_RUNNING, mesos_pb2.TASK_STARTING
WATCHED_PER_VIEWER = 50
"""Rows on one page of the tasks page."""


@dataclass
class _View:
    """The read-only face of a master that leads (:class:`master.http.view.MasterView`)."""

    master: Master
    master_id: str = "bench"
    version: str = "bench"
    start_time: float = 0.0
    elected_time: float | None = 0.0

    def leading_master(self) -> Master | None:
        return self.master

    def leader_http_address(self) -> str | None:
        return None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.ui_hub", description=__doc__)
    parser.add_argument("--tasks", type=int, default=100_000, help="live tasks")
    parser.add_argument("--viewers", type=int, default=10, help="live pages")
    parser.add_argument("--rate", type=int, default=5000, help="task updates per second")
    parser.add_argument("--seconds", type=int, default=5, help="simulated seconds")
    ns = parser.parse_args(argv)
    if ns.tasks < 1 or ns.viewers < 1 or ns.rate < 1 or ns.seconds < 1:
        parser.error("--tasks, --viewers, --rate and --seconds must be >= 1")
    return ns


def _loop(tasks: list[Task], updates: int, start: int, notify: Any) -> float:
    """Thread CPU seconds of ``updates`` state changes from ``start`` on, each told to
    ``notify`` (None: changed but told to no one, the baseline)."""
    status = mesos_pb2.TaskStatus()
    count = len(tasks)
    began = time.thread_time()
    for n in range(start, start + updates):
        task = tasks[n % count]
        task.state = STARTING if task.state == RUNNING else RUNNING
        if notify is not None:
            notify(task, status)
    return time.thread_time() - began


async def measure(ns: argparse.Namespace) -> dict[str, Any]:
    """Set up the master and the hub; time the listener and the flushes."""
    master = Master(MasterConfig(registry="memory"), ids=IdGenerator(master_id="bench"))
    master.recover(MemoryRegistry().load(), time.time())
    view = _View(master)
    hub = LiveHub(OperatorApi(view), view.leading_master, interval=3600.0)
    tasks = [
        Task(
            task_id=f"t{i}",
            framework_id="fw",
            agent_id=f"a{i % 1000}",
            executor_id=None,
            role="*",
            resources=Resources.parse("cpus:0.01;mem:1"),
            state=RUNNING,
        )
        for i in range(ns.tasks)
    ]
    viewers = [hub.connect() for _ in range(ns.viewers)]
    for index, viewer in enumerate(viewers):
        first = index * WATCHED_PER_VIEWER
        watched = [("fw", f"t{i % ns.tasks}", "TASK_RUNNING") for i in range(first, first + 50)]
        hub.watch(viewer.viewer_id, watched, [], [])
    notify = master.state.history.watcher
    assert notify is not None, "the hub listens while a viewer is connected"
    listener = baseline = flushes = 0.0
    position = 0
    for _ in range(ns.seconds):
        baseline += _loop(tasks, ns.rate, position, None)
        position += ns.rate
        listener += _loop(tasks, ns.rate, position, notify.task_updated)
        position += ns.rate
        began = time.thread_time()
        hub.flush()
        flushes += time.thread_time() - began
        for viewer in viewers:
            while not viewer.queue.empty():
                viewer.queue.get_nowait()
    for viewer in viewers:
        hub.disconnect(viewer)
    updates = ns.rate * ns.seconds
    per_update = max(0.0, listener - baseline) / updates
    flush = flushes / ns.seconds
    per_second = per_update * ns.rate + flush
    return {
        "listener_us_per_update": rounded(per_update * 1e6, 2),
        "flush_ms": rounded(flush * 1e3, 3),
        "cpu_ms_per_second": rounded(per_second * 1e3, 2),
        "share_of_a_core": rounded(per_second, 4),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print one JSON object."""
    ns = parse_args(argv)
    figures: dict[str, Any] = {
        "benchmark": "ui_hub",
        "tasks": ns.tasks,
        "viewers": ns.viewers,
        "rate": ns.rate,
        "seconds": ns.seconds,
    }
    figures.update(asyncio.run(measure(ns)))
    figures.update(machine())
    emit(figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
