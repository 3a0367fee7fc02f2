"""Status: a driver's state, as driver methods return it (the values of Mesos's ``mesos.Status``).

Kept in its own module, free of I/O, so that :mod:`framework_sdk.messages` can offer the same
members (``messages.DRIVER_STOPPED``) that the drivers return.
"""

from __future__ import annotations

import enum

from protos.v1 import mesos_pb2

__all__ = ["Status"]


class Status(enum.IntEnum):
    """Status of a driver: DRIVER_NOT_STARTED=1, DRIVER_RUNNING=2, DRIVER_ABORTED=3,
    DRIVER_STOPPED=4, as in Mesos."""

    DRIVER_NOT_STARTED = mesos_pb2.DRIVER_NOT_STARTED
    DRIVER_RUNNING = mesos_pb2.DRIVER_RUNNING
    DRIVER_ABORTED = mesos_pb2.DRIVER_ABORTED
    DRIVER_STOPPED = mesos_pb2.DRIVER_STOPPED
