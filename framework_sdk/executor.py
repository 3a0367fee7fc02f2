"""Executor: the base class of a framework's own executor, with Mesos's classic callbacks.

Override the callbacks you need; every one is a no-op by default. An
:class:`~framework_sdk.executor_driver.ExecutorDriver` calls them one at a time, in event order,
on its callback thread, so an executor needs no locking for state touched only there (work it
starts on threads of its own is another matter). Names and arguments are Mesos's
(``mesos.interface.Executor``), so porting a Mesos executor only changes its imports; ids and
infos are v1 messages (``AgentInfo`` where Mesos had ``SlaveInfo``).

Task groups: Mesos's classic API has no callback for them. Here a LAUNCH_GROUP event calls
:meth:`Executor.launchTaskGroup`, whose default calls :meth:`Executor.launchTask` for each task
of the group in order; override it to start a group's tasks together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from protos.v1 import mesos_pb2

if TYPE_CHECKING:
    from framework_sdk.executor_driver import ExecutorDriver

__all__ = ["Executor"]


class Executor:
    """Executor receives what the agent asks of an executor; subclass it and override.

    A callback that raises aborts the driver (as Mesos's Python bindings do): the traceback is
    logged and ``driver.join()`` returns ``DRIVER_ABORTED``.
    """

    def registered(
        self,
        driver: ExecutorDriver,
        executorInfo: mesos_pb2.ExecutorInfo,
        frameworkInfo: mesos_pb2.FrameworkInfo,
        agentInfo: mesos_pb2.AgentInfo,
    ) -> None:
        """The executor subscribed to its agent for the first time; launches follow."""

    def reregistered(self, driver: ExecutorDriver, agentInfo: mesos_pb2.AgentInfo) -> None:
        """The executor subscribed again after a disconnection (e.g. the agent restarted).

        The driver resent every unacknowledged update in SUBSCRIBE; nothing was lost.
        """

    def disconnected(self, driver: ExecutorDriver) -> None:
        """The connection to the agent broke.

        With checkpointing (``MESOS_CHECKPOINT=1``) the driver subscribes again for up to
        ``MESOS_RECOVERY_TIMEOUT`` (then ``shutdown`` is called); tasks should keep running, and
        status updates sent meanwhile are delivered after :meth:`reregistered`. Without
        checkpointing ``shutdown`` follows at once.
        """

    def launchTask(self, driver: ExecutorDriver, task: mesos_pb2.TaskInfo) -> None:
        """Run ``task``; send TASK_RUNNING (or TASK_FAILED) with ``driver.sendStatusUpdate``.

        Do long work on a thread of your own: callbacks run one at a time, and a busy
        ``launchTask`` delays every event behind it (kills and shutdown included).
        """

    def launchTaskGroup(self, driver: ExecutorDriver, taskGroup: mesos_pb2.TaskGroupInfo) -> None:
        """Run the tasks of ``taskGroup`` together (not in Mesos's classic API; see the module
        docstring). By default calls :meth:`launchTask` for each task, in order."""
        for task in taskGroup.tasks:
            self.launchTask(driver, task)

    def killTask(self, driver: ExecutorDriver, taskId: mesos_pb2.TaskID) -> None:
        """Kill the task, then send its terminal update (usually TASK_KILLED).

        Until that update the task keeps its resources; a task never reported stays RUNNING.
        """

    def frameworkMessage(self, driver: ExecutorDriver, message: bytes) -> None:
        """The scheduler sent opaque data (best effort: messages can be lost)."""

    def shutdown(self, driver: ExecutorDriver) -> None:
        """Kill every task and send their terminal updates (TASK_KILLED); then return.

        Called when the agent sends SHUTDOWN, or when the agent was lost for good. When it
        returns, the driver sends what is still queued and stops; the agent kills the executor
        after ``MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD`` if it is still running then.
        """

    def error(self, driver: ExecutorDriver, message: str) -> None:
        """An error. After an ERROR event from the agent, or a subscription the agent never
        accepted, the driver has already aborted when this runs. A status update or message
        the agent refused also lands here (with the agent's message), without aborting."""
