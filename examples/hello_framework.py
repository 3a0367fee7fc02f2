"""hello_framework: runs N command tasks ``echo hello $i`` with the classic Mesos driver.

::

    python -m examples.hello_framework --master 127.0.0.1:5050 --tasks 10

Each task takes ``cpus:0.1;mem:32``. Offers are packed with as many tasks as fit; once every
task is launched the framework suppresses offers, and when every task reached a terminal state
it tears itself down and prints a JSON summary. The exit status is 0 when every task finished.
Written as a Mesos Python framework would be: only the imports differ.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from examples.driver_timeout import run_with_timeout
from framework_sdk import Scheduler, SchedulerDriver, Status, messages
from protos.resources import Resources

TASK_RESOURCES = Resources.parse("cpus:0.1;mem:32")


class HelloScheduler(Scheduler):
    """Launches ``total`` ``echo`` tasks and stops the driver when all are done."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.launched = 0
        self.finished: set[str] = set()
        self.failed: dict[str, str] = {}  # task id -> terminal state name
        self.framework_id = ""
        self.errors: list[str] = []

    def registered(
        self,
        driver: SchedulerDriver,
        frameworkId: messages.FrameworkID,
        masterInfo: messages.MasterInfo,
    ) -> None:
        """Remember the framework id for the summary."""
        self.framework_id = frameworkId.value

    def resourceOffers(self, driver: SchedulerDriver, offers: list[messages.Offer]) -> None:
        """Pack tasks into the offers; decline what is not needed."""
        for offer in offers:
            available = messages.offer_resources(offer)
            tasks = []
            while self.launched < self.total and available.contains(TASK_RESOURCES):
                i = self.launched
                tasks.append(
                    messages.task_info(
                        f"hello-{i}", offer, TASK_RESOURCES, command=f"echo hello {i}"
                    )
                )
                self.launched += 1
                available -= TASK_RESOURCES
            if tasks:
                driver.launchTasks([offer.id], tasks)
            else:
                driver.declineOffer(offer.id, messages.filters(refuse_seconds=60))
        if self.launched == self.total:
            driver.suppressOffers()

    def statusUpdate(self, driver: SchedulerDriver, status: messages.TaskStatus) -> None:
        """Count terminal states (once per task: updates may repeat); stop when all are done."""
        task_id = status.task_id.value
        if task_id in self.finished or task_id in self.failed:
            return
        if status.state == messages.TASK_FINISHED:
            self.finished.add(task_id)
        elif messages.is_terminal(status.state):
            self.failed[task_id] = messages.state_name(status.state)
        if len(self.finished) + len(self.failed) >= self.total:
            driver.stop()

    def error(self, driver: SchedulerDriver, message: str) -> None:
        """Keep the master's message for the summary."""
        self.errors.append(message)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m examples.hello_framework")
    parser.add_argument("--master", required=True, help="the master's host:port")
    parser.add_argument("--tasks", type=int, default=5, help="how many tasks to run")
    parser.add_argument("--name", default="hello-framework", help="the framework's name")
    parser.add_argument("--timeout", type=float, default=None, help="abort after this many seconds")
    args = parser.parse_args(argv)
    if args.tasks < 1:
        parser.error("--tasks must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the framework; print a JSON summary; 0 when every task finished."""
    args = parse_args(argv)
    scheduler = HelloScheduler(args.tasks)
    driver = SchedulerDriver(scheduler, messages.framework_info(args.name), args.master)
    status = run_with_timeout(driver, args.timeout)
    summary = {
        "framework_id": scheduler.framework_id,
        "tasks": args.tasks,
        "launched": scheduler.launched,
        "finished": len(scheduler.finished),
        "failed": scheduler.failed,
        "errors": scheduler.errors,
        "status": status.name,
    }
    print(json.dumps(summary, sort_keys=True))
    return 0 if status is Status.DRIVER_STOPPED and len(scheduler.finished) == args.tasks else 1


if __name__ == "__main__":
    sys.exit(main())
