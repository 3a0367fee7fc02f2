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


def read_text(path: Path | str) -> str | None:
    """A control file's content, or None when the file does not exist.

    Plain ``os`` calls, not ``Path.read_text``: a launch and an exit read and write a few
    dozen control files, and the file object layers cost as much again as the system calls.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, ProcessLookupError):
        return None
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except ProcessLookupError:
        return None
    finally:
        os.close(fd)
    return b"".join(chunks).decode()


def read_int(path: Path | str) -> int | None:
    text = read_text(path)
    if text is None:
        return None
    value = text.strip()
    return None if value in ("", "max") else int(value)


def read_keyed(path: Path | str) -> dict[str, int]:
    """A flat-keyed file like ``cpu.stat`` or ``memory.events`` (``key value`` per line)."""
    values: dict[str, int] = {}
    for line in (read_text(path) or "").splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            values[key] = int(value)
    return values


def write(path: Path | str, value: str) -> None:
    """Write a control file; IsolationError names the file and the kernel's reason."""
    data = value.encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            if os.write(fd, data) != len(data):
                raise OSError(errno.EIO, "short write")
        finally:
            os.close(fd)
    except OSError as e:
        raise IsolationError(f"cannot write {value!r} to {path}: {e.strerror}") from e


def read_pids(procs_file: Path | str) -> set[int]:
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
