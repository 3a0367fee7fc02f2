"""Confinement: the processes of one container and the kernel controls around them.

Three implementations: ``cgroups_v2.V2Cgroup`` (one directory in the unified hierarchy),
``cgroups_v1.V1Cgroups`` (one directory per v1 hierarchy) and ``posix.SessionConfinement``
(the container's session, found through /proc, with no limits). ``Container`` drives any of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from agent.isolation.limits import ContainerLimits
from agent.isolation.state import ContainerStats


class Confinement(Protocol):
    """The processes of one container, and whatever limits and accounting hold them."""

    @property
    def paths(self) -> tuple[Path, ...]:
        """The container's cgroup directories (none for a session)."""
        ...

    @property
    def procs_files(self) -> tuple[Path, ...]:
        """The ``cgroup.procs`` files a process writes its pid into to join (none for a session)."""
        ...

    def pids(self) -> set[int]:
        """Every live process of the container."""
        ...

    def kill_round(self) -> None:
        """SIGKILL every process, guarding against forks (freezer, cgroup.kill) where possible."""
        ...

    def update(self, limits: ContainerLimits) -> None:
        """Apply new limits to the running container (a no-op where nothing is enforced)."""
        ...

    def stats(self) -> ContainerStats: ...

    def remove(self, deadline: float) -> None:
        """Remove every cgroup directory, retrying until ``deadline`` (monotonic seconds)."""
        ...
