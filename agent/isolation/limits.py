"""ContainerLimits: what a container may use, derived from a task's resources.

The numbers follow Mesos' cgroups isolators: CFS period 100 ms, quota ``cpus * period`` (at
least 1 ms), shares ``cpus * 1024`` (at least 2), a memory floor of 32 MiB, and a pids limit so
that a fork bomb stays inside its container.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from agent.isolation.helper.steps import RLIMITS

CPU_PERIOD_US = 100_000
MIN_CPU_QUOTA_US = 1_000
CPU_SHARES_PER_CPU = 1024
MIN_CPU_SHARES = 2
MAX_CPU_SHARES = 262_144
MAX_CPU_WEIGHT = 10_000
MIB = 1024 * 1024
MIN_MEMORY_BYTES = 32 * MIB
DEFAULT_PIDS_MAX = 4096
RLIMIT_NAMES = frozenset(RLIMITS)


@dataclass(frozen=True)
class ContainerLimits:
    """CPU, memory, process-count and rlimit limits of one container.

    ``None`` means unlimited. ``rlimits`` maps a name in ``RLIMIT_NAMES`` (``nofile``,
    ``core``, ...) to a value applied as both soft and hard limit; -1 means unlimited.
    """

    cpus: float | None
    mem_bytes: int | None
    pids_max: int | None = DEFAULT_PIDS_MAX
    rlimits: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.cpus is not None and not (math.isfinite(self.cpus) and self.cpus > 0):
            raise ValueError(f"cpus must be a positive number, got {self.cpus!r}")
        if self.mem_bytes is not None and self.mem_bytes < MIN_MEMORY_BYTES:
            raise ValueError(
                f"mem_bytes {self.mem_bytes} is below the minimum of {MIN_MEMORY_BYTES} (32 MiB)"
            )
        if self.pids_max is not None and self.pids_max < 1:
            raise ValueError(f"pids_max must be at least 1, got {self.pids_max}")
        unknown = sorted(set(self.rlimits) - RLIMIT_NAMES)
        if unknown:
            raise ValueError(
                f"unknown rlimit {', '.join(unknown)}; known: {', '.join(sorted(RLIMIT_NAMES))}"
            )
        for name, value in self.rlimits.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < -1:
                raise ValueError(f"rlimit {name} must be an integer >= -1, got {value!r}")
        object.__setattr__(self, "rlimits", MappingProxyType(dict(self.rlimits)))

    @classmethod
    def from_resources(
        cls,
        cpus: float,
        mem_mb: float,
        *,
        pids_max: int | None = DEFAULT_PIDS_MAX,
        rlimits: Mapping[str, int] | None = None,
    ) -> ContainerLimits:
        """Limits for a task's ``cpus`` and ``mem`` (MB) resources; memory at least 32 MiB."""
        mem_bytes = max(MIN_MEMORY_BYTES, int(mem_mb * MIB))
        return cls(cpus=cpus, mem_bytes=mem_bytes, pids_max=pids_max, rlimits=rlimits or {})

    @property
    def cpu_quota_us(self) -> int | None:
        """CFS quota per ``CPU_PERIOD_US``; None when CPU is not limited."""
        if self.cpus is None:
            return None
        return max(MIN_CPU_QUOTA_US, round(self.cpus * CPU_PERIOD_US))

    @property
    def cpu_shares(self) -> int:
        """cgroup v1 ``cpu.shares`` (1024 per CPU; the kernel default when unlimited)."""
        if self.cpus is None:
            return CPU_SHARES_PER_CPU
        return min(MAX_CPU_SHARES, max(MIN_CPU_SHARES, int(self.cpus * CPU_SHARES_PER_CPU)))

    @property
    def cpu_weight(self) -> int:
        """cgroup v2 ``cpu.weight``: 100 per CPU (the v2 default is 100, as 1024 is in v1).

        Proportional to ``cpu_shares`` like systemd's mapping, so ratios between containers
        stay the same on both versions.
        """
        return min(MAX_CPU_WEIGHT, max(1, self.cpu_shares * 100 // CPU_SHARES_PER_CPU))
