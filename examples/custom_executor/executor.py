"""The executor half of :mod:`examples.custom_executor`: answer pings, then finish the task.

Started by the agent as ``python -m examples.custom_executor.executor`` with the ``MESOS_*``
environment; run by hand it stops at once, naming the missing variable. It reports TASK_RUNNING
for each task it is given, answers every ``ping N`` message with ``pong N``, and on ``finish``
reports TASK_FINISHED for its tasks and exits. A killed task is reported TASK_KILLED; SHUTDOWN
kills every task. The exit status is 0 when the driver stopped normally.
"""

from __future__ import annotations

import logging
import sys

from framework_sdk import Status, messages
from framework_sdk.executor import Executor
from framework_sdk.executor_config import ExecutorEnvironmentError
from framework_sdk.executor_driver import ExecutorDriver

log = logging.getLogger("examples.custom_executor.executor")


def _update(
    task_id: messages.TaskID, state: messages.TaskState.ValueType, message: str = ""
) -> messages.TaskStatus:
    status = messages.TaskStatus(state=state, message=message)
    status.task_id.CopyFrom(task_id)
    return status


class PingPongExecutor(Executor):
    """Runs "tasks" that do nothing but play ping-pong with the scheduler."""

    def __init__(self) -> None:
        self.tasks: dict[str, messages.TaskInfo] = {}
        self.pongs = 0

    def registered(
        self,
        driver: ExecutorDriver,
        executorInfo: messages.ExecutorInfo,
        frameworkInfo: messages.FrameworkInfo,
        agentInfo: messages.AgentInfo,
    ) -> None:
        """Say where we run."""
        log.info(
            "executor %s of framework %s registered on agent %s",
            executorInfo.executor_id.value,
            frameworkInfo.id.value,
            agentInfo.id.value,
        )

    def launchTask(self, driver: ExecutorDriver, task: messages.TaskInfo) -> None:
        """Nothing to start: the task is running as soon as it is here."""
        self.tasks[task.task_id.value] = task
        driver.sendStatusUpdate(_update(task.task_id, messages.TASK_RUNNING))

    def frameworkMessage(self, driver: ExecutorDriver, message: bytes) -> None:
        """``ping N`` → ``pong N``; ``finish`` → TASK_FINISHED for every task, then exit."""
        text = message.decode(errors="replace")
        words = text.split()
        if len(words) == 2 and words[0] == "ping":
            self.pongs += 1
            driver.sendFrameworkMessage(f"pong {words[1]}".encode())
        elif text == "finish":
            for task in self.tasks.values():
                note = f"answered {self.pongs} pings"
                driver.sendStatusUpdate(_update(task.task_id, messages.TASK_FINISHED, note))
            self.tasks.clear()
            driver.stop()  # The update above is sent first.
        else:
            log.warning("ignoring message %r", message)

    def killTask(self, driver: ExecutorDriver, taskId: messages.TaskID) -> None:
        """Report the task killed; exit once no task is left."""
        if self.tasks.pop(taskId.value, None) is not None:
            driver.sendStatusUpdate(_update(taskId, messages.TASK_KILLED, "killed"))
        if not self.tasks:
            driver.stop()

    def shutdown(self, driver: ExecutorDriver) -> None:
        """Report every task killed (the driver stops when this returns)."""
        for task in self.tasks.values():
            driver.sendStatusUpdate(_update(task.task_id, messages.TASK_KILLED, "shut down"))
        self.tasks.clear()

    def error(self, driver: ExecutorDriver, message: str) -> None:
        """Log it; the driver has aborted if the error was fatal."""
        log.error("executor error: %s", message)


def main() -> int:
    """Run the executor until it finishes or is shut down; 0 when the driver stopped."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        driver = ExecutorDriver(PingPongExecutor())
    except ExecutorEnvironmentError as error:
        print(f"examples.custom_executor.executor: {error}", file=sys.stderr)
        return 2
    return 0 if driver.run() is Status.DRIVER_STOPPED else 1


if __name__ == "__main__":
    sys.exit(main())
