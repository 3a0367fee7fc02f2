"""A pymesos executor written as pymesos's README writes one, run unmodified by an agent.

Each task: TASK_RUNNING, the task's data written to stderr, TASK_FINISHED with the data
reversed as its ``data``; a task whose data is ``wait`` finishes only once a file ``go`` is in
the sandbox. A framework message is answered with the same bytes upper-cased.
"""

from __future__ import annotations

import os
import sys
import time
from threading import Thread
from typing import Any

from pymesos import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
    Executor,
    MesosExecutorDriver,
    decode_data,
    encode_data,
)


class MinimalExecutor(Executor):  # type: ignore[misc]
    """Runs each task in a thread, as the README's MinimalExecutor does."""

    def launchTask(self, driver: Any, task: Any) -> None:
        def run_task(task: Any) -> None:
            update = {
                "task_id": {"value": task["task_id"]["value"]},
                "state": "TASK_RUNNING",
                "timestamp": time.time(),
            }
            driver.sendStatusUpdate(update)
            data = decode_data(task["data"])
            print(data, file=sys.stderr, flush=True)
            while data == b"wait" and not os.path.exists("go"):
                time.sleep(0.05)
            update = {
                "task_id": {"value": task["task_id"]["value"]},
                "state": "TASK_FINISHED",
                "timestamp": time.time(),
                "data": encode_data(data[::-1]),
            }
            driver.sendStatusUpdate(update)

        Thread(target=run_task, args=(task,), daemon=True).start()

    def frameworkMessage(self, driver: Any, message: Any) -> None:
        driver.sendFrameworkMessage(encode_data(decode_data(message).upper()))


if __name__ == "__main__":
    MesosExecutorDriver(MinimalExecutor(), use_addict=True).run()
