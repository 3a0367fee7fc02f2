"""A pymesos scheduler written as pymesos's README and examples write one, run unmodified.

``python pymesos_scheduler.py MASTER TASKS [COMMAND [kill]]`` (MASTER: ``HOST:PORT`` or
``zk://...``) launches TASKS command tasks (COMMAND, by default an ``echo``), as many per offer
as fit, suppresses offers once all are launched, asks for implicit reconciliation when it
registers, acknowledges every update (pymesos's implicit acknowledgements), and when all are
TASK_FINISHED (with ``kill``: killed once running, TASK_KILLED) prints one JSON line (the states
seen, the master pymesos registered with) and stops. It compares states with strings, reads
resources as dicts and port ranges as numbers, as pymesos code does against Mesos.
"""

from __future__ import annotations

import getpass
import json
import logging
import socket
import sys
import threading
import uuid
from typing import Any

from addict import Dict  # type: ignore[import-untyped, import-not-found, unused-ignore]
from pymesos import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
    MesosSchedulerDriver,
    Scheduler,
)

TASK_CPU = 0.1
TASK_MEM = 32


class MinimalScheduler(Scheduler):  # type: ignore[misc]
    """Launches ``total`` echo tasks and stops the driver when all have finished."""

    def __init__(self, total: int, command: str, kill: bool) -> None:
        self.total = total
        self.command = command
        self.kill = kill
        self.done_state = "TASK_KILLED" if kill else "TASK_FINISHED"
        self.launched = 0
        self.finished: set[str] = set()
        self.states: list[str] = []
        self.ports: list[int] = []
        self.master_info: dict[str, Any] = {}
        self.lock = threading.Lock()

    def registered(self, driver: Any, framework_id: Any, master_info: Any) -> None:
        self.master_info = dict(master_info)
        logging.info("registered as %s", framework_id.value)
        driver.reconcileTasks([])

    def reregistered(self, driver: Any, master_info: Any) -> None:
        self.master_info = dict(master_info)
        logging.info("reregistered with %s", master_info)

    def getResource(self, res: Any, name: str) -> float:
        for r in res:
            if r.name == name:
                return float(r.scalar.value)
        return 0.0

    def resourceOffers(self, driver: Any, offers: Any) -> None:
        filters = {"refuse_seconds": 1}
        for offer in offers:
            for r in offer.resources:
                if r.name == "ports":
                    # Mesos writes 64-bit integers as JSON numbers: arithmetic works.
                    self.ports.append(r.ranges.range[0].end - r.ranges.range[0].begin)
            cpus = self.getResource(offer.resources, "cpus")
            mem = self.getResource(offer.resources, "mem")
            tasks: list[Any] = []
            with self.lock:
                while (
                    self.launched < self.total
                    and cpus >= TASK_CPU * (len(tasks) + 1)
                    and mem >= TASK_MEM * (len(tasks) + 1)
                ):
                    task = Dict()
                    task_id = str(uuid.uuid4())
                    task.task_id.value = task_id
                    task.agent_id.value = offer.agent_id.value
                    task.name = f"task {task_id}"
                    task.command.value = self.command
                    task.resources = [
                        {"name": "cpus", "type": "SCALAR", "scalar": {"value": TASK_CPU}},
                        {"name": "mem", "type": "SCALAR", "scalar": {"value": TASK_MEM}},
                    ]
                    tasks.append(task)
                    self.launched += 1
            if tasks:
                driver.launchTasks(offer.id, tasks, filters)
            else:
                driver.declineOffer(offer.id, filters)
            if self.launched == self.total:
                driver.suppressOffers()

    def statusUpdate(self, driver: Any, update: Any) -> None:
        logging.info("status update %s %s", update.task_id.value, update.state)
        with self.lock:
            self.states.append(update.state)
            if update.state == "TASK_RUNNING" and self.kill:
                driver.killTask(update.task_id)
            elif update.state == self.done_state:
                self.finished.add(update.task_id.value)
                if len(self.finished) == self.total:
                    driver.stop()
            elif update.state in (
                "TASK_FAILED",
                "TASK_LOST",
                "TASK_ERROR",
                "TASK_DROPPED",
                "TASK_FINISHED",
                "TASK_KILLED",
            ):
                logging.error("task %s: %s %s", update.task_id.value, update.state, update)
                driver.stop()


def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    master, total = sys.argv[1], int(sys.argv[2])
    command = sys.argv[3] if len(sys.argv) > 3 else "echo hello from pymesos"
    kill = sys.argv[4:5] == ["kill"]
    framework = Dict()
    framework.user = getpass.getuser()
    framework.name = "MinimalFramework"
    framework.hostname = socket.gethostname()
    scheduler = MinimalScheduler(total, command, kill)
    driver = MesosSchedulerDriver(scheduler, framework, master, use_addict=True)
    driver.run()
    print(
        json.dumps(
            {
                "finished": len(scheduler.finished),
                "states": sorted(set(scheduler.states)),
                "ports": scheduler.ports[:1],
                "master_info": scheduler.master_info,
                "version": driver.version,
            }
        ),
        flush=True,
    )
    return 0 if len(scheduler.finished) == total else 1


if __name__ == "__main__":
    raise SystemExit(main())
