"""The scheduler half of :mod:`examples.custom_executor`: launch tasks, play ping-pong, count.

Each task gets its own executor (``pingpong-<task>``, ``cpus:0.1;mem:128`` on top of the task's
``cpus:0.1;mem:32``), started by the agent from the ExecutorInfo's command: this Python
(``--python``) running ``-m examples.custom_executor.executor`` with ``PYTHONPATH`` set to the
checkout holding this file (``--pythonpath``). Framework messages are best effort; on a
healthy cluster none is lost, and a lost one shows up as a task that never finishes (use
``--timeout``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from examples.driver_timeout import run_with_timeout
from framework_sdk import Scheduler, SchedulerDriver, Status, messages
from protos.resources import Resources

TASK_RESOURCES = Resources.parse("cpus:0.1;mem:32")
EXECUTOR_RESOURCES = Resources.parse("cpus:0.1;mem:128")
ROOT = Path(__file__).resolve().parents[2]
EXECUTOR_MODULE = "examples.custom_executor.executor"

log = logging.getLogger("examples.custom_executor")


def executor_info(
    executor_id: str, role: str | None, python: str = sys.executable, pythonpath: str = str(ROOT)
) -> messages.ExecutorInfo:
    """The ExecutorInfo running :mod:`examples.custom_executor.executor` for one task."""
    info = messages.ExecutorInfo(type=messages.ExecutorInfo.CUSTOM, name="ping-pong executor")
    info.executor_id.value = executor_id
    info.command.shell = False
    info.command.value = python
    info.command.arguments.extend([python, "-m", EXECUTOR_MODULE])
    info.command.environment.variables.add(name="PYTHONPATH", value=pythonpath)
    info.resources.extend(messages.parse_resources(EXECUTOR_RESOURCES, allocation_role=role))
    return info


@dataclass
class _Task:
    """What the scheduler knows of one task."""

    executor_id: messages.ExecutorID
    agent_id: messages.AgentID
    pings_sent: int = 0
    pongs: int = 0
    state: str = "TASK_STAGING"


@dataclass
class PingPongScheduler(Scheduler):
    """Launches ``total`` tasks with the ping-pong executor; stops when all are terminal."""

    total: int
    pings: int
    python: str = sys.executable
    pythonpath: str = str(ROOT)
    framework_id: str = ""
    launched: int = 0
    tasks: dict[str, _Task] = field(default_factory=dict)
    by_executor: dict[str, str] = field(default_factory=dict)  # executor id -> task id
    finished: set[str] = field(default_factory=set)
    failed: dict[str, str] = field(default_factory=dict)  # task id -> terminal state name
    errors: list[str] = field(default_factory=list)

    @property
    def pongs(self) -> int:
        """Pongs received, over all tasks."""
        return sum(task.pongs for task in self.tasks.values())

    def registered(
        self,
        driver: SchedulerDriver,
        frameworkId: messages.FrameworkID,
        masterInfo: messages.MasterInfo,
    ) -> None:
        """Remember the framework id for the summary."""
        self.framework_id = frameworkId.value

    def resourceOffers(self, driver: SchedulerDriver, offers: list[messages.Offer]) -> None:
        """Launch as many tasks (each with its executor) as fit; decline the rest."""
        need = TASK_RESOURCES + EXECUTOR_RESOURCES
        for offer in offers:
            available = messages.offer_resources(offer)
            role = offer.allocation_info.role if offer.HasField("allocation_info") else None
            launch = []
            while self.launched < self.total and available.contains(need):
                task_id = f"ping-pong-{self.launched}"
                executor = executor_info(f"pingpong-{task_id}", role, self.python, self.pythonpath)
                launch.append(messages.task_info(task_id, offer, TASK_RESOURCES, executor=executor))
                self.tasks[task_id] = _Task(executor.executor_id, offer.agent_id)
                self.by_executor[executor.executor_id.value] = task_id
                self.launched += 1
                available -= need
            if launch:
                driver.launchTasks([offer.id], launch)
            else:
                driver.declineOffer(offer.id, messages.filters(refuse_seconds=60))
        if self.launched == self.total:
            driver.suppressOffers()

    def statusUpdate(self, driver: SchedulerDriver, status: messages.TaskStatus) -> None:
        """Start the ping-pong on TASK_RUNNING; count terminal states (updates may repeat)."""
        task_id = status.task_id.value
        task = self.tasks.get(task_id)
        if task is None or task_id in self.finished or task_id in self.failed:
            return
        task.state = messages.state_name(status.state)
        if status.state == messages.TASK_RUNNING and task.pings_sent == 0:
            self._ping(driver, task)
        elif status.state == messages.TASK_FINISHED:
            self.finished.add(task_id)
        elif messages.is_terminal(status.state):
            self.failed[task_id] = f"{task.state}: {status.message}"
        if len(self.finished) + len(self.failed) >= self.total:
            driver.stop()

    def frameworkMessage(
        self,
        driver: SchedulerDriver,
        executorId: messages.ExecutorID,
        agentId: messages.AgentID,
        message: bytes,
    ) -> None:
        """``pong N`` from an executor: count it, then ping again or tell it to finish."""
        task = self.tasks.get(self.by_executor.get(executorId.value, ""))
        words = message.decode(errors="replace").split()
        if task is None or len(words) != 2 or words[0] != "pong":
            log.warning("unexpected message from %s: %r", executorId.value, message)
            return
        if words[1] != str(task.pings_sent) or task.pongs >= task.pings_sent:
            return  # A repeat of an answer already counted.
        task.pongs += 1
        if task.pings_sent < self.pings:
            self._ping(driver, task)
        else:
            driver.sendFrameworkMessage(task.executor_id, task.agent_id, b"finish")

    def _ping(self, driver: SchedulerDriver, task: _Task) -> None:
        task.pings_sent += 1
        data = f"ping {task.pings_sent}".encode()
        driver.sendFrameworkMessage(task.executor_id, task.agent_id, data)

    def error(self, driver: SchedulerDriver, message: str) -> None:
        """Keep the master's message for the summary."""
        self.errors.append(message)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m examples.custom_executor")
    parser.add_argument("--master", required=True, help="the master's host:port")
    parser.add_argument("--tasks", type=int, default=2, help="how many tasks (executors) to run")
    parser.add_argument("--pings", type=int, default=3, help="ping-pong rounds per task")
    parser.add_argument("--name", default="custom-executor-example", help="framework name")
    parser.add_argument("--timeout", type=float, default=None, help="abort after this many s")
    parser.add_argument("--python", default=sys.executable, help="Python the agent runs")
    parser.add_argument("--pythonpath", default=str(ROOT), help="PYTHONPATH of the executor")
    parser.add_argument(
        "--checkpoint", action="store_true", help="checkpointing framework (survives restarts)"
    )
    args = parser.parse_args(argv)
    if args.tasks < 1:
        parser.error("--tasks must be at least 1")
    if args.pings < 1:
        parser.error("--pings must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the framework; print a JSON summary; 0 when every task finished with all its pongs."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    scheduler = PingPongScheduler(args.tasks, args.pings, args.python, args.pythonpath)
    info = messages.framework_info(args.name, checkpoint=args.checkpoint)
    driver = SchedulerDriver(scheduler, info, args.master)
    status = run_with_timeout(driver, args.timeout)
    summary = {
        "framework_id": scheduler.framework_id,
        "tasks": args.tasks,
        "launched": scheduler.launched,
        "finished": len(scheduler.finished),
        "failed": scheduler.failed,
        "pongs": scheduler.pongs,
        "errors": scheduler.errors,
        "status": status.name,
    }
    print(json.dumps(summary, sort_keys=True))
    ok = len(scheduler.finished) == args.tasks and scheduler.pongs == args.tasks * args.pings
    return 0 if status is Status.DRIVER_STOPPED and ok else 1
