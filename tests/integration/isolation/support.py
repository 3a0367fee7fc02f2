"""Helpers for the isolation integration tests."""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable

from agent.isolation import Container, ExitInfo


def wait_exit(container: Container, timeout_s: float = 10.0) -> ExitInfo:
    """Wait on the container's pidfd like the agent's event loop would, then poll."""
    deadline = time.monotonic() + timeout_s
    fd = container.pidfd()
    if fd is not None:
        try:
            ready, _, _ = select.select([fd], [], [], timeout_s)
            assert ready, f"{container} still running after {timeout_s} s"
        finally:
            os.close(fd)
    while (info := container.poll()) is None:
        assert time.monotonic() < deadline, f"{container} still running after {timeout_s} s"
        time.sleep(0.005)
    return info


def wait_for(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def sandbox_text(container: Container, name: str) -> str:
    return (container.sandbox / name).read_text()
