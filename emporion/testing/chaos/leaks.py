"""What a chaos run left behind: processes, container cgroups and ``/run/emporion-*`` entries.

An agent on work directory ``W`` names its cgroup root and run directory
``isolation_root_name(W)`` (``emporion-<digest>``): container cgroups live at
``<hierarchy>/<root>/<container>`` in every mounted hierarchy and runtime files at
``<run dir>/<container>`` (``/run/<root>`` as root). Once every agent of a run is shut down
(SIGUSR1 kills its tasks), none of these may remain, and no process may mention the run's base
directory (every master, agent and task does, in its command line or environment).

:func:`find_leaks` counts them; :func:`sweep` removes whatever was found, so one failed run never
spills into the next. Counting comes first: a leak is a finding, the sweep is only hygiene.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from agent.isolation import select_isolation
from agent.isolation.selection import default_run_dir
from agent.runtime.main import isolation_root_name

__all__ = ["Leaks", "cgroup_mounts", "find_leaks", "processes_mentioning", "sweep"]


@dataclass
class Leaks:
    """What remained: pids, container cgroup paths, run directory entries."""

    processes: list[int] = field(default_factory=list)
    cgroups: list[str] = field(default_factory=list)
    run_dirs: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """How many things leaked, of every kind."""
        return len(self.processes) + len(self.cgroups) + len(self.run_dirs)


def cgroup_mounts() -> list[Path]:
    """Mount points of every cgroup (v1 and v2) hierarchy."""
    mounts = []
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[2] in ("cgroup", "cgroup2"):
            mounts.append(Path(fields[1]))
    return mounts


def processes_mentioning(marker: str) -> list[int]:
    """Pids of live processes (not this one) whose command line or environment has ``marker``."""
    needle = marker.encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue  # a zombie holds nothing; its parent (gone or ours) reaps it
            blob = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
            if needle in blob:
                found.append(int(entry.name))
    return sorted(found)


def _root_names(work_dirs: Iterable[Path]) -> list[str]:
    return [isolation_root_name(work.resolve()) for work in work_dirs]


def find_leaks(base_dir: Path, agent_work_dirs: Iterable[Path], settle: float = 10.0) -> Leaks:
    """What remains of a run under ``base_dir`` whose agents used ``agent_work_dirs``.

    Processes get ``settle`` seconds to finish exiting (a killed task's process tree is reaped
    by its container's destroy, which may still be under way when the agent has exited).
    """
    marker = str(base_dir)
    deadline = time.monotonic() + settle
    while (pids := processes_mentioning(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    leaks = Leaks(processes=pids)
    mounts = cgroup_mounts()
    for root_name in _root_names(agent_work_dirs):
        for mount in mounts:
            root = mount / root_name
            if root.is_dir():
                leaks.cgroups += sorted(str(p) for p in root.iterdir() if p.is_dir())
        run_dir = default_run_dir(root_name)
        if run_dir.is_dir():
            leaks.run_dirs += sorted(str(p) for p in run_dir.iterdir())
    return leaks


def sweep(base_dir: Path, agent_work_dirs: Iterable[Path]) -> None:
    """Kill every process of the run and destroy every container, cgroup root and run dir."""
    for pid in processes_mentioning(str(base_dir)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    mounts = cgroup_mounts()
    for root_name in _root_names(agent_work_dirs):
        with contextlib.suppress(Exception):  # best effort: the leak was already reported
            select_isolation("auto", root_name=root_name).cleanup_orphans(set())
        for mount in mounts:
            with contextlib.suppress(OSError):
                (mount / root_name).rmdir()
        shutil.rmtree(default_run_dir(root_name), ignore_errors=True)
