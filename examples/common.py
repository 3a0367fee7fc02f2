"""What every example's command line does the same way, so a person running one is never left
guessing.

* ``--master`` defaults to ``$EMPORION_MASTER`` (``emporion local --run`` sets it), and is
  required only when that is unset.
* Logging goes to stderr at WARNING: the SDK says there when it cannot reach the master, and
  the JSON summary on stdout stays the only thing there.
* A failed task is shown with its state, reason and the agent's message (say "running as user
  'root' needs root"), not just ``TASK_FAILED``.
* Ctrl-C ends the example quietly with exit status 130, as shells expect, after stopping the
  driver (which tears the framework and its tasks down).
* ``--timeout`` aborts the driver and says so in the summary's errors.
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
from dataclasses import dataclass

from framework_sdk import SchedulerDriver, Status, messages

__all__ = [
    "INTERRUPTED",
    "DriverOutcome",
    "add_master_argument",
    "failure_text",
    "run_driver",
    "setup_logging",
]

INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT), as shells report it."""


def add_master_argument(parser: argparse.ArgumentParser) -> None:
    """``--master``, defaulting to ``$EMPORION_MASTER`` (required when that is unset)."""
    default = os.environ.get("EMPORION_MASTER") or None
    parser.add_argument(
        "--master",
        default=default,
        required=default is None,
        help="the master's HOST:PORT or zk://HOST:PORT,.../PATH"
        + (f" [$EMPORION_MASTER: {default}]" if default else " (or set EMPORION_MASTER)"),
    )


def setup_logging() -> None:
    """Warnings and errors (the SDK's "cannot reach the master at ...") on stderr."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def failure_text(status: messages.TaskStatus) -> str:
    """``TASK_FAILED (REASON_COMMAND_EXECUTOR_FAILED): <message>`` for a summary."""
    text = messages.state_name(status.state)
    if status.HasField("reason"):
        text += f" ({messages.reason_name(status.reason)})"
    if status.message:
        text += f": {status.message}"
    return text


@dataclass(frozen=True)
class DriverOutcome:
    """How ``driver.run()`` ended: its status, and whether a timeout or Ctrl-C ended it."""

    status: Status
    timed_out: bool = False
    interrupted: bool = False


def run_driver(driver: SchedulerDriver, timeout: float | None) -> DriverOutcome:
    """``driver.run()``, aborted after ``timeout`` seconds (None: no limit); Ctrl-C stops the
    driver (the framework is torn down) and is reported, not raised."""
    fired = threading.Event()

    def time_up() -> None:
        fired.set()
        driver.abort()

    timer = None
    if timeout is not None:
        timer = threading.Timer(timeout, time_up)
        timer.daemon = True
        timer.start()
    try:
        status = driver.run()
    except KeyboardInterrupt:
        driver.stop()
        joiner = threading.Thread(target=driver.join, daemon=True)
        joiner.start()
        joiner.join(5.0)  # Long enough to send TEARDOWN; a master that is gone is not waited for.
        return DriverOutcome(Status.DRIVER_STOPPED, interrupted=True)
    finally:
        if timer is not None:
            timer.cancel()
    return DriverOutcome(status, timed_out=fired.is_set())
