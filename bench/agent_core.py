"""The agent's core alone: how long ``handle`` takes per task as the number of tasks grows.

``python -m bench.agent_core --tasks N`` feeds one agent core (no runtime, no I/O) N RunTasks of
small command tasks from one framework, as one large ACCEPT would, then starts every container,
ends every one and acknowledges every update. It prints one JSON object: the seconds each phase
took (``launch_s``, ``start_s``, ``finish_s``), the microseconds per task of each, and
``launch_last_us``: the time of the last 10 % of the launches per task, against
``launch_first_us`` of the first 10 %. A core whose per-launch work grows with what it already
holds shows a last/first ratio well above 1; that once made one ACCEPT of 5,000 tasks keep an
agent busy long enough to miss its pings (issue 10).
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Sequence

from agent.core import (
    AgentState,
    ContainerExit,
    CoreSettings,
    RetrySchedule,
    events,
    handle,
)
from agent.core.effects import Effect, ForwardUpdate, LaunchContainer
from bench._common import emit, machine, rounded
from protos.resources import Resources
from protos.v1 import agent_internal_pb2, mesos_pb2

FRAMEWORK = "bench-fw"


def _run_task(task_id: str) -> events.MasterMessageReceived:
    message = agent_internal_pb2.MasterMessage()
    run = message.run_task
    run.framework_info.name = "bench"
    run.framework_info.id.value = FRAMEWORK
    run.framework_id.value = FRAMEWORK
    task = run.task
    task.name = task_id
    task.task_id.value = task_id
    task.command.value = "true"
    task.resources.extend(Resources.parse("cpus:0.001;mem:1").to_protos())
    return events.MasterMessageReceived(message)


def _ack(status: mesos_pb2.TaskStatus) -> events.MasterMessageReceived:
    message = agent_internal_pb2.MasterMessage()
    ack = message.status_update_acknowledgement
    ack.framework_id.value = FRAMEWORK
    ack.task_id.value = status.task_id.value
    ack.uuid = status.uuid
    return events.MasterMessageReceived(message)


def _registered() -> events.MasterMessageReceived:
    message = agent_internal_pb2.MasterMessage()
    message.agent_registered.agent_id.value = "bench-agent"
    return events.MasterMessageReceived(message)


def measure(tasks: int) -> dict[str, object]:
    """Run the benchmark for ``tasks`` tasks; return its figures."""
    ids = itertools.count()
    state = AgentState(
        Resources.parse(f"cpus:{tasks};mem:{tasks * 2}"),
        mesos_pb2.AgentInfo(hostname="bench"),
        CoreSettings(status_update_retry=RetrySchedule(10, 600)),
        new_uuid=lambda: next(ids).to_bytes(16, "big"),
        new_container_id=lambda: f"c{next(ids)}",
    )
    handle(state, _registered(), 0.0)
    messages = [_run_task(f"task-{i}") for i in range(tasks)]
    containers: list[str] = []
    durations: list[float] = []
    start = time.perf_counter()
    for message in messages:
        before = time.perf_counter()
        effects = handle(state, message, 1.0)
        durations.append(time.perf_counter() - before)
        containers += [e.container_id for e in effects if isinstance(e, LaunchContainer)]
    launch_s = time.perf_counter() - start

    def acknowledge(effects: Sequence[Effect], now: float) -> None:
        for effect in effects:
            if isinstance(effect, ForwardUpdate):
                acknowledge(handle(state, _ack(effect.status), now), now)

    start = time.perf_counter()
    for container_id in containers:
        acknowledge(handle(state, events.ContainerLaunched(container_id), 2.0), 2.0)
    start_s = time.perf_counter() - start
    start = time.perf_counter()
    for container_id in containers:
        exit = events.ContainerExited(container_id, ContainerExit(status=0))
        acknowledge(handle(state, exit, 3.0), 3.0)
    finish_s = time.perf_counter() - start
    assert len(containers) == tasks, f"only {len(containers)} of {tasks} tasks were launched"
    assert state.frameworks == {}, "tasks left on the agent"
    assert state.faults == 0, state.last_fault
    tenth = max(1, tasks // 10)
    first_us = sum(durations[:tenth]) / tenth * 1e6
    last_us = sum(durations[-tenth:]) / tenth * 1e6
    return {
        "tasks": tasks,
        "launch_s": rounded(launch_s),
        "start_s": rounded(start_s),
        "finish_s": rounded(finish_s),
        "launch_us_per_task": rounded(launch_s / tasks * 1e6, 1),
        "start_us_per_task": rounded(start_s / tasks * 1e6, 1),
        "finish_us_per_task": rounded(finish_s / tasks * 1e6, 1),
        "launch_first_us": rounded(first_us, 1),
        "launch_last_us": rounded(last_us, 1),
        "machine": machine(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments, measure, print the JSON figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.agent_core", description=__doc__)
    parser.add_argument("--tasks", type=int, default=5000, help="tasks to launch (default 5000)")
    args = parser.parse_args(argv)
    if args.tasks < 1:
        parser.error("--tasks must be at least 1")
    emit(measure(args.tasks))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
