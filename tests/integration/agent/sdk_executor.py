"""A custom executor written with ``framework_sdk``, run by the agent in integration tests.

Each launched task goes RUNNING, then FINISHED when its ``data`` is ``finish``; KILL makes it
KILLED; framework messages come back prefixed with ``echo:``.
"""

from __future__ import annotations

import sys

from framework_sdk.executor import Executor
from framework_sdk.executor_driver import ExecutorDriver
from protos.v1 import mesos_pb2


def status(task_id: mesos_pb2.TaskID, state: mesos_pb2.TaskState.ValueType) -> mesos_pb2.TaskStatus:
    update = mesos_pb2.TaskStatus(state=state)
    update.task_id.CopyFrom(task_id)
    return update


class EchoExecutor(Executor):
    """Runs nothing: reports its tasks' states as told and echoes messages."""

    def launchTask(self, driver: ExecutorDriver, task: mesos_pb2.TaskInfo) -> None:
        driver.sendStatusUpdate(status(task.task_id, mesos_pb2.TASK_RUNNING))
        if task.data == b"finish":
            driver.sendStatusUpdate(status(task.task_id, mesos_pb2.TASK_FINISHED))

    def killTask(self, driver: ExecutorDriver, taskId: mesos_pb2.TaskID) -> None:
        driver.sendStatusUpdate(status(taskId, mesos_pb2.TASK_KILLED))

    def frameworkMessage(self, driver: ExecutorDriver, message: bytes) -> None:
        driver.sendFrameworkMessage(b"echo:" + message)


if __name__ == "__main__":
    sys.exit(0 if ExecutorDriver(EchoExecutor()).run().name == "DRIVER_STOPPED" else 1)
