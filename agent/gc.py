"""Garbage collection of finished sandboxes.

:class:`SandboxGC` is the pure schedule (no I/O; ``now`` is passed in): a sandbox is scheduled
when its executor ends, unscheduled if it is used again, and handed back by :meth:`SandboxGC.due`
once its delay has passed. :func:`remove_sandbox` deletes one in a worker thread.

Disk pressure (Mesos's rule, ``--gc_disk_headroom``): each disk reading sets a factor
``max(0, 1 - headroom - usage)``, and every scheduled sandbox becomes due ``delay x factor``
after it was scheduled instead of ``delay``. With the default headroom of 0.1, at 50 % usage a
one-week delay shrinks to 2.8 days, and from 90 % usage on everything scheduled is due at once.
As in Mesos, even an empty disk gives a factor of 0.9 once readings arrive, and a later reading
with more free space lengthens delays again (nothing already removed comes back).
"""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GC_DELAY_S = 7 * 24 * 3600.0
"""Mesos's ``--gc_delay`` default: one week."""
GC_DISK_HEADROOM = 0.1
"""Mesos's ``--gc_disk_headroom`` default."""


@dataclass(frozen=True)
class ScheduledSandbox:
    """One sandbox waiting for removal."""

    path: Path
    scheduled_at: float
    delay: float
    """The delay asked for, before any disk-pressure factor."""


def _check_fraction(name: str, value: float) -> None:
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {value}")


class SandboxGC:
    """The removal schedule of finished sandboxes."""

    def __init__(self, default_delay: float = GC_DELAY_S) -> None:
        if not math.isfinite(default_delay) or default_delay < 0:
            raise ValueError(f"default_delay must be a non-negative number, got {default_delay}")
        self.default_delay = default_delay
        self.factor = 1.0
        """The disk-pressure factor applied to every delay (1.0 until a disk reading)."""
        self._scheduled: dict[Path, ScheduledSandbox] = {}

    def __len__(self) -> int:
        return len(self._scheduled)

    def __contains__(self, path: object) -> bool:
        return path in self._scheduled

    @property
    def scheduled(self) -> list[ScheduledSandbox]:
        """Everything scheduled, soonest due first."""
        return sorted(self._scheduled.values(), key=lambda s: (self.due_at(s), str(s.path)))

    def due_at(self, entry: ScheduledSandbox) -> float:
        """When ``entry`` is due under the current disk-pressure factor."""
        return entry.scheduled_at + entry.delay * self.factor

    def schedule(self, path: Path, now: float, delay: float | None = None) -> float:
        """Schedule ``path`` for removal ``delay`` (default: ``default_delay``) after ``now``.

        Scheduling a path again restarts its delay. Returns when it is due.
        """
        delay = self.default_delay if delay is None else delay
        if not math.isfinite(delay) or delay < 0:
            raise ValueError(f"delay must be a non-negative number, got {delay}")
        if not math.isfinite(now):
            raise ValueError(f"now must be a finite number, got {now}")
        entry = ScheduledSandbox(Path(path), now, delay)
        self._scheduled[entry.path] = entry
        return self.due_at(entry)

    def unschedule(self, path: Path) -> bool:
        """Keep ``path`` (it is in use again); False when it was not scheduled."""
        return self._scheduled.pop(Path(path), None) is not None

    def due(self, now: float) -> list[Path]:
        """Remove from the schedule and return every path due at ``now``, soonest first.

        The caller deletes them (:func:`remove_sandbox`); one that fails can be scheduled
        again.
        """
        ready = [entry for entry in self.scheduled if self.due_at(entry) <= now]
        for entry in ready:
            del self._scheduled[entry.path]
        return [entry.path for entry in ready]

    def next_due_at(self) -> float | None:
        """When the next path is due (for the runtime's timer); None when nothing waits."""
        if not self._scheduled:
            return None
        return min(self.due_at(entry) for entry in self._scheduled.values())

    def prune_for_disk(self, usage_fraction: float, headroom: float = GC_DISK_HEADROOM) -> float:
        """Apply a disk reading: delays become ``delay x max(0, 1 - headroom - usage)``.

        ``usage_fraction`` is the used share of the work dir's disk (0 to 1). Returns the new
        factor; :meth:`due` then hands back whatever that made due.
        """
        _check_fraction("usage_fraction", usage_fraction)
        _check_fraction("headroom", headroom)
        self.factor = max(0.0, 1.0 - headroom - usage_fraction)
        return self.factor

    def validate(self) -> None:
        """Invariants: keys match entries; delays and the factor are in range."""
        assert 0.0 <= self.factor <= 1.0, f"factor {self.factor}"
        for path, entry in self._scheduled.items():
            assert path == entry.path
            assert entry.delay >= 0


def _is_strictly_within(path: str, root: str) -> bool:
    return path.startswith(root.rstrip("/") + "/")


def _rmtree_onexc(func: Callable[..., Any], path: str, error: BaseException) -> None:
    if isinstance(error, FileNotFoundError):
        return  # removed meanwhile: that is what we want
    if isinstance(error, PermissionError):
        # A task may leave read-only directories behind; make the parent writable and retry.
        parent = os.path.dirname(path)
        os.chmod(parent, stat.S_IMODE(os.lstat(parent).st_mode) | stat.S_IRWXU)
        func(path)
        return
    raise error


def _remove(path: str) -> bool:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(st.st_mode):
        if sys.version_info >= (3, 12):
            shutil.rmtree(path, onexc=_rmtree_onexc)
        else:
            shutil.rmtree(path, onerror=lambda f, p, info: _rmtree_onexc(f, p, info[1]))
    else:
        # A file or a link (such as a "latest" link): remove it, never what it points to.
        os.unlink(path)
    return True


async def remove_sandbox(path: Path, work_dir: Path) -> bool:
    """Delete the sandbox ``path`` in a worker thread; False when it was already gone.

    Refuses (ValueError) a path that is not strictly inside ``work_dir``, lexically and once
    its parent's links are resolved, so a bad schedule cannot delete anything else.
    """
    absolute = os.path.abspath(path)
    root = os.path.abspath(work_dir)
    if not _is_strictly_within(absolute, root):
        raise ValueError(f"refusing to remove '{path}': it is not inside the work dir '{root}'")
    real_parent = await asyncio.to_thread(os.path.realpath, os.path.dirname(absolute))
    real_root = await asyncio.to_thread(os.path.realpath, root)
    if not (real_parent == real_root or _is_strictly_within(real_parent, real_root)):
        raise ValueError(f"refusing to remove '{path}': it resolves outside the work dir")
    return await asyncio.to_thread(_remove, absolute)
