"""What both cgroup drivers share: control-file access with clear errors, and their interface."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from agent.isolation.confinement import Confinement
from agent.isolation.errors import IsolationError
from agent.isolation.limits import ContainerLimits
from agent.isolation.spec import validate_container_id

# Values at or above this mean "no limit" in v1 (the kernel reports PAGE_COUNTER_MAX pages).
UNLIMITED_V1 = 1 << 62
POLL_S = 0.002


class CgroupDriver(Protocol):
    """Creates and finds container cgroups under ``<hierarchy>/<root_name>/``."""

    name: str
    root_name: str

    @property
    def root_dirs(self) -> tuple[Path, ...]: ...

    def create(self, container_id: str, limits: ContainerLimits) -> Confinement:
        """Make the container's cgroup(s) with ``limits``; nothing is left on failure."""
        ...

    def open(self, container_id: str) -> Confinement | None:
        """The existing cgroup(s) of ``container_id``, or None when none exist."""
        ...

    def container_ids(self) -> set[str]:
        """Ids of every container cgroup under the root(s)."""
        ...

    def remove_root_if_empty(self) -> None: ...


def read_text(path: Path) -> str | None:
    """A control file's content, or None when the file does not exist."""
    try:
        return path.read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None


def read_int(path: Path) -> int | None:
    text = read_text(path)
    if text is None:
        return None
    value = text.strip()
    return None if value in ("", "max") else int(value)


def read_keyed(path: Path) -> dict[str, int]:
    """A flat-keyed file like ``cpu.stat`` or ``memory.events`` (``key value`` per line)."""
    values: dict[str, int] = {}
    for line in (read_text(path) or "").splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            values[key] = int(value)
    return values


def write(path: Path, value: str) -> None:
    """Write a control file; IsolationError names the file and the kernel's reason."""
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as e:
        raise IsolationError(f"cannot write {value!r} to {path}: {e.strerror}") from e


def read_pids(procs_file: Path) -> set[int]:
    return {int(line) for line in (read_text(procs_file) or "").split()}


def kill_pids(pids: Iterable[int], sig: int = signal.SIGKILL) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def is_container_dir(path: Path) -> bool:
    try:
        validate_container_id(path.name)
    except ValueError:
        return False
    return path.is_dir()


def child_ids(root: Path) -> set[str]:
    try:
        entries = list(root.iterdir())
    except FileNotFoundError:
        return set()
    return {entry.name for entry in entries if is_container_dir(entry)}


def rmdir_retrying(path: Path, deadline: float) -> None:
    """rmdir a cgroup; EBUSY means exits are still being finished, so retry until deadline."""
    while True:
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno not in (errno.EBUSY, errno.ENOTEMPTY) or time.monotonic() >= deadline:
                raise IsolationError(f"cannot remove cgroup {path}: {e.strerror}") from e
        time.sleep(POLL_S)


def rmdir_if_empty(path: Path) -> None:
    """Remove a root cgroup left without containers; busy or gone is fine."""
    with contextlib.suppress(OSError):
        path.rmdir()
