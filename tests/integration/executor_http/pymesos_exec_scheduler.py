"""A pymesos scheduler that runs its tasks with a pymesos executor (``pymesos_executor.py``).

``python pymesos_exec_scheduler.py MASTER TASKS`` launches TASKS tasks on one custom executor
(one executor per agent, as pymesos frameworks do), sends the executor a framework message and
waits for its answer and for every task to finish, then prints one JSON line.
"""

from __future__ import annotations

import getpass
import json
import logging
import socket
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

from addict import Dict  # type: ignore[import-untyped, import-not-found, unused-ignore]
from pymesos import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
    MesosSchedulerDriver,
    Scheduler,
    decode_data,
    encode_data,
)

EXECUTOR = Path(__file__).with_name("pymesos_executor.py")
ROOT = Path(__file__).resolve().parents[3]


class ExecutorScheduler(Scheduler):  # type: ignore[misc]
    """Launches ``total`` tasks on its executor, talks to it, stops when all finished."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.launched = 0
        self.finished: dict[str, str] = {}
        self.states: list[str] = []
        self.messages: list[str] = []
        self.failures: list[str] = []
        self.sent = False
        self.lock = threading.Lock()
        self.executor = Dict()
        self.executor.executor_id.value = "pymesos-executor"
        self.executor.name = "pymesos executor"
        self.executor.command.value = f"cd {ROOT} && {sys.executable} {EXECUTOR}"
        self.executor.resources = [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 64}},
        ]

    def resourceOffers(self, driver: Any, offers: Any) -> None:
        for offer in offers:
            tasks: list[Any] = []
            with self.lock:
                while self.launched < self.total and len(tasks) < 2:
                    task = Dict()
                    task.task_id.value = str(uuid.uuid4())
                    task.agent_id.value = offer.agent_id.value
                    task.name = f"task {self.launched}"
                    task.executor = self.executor
                    task.data = encode_data(f"payload-{self.launched}".encode())
                    task.resources = [
                        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                        {"name": "mem", "type": "SCALAR", "scalar": {"value": 16}},
                    ]
                    tasks.append(task)
                    self.launched += 1
            if tasks:
                driver.launchTasks(offer.id, tasks, {"refuse_seconds": 1})
            else:
                driver.declineOffer(offer.id, {"refuse_seconds": 1})

    def statusUpdate(self, driver: Any, update: Any) -> None:
        with self.lock:
            self.states.append(update.state)
            if update.state == "TASK_RUNNING" and not self.sent:
                self.sent = True
                driver.sendFrameworkMessage(
                    self.executor.executor_id, update.agent_id, encode_data(b"hello executor")
                )
            if update.state == "TASK_FINISHED":
                self.finished[update.task_id.value] = decode_data(update.data).decode()
            elif update.state in ("TASK_FAILED", "TASK_LOST", "TASK_ERROR", "TASK_DROPPED"):
                self.failures.append(f"{update.state}: {update.get('message', '')}")
                driver.stop()
            self._maybe_stop(driver)

    def frameworkMessage(self, driver: Any, executor_id: Any, agent_id: Any, data: Any) -> None:
        with self.lock:
            self.messages.append(decode_data(data).decode())
            self._maybe_stop(driver)

    def _maybe_stop(self, driver: Any) -> None:
        if len(self.finished) == self.total and self.messages:
            driver.stop()


def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    master, total = sys.argv[1], int(sys.argv[2])
    framework = Dict()
    framework.user = getpass.getuser()
    framework.name = "PymesosExecutorFramework"
    framework.hostname = socket.gethostname()
    scheduler = ExecutorScheduler(total)
    driver = MesosSchedulerDriver(scheduler, framework, master, use_addict=True)
    driver.run()
    print(
        json.dumps(
            {
                "finished": scheduler.finished,
                "states": sorted(set(scheduler.states)),
                "messages": scheduler.messages,
                "failures": scheduler.failures,
            }
        ),
        flush=True,
    )
    ok = len(scheduler.finished) == total and not scheduler.failures
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
