"""The posix fallback: a container is its session, found through /proc; nothing is enforced.

Used when cgroups are unavailable (not root, not Linux) or not wanted. The launched process
calls setsid, so the session id is its pid; every descendant that stays in the session is part
of the container. What this cannot do: limit CPU, memory or process count, detect OOM kills,
or keep hold of a process that starts a session of its own (a daemon that calls setsid).
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from agent.isolation import cgroupfs, procfs
from agent.isolation.limits import ContainerLimits
from agent.isolation.state import ContainerStats

LIMITATIONS = {
    "cgroups/cpu": "CPU is shared without quota or shares",
    "cgroups/memory": "memory is not limited and OOM kills are not detected",
    "cgroups/pids": "the number of processes is not limited",
    "namespaces/pid": "tasks see every process on the host",
    "namespaces/mnt": "tasks share the agent's mounts",
}


class SessionConfinement:
    """The processes of the session led by ``leader`` (started at ``start_time``)."""

    def __init__(self, leader: int, start_time: int) -> None:
        self.leader = leader
        self.start_time = start_time

    @property
    def paths(self) -> tuple[Path, ...]:
        return ()

    @property
    def procs_files(self) -> tuple[Path, ...]:
        return ()

    def _members(self) -> list[procfs.ProcStat]:
        members = procfs.session_members(self.leader, started_after=self.start_time)
        leader = procfs.read_stat(self.leader)
        # The leader itself, even if it failed before calling setsid.
        if (
            leader is not None
            and leader.start_time == self.start_time
            and not leader.exited
            and all(m.pid != leader.pid for m in members)
        ):
            members.append(leader)
        return members

    def pids(self) -> set[int]:
        return {member.pid for member in self._members()}

    def kill_round(self) -> None:
        members = self.pids()
        if self.leader in members:
            # The leader's process group at once, so no parent outlives its children
            # and exits normally in between; then whoever moved to another group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.leader, signal.SIGKILL)
        cgroupfs.kill_pids(members)

    def update(self, limits: ContainerLimits) -> None:
        """Nothing to enforce without cgroups; the report says so."""

    def stats(self) -> ContainerStats:
        members = self._members()
        ticks = sum(m.utime + m.stime for m in members)
        return ContainerStats(
            cpu_usage_s=ticks / procfs.CLOCK_TICKS,
            mem_usage_bytes=sum(m.rss_pages for m in members) * procfs.PAGE_SIZE,
            pids_current=len(members),
        )

    def remove(self, deadline: float) -> None:
        """No directories to remove."""
