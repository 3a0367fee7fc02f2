"""Scheduler: the base class of a framework's scheduler, with Mesos's classic callbacks.

Override the callbacks you need; every one is a no-op by default. A
:class:`~framework_sdk.driver.SchedulerDriver` calls them one at a time, in event order, on its
callback thread, so a scheduler needs no locking of its own for state touched only there.
Names and arguments are Mesos's (``mesos.interface.Scheduler``), so porting a Mesos framework
only changes its imports; ids are v1 messages (``AgentID`` where Mesos had ``SlaveID``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from protos.v1 import mesos_pb2

if TYPE_CHECKING:
    from framework_sdk.driver import SchedulerDriver

__all__ = ["Scheduler"]


class Scheduler:
    """Scheduler receives a framework's events; subclass it and override what you need.

    A callback that raises aborts the driver (as Mesos's Python bindings do): the traceback is
    logged and ``driver.join()`` returns ``DRIVER_ABORTED``.
    """

    def registered(
        self,
        driver: SchedulerDriver,
        frameworkId: mesos_pb2.FrameworkID,
        masterInfo: mesos_pb2.MasterInfo,
    ) -> None:
        """The driver subscribed for the first time; ``frameworkId`` is the framework's id.

        Also called when this scheduler took over (failed over) an existing framework.
        """

    def reregistered(self, driver: SchedulerDriver, masterInfo: mesos_pb2.MasterInfo) -> None:
        """The driver subscribed again after a disconnection (possibly to a new master).

        Offers from before are void; a reconciliation of running tasks is advisable now.
        """

    def disconnected(self, driver: SchedulerDriver) -> None:
        """The connection to the master broke; the driver is reconnecting with backoff."""

    def resourceOffers(self, driver: SchedulerDriver, offers: list[mesos_pb2.Offer]) -> None:
        """New offers: launch tasks on them (``driver.launchTasks``) or decline them.

        An offer stays valid until accepted, declined or rescinded; unused parts of an
        accepted offer are declined.
        """

    def offerRescinded(self, driver: SchedulerDriver, offerId: mesos_pb2.OfferID) -> None:
        """An offer is no longer valid (its agent left, it timed out...); do not use it."""

    def statusUpdate(self, driver: SchedulerDriver, status: mesos_pb2.TaskStatus) -> None:
        """A task changed state. Updates are at-least-once: handle repeats idempotently.

        With implicit acknowledgements the driver acknowledges the update when this returns.
        """

    def frameworkMessage(
        self,
        driver: SchedulerDriver,
        executorId: mesos_pb2.ExecutorID,
        agentId: mesos_pb2.AgentID,
        message: bytes,
    ) -> None:
        """An executor sent opaque data (best effort: messages can be lost)."""

    def slaveLost(self, driver: SchedulerDriver, agentId: mesos_pb2.AgentID) -> None:
        """An agent was lost (its tasks' updates follow). Mesos's name is kept for porting."""

    def executorLost(
        self,
        driver: SchedulerDriver,
        executorId: mesos_pb2.ExecutorID,
        agentId: mesos_pb2.AgentID,
        status: int,
    ) -> None:
        """An executor exited; ``status`` is its wait status."""

    def error(self, driver: SchedulerDriver, message: str) -> None:
        """An error: the master's message.

        After an ERROR event from the master (framework removed, another scheduler took over)
        the driver is already aborted when this runs. A call the master refused also lands here
        (with the master's message) without aborting the driver.
        """
