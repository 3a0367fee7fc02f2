"""hello_framework: runs N command tasks ``echo hello $i`` with the classic Mesos driver.

::

    python -m examples.hello_framework --master 127.0.0.1:5050 --tasks 10
    emporion local --run "python -m examples.hello_framework --tasks 10"   # (EMPORION_MASTER)

Each task takes ``cpus:0.1;mem:32``. Offers are packed with as many tasks as fit; once every
task is launched the framework suppresses offers, and when every task reached a terminal state
it tears itself down and prints a JSON summary (a failed task with its state, reason and
message). The exit status is 0 when every task finished, 130 after Ctrl-C. Written as a Mesos
Python framework would be: only the imports differ; the command line is shared with the other
examples (:mod:`examples.common`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from examples.common import (
    INTERRUPTED,
    add_master_argument,
    failure_text,
    run_driver,
    setup_logging,
)
from framework_sdk import ClientConfig, Scheduler, SchedulerDriver, Status, messages
from protos.resources import Resources

TASK_RESOURCES = Resources.parse("cpus:0.1;mem:32")


class HelloScheduler(Scheduler):
    """Launches ``total`` ``echo`` tasks and stops the driver when all are done."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.launched = 0
        self.finished: set[str] = set()
        self.failed: dict[str, str] = {}  # task id -> state (reason): message
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
            self.failed[task_id] = failure_text(status)
        if len(self.finished) + len(self.failed) >= self.total:
            driver.stop()

    def error(self, driver: SchedulerDriver, message: str) -> None:
        """Keep the master's message for the summary."""
        self.errors.append(message)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m examples.hello_framework")
    add_master_argument(parser)
    parser.add_argument("--tasks", type=int, default=5, help="how many tasks to run")
    parser.add_argument("--name", default="hello-framework", help="the framework's name")
    parser.add_argument("--user", default="", help="run the tasks as this user [yours]")
    parser.add_argument("--timeout", type=float, default=None, help="abort after this many seconds")
    args = parser.parse_args(argv)
    if args.tasks < 1:
        parser.error("--tasks must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the framework; print a JSON summary; 0 when every task finished."""
    args = parse_args(argv)
    setup_logging()
    scheduler = HelloScheduler(args.tasks)
    info = messages.framework_info(args.name, user=args.user)
    # EMPORION_SDK_* variables tune the client (EMPORION_SDK_CONNECT_TIMEOUT_SECONDS: how long
    # to try an unreachable master before giving up).
    driver = SchedulerDriver(scheduler, info, args.master, config=ClientConfig.from_env())
    outcome = run_driver(driver, args.timeout)
    if outcome.interrupted:
        return INTERRUPTED
    status = outcome.status
    if outcome.timed_out:
        scheduler.errors.append(f"timed out after {args.timeout:g}s (--timeout)")
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
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Before the driver ran: nothing to stop.
        sys.exit(INTERRUPTED)
