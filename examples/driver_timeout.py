"""run_with_timeout: what the classic-driver examples do with ``--timeout``.

Mesos's driver has no timeout of its own: ``run()`` returns once the scheduler stopped (or
aborted) the driver. An example must not hang on a cluster that never offers what it needs, so
a timer aborts the driver when the time is up, and ``run()`` then returns DRIVER_ABORTED.
"""

from __future__ import annotations

import threading

from framework_sdk import SchedulerDriver, Status

__all__ = ["run_with_timeout"]


def run_with_timeout(driver: SchedulerDriver, timeout: float | None) -> Status:
    """``driver.run()``, aborting the driver after ``timeout`` seconds (None: no limit)."""
    timer = None
    if timeout is not None:
        timer = threading.Timer(timeout, driver.abort)
        timer.daemon = True
        timer.start()
    try:
        return driver.run()
    finally:
        if timer is not None:
            timer.cancel()
