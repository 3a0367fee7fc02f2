"""A framework for the operator API tests: runs N command tasks that exit with a given status.

::

    python -m tests.integration.master_http.exiting_framework --master HOST:PORT --status 3

Built on framework_sdk only (as a Mesos Python framework would be). Once every task reached a
terminal state it stops the driver (which tears the framework down) and prints the states.
"""

from __future__ import annotations

import argparse
import json
import sys

from examples.driver_timeout import run_with_timeout
from framework_sdk import Scheduler, SchedulerDriver, messages
from protos.resources import Resources

TASK_RESOURCES = Resources.parse("cpus:0.1;mem:32")


class ExitingScheduler(Scheduler):
    """Launches ``total`` tasks running ``command``; stops when all ended."""

    def __init__(self, total: int, command: str) -> None:
        self.total, self.command = total, command
        self.launched = 0
        self.ended: dict[str, str] = {}

    def resourceOffers(self, driver: SchedulerDriver, offers: list[messages.Offer]) -> None:
        """Pack the tasks into the first offers; decline the rest."""
        for offer in offers:
            available = messages.offer_resources(offer)
            tasks = []
            while self.launched < self.total and available.contains(TASK_RESOURCES):
                name = f"exit-{self.launched}"
                tasks.append(messages.task_info(name, offer, TASK_RESOURCES, command=self.command))
                self.launched += 1
                available -= TASK_RESOURCES
            if tasks:
                driver.launchTasks([offer.id], tasks)
            else:
                driver.declineOffer(offer.id, messages.filters(refuse_seconds=60))
        if self.launched == self.total:
            driver.suppressOffers()

    def statusUpdate(self, driver: SchedulerDriver, status: messages.TaskStatus) -> None:
        """Record terminal states; stop once every task ended."""
        if messages.is_terminal(status.state):
            self.ended[status.task_id.value] = messages.state_name(status.state)
        if len(self.ended) >= self.total:
            driver.stop()


def main() -> int:
    """Run the framework; print the terminal states as JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--master", required=True)
    parser.add_argument("--tasks", type=int, default=2)
    parser.add_argument("--status", type=int, default=3)
    parser.add_argument("--command", default=None, help="instead of exit STATUS")
    args = parser.parse_args()
    scheduler = ExitingScheduler(args.tasks, args.command or f"exit {args.status}")
    driver = SchedulerDriver(scheduler, messages.framework_info("exiting"), args.master)
    run_with_timeout(driver, 60.0)
    print(json.dumps(scheduler.ended, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
