"""cgroup v1: one directory per hierarchy, ``<mount>/<root_name>/<container_id>``.

Controllers used: cpu (CFS quota and shares), cpuacct (usage), memory (limit, swap limit, OOM
accounting), pids (process limit) and freezer (to stop forks while killing). cpu and memory are
required; the others are used when mounted. Co-mounted controllers (``cpu,cpuacct``) share one
directory.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from agent.isolation import cgroupfs
from agent.isolation.cgroupfs import read_int, read_keyed, read_pids, read_text, write
from agent.isolation.errors import IsolationError
from agent.isolation.limits import CPU_PERIOD_US, ContainerLimits
from agent.isolation.spec import validate_container_id
from agent.isolation.state import ContainerStats

CONTROLLERS = ("cpu", "cpuacct", "memory", "pids", "freezer")
REQUIRED = ("cpu", "memory")
FREEZE_WAIT_S = 1.0


class V1Cgroups:
    """The directories of one container, one per mounted hierarchy we use.

    Control files are named by plain strings built once here: a launch and an exit touch a
    few dozen of them, and joining ``Path`` objects cost more than the system calls.
    """

    def __init__(self, container_id: str, dirs: Mapping[str, Path]) -> None:
        self.container_id = container_id
        # controller -> directory (co-mounted ones share it)
        self._dirs = {controller: str(path) for controller, path in dirs.items()}
        self._paths = tuple(Path(path) for path in dict.fromkeys(self._dirs.values()))
        self._procs = tuple(path / "cgroup.procs" for path in self._paths)

    @property
    def paths(self) -> tuple[Path, ...]:
        return self._paths

    @property
    def procs_files(self) -> tuple[Path, ...]:
        return self._procs

    def _file(self, controller: str, name: str) -> str | None:
        """``<directory of controller>/<name>``, or None when that hierarchy is not used."""
        directory = self._dirs.get(controller)
        return None if directory is None else f"{directory}/{name}"

    def pids(self) -> set[int]:
        found: set[int] = set()
        for procs in self._procs:
            found |= read_pids(procs)
        return found

    def kill_round(self) -> None:
        state = self._file("freezer", "freezer.state")
        if state is not None and os.path.exists(state):
            write(state, "FROZEN")
            deadline = time.monotonic() + FREEZE_WAIT_S
            # FREEZING lasts while a task is in an uninterruptible sleep; kill anyway then.
            while (read_text(state) or "").strip() == "FREEZING" and time.monotonic() < deadline:
                time.sleep(cgroupfs.POLL_S)
            try:
                cgroupfs.kill_pids(self.pids())
            finally:
                write(state, "THAWED")
        else:
            cgroupfs.kill_pids(self.pids())

    def initialise(self, limits: ContainerLimits) -> None:
        """Settings and limits of a new cgroup (its memory limit is still unlimited)."""
        oom_control = self._file("memory", "memory.oom_control")
        if oom_control is not None and os.path.exists(oom_control):
            # Keep the OOM killer on: at the limit the kernel kills inside this cgroup only,
            # instead of pausing the container forever (oom_kill_disable=1).
            write(oom_control, "0")
        self._update(limits, fresh=True)

    def update(self, limits: ContainerLimits) -> None:
        self._update(limits, fresh=False)

    def _update(self, limits: ContainerLimits, *, fresh: bool) -> None:
        if (shares := self._file("cpu", "cpu.shares")) is not None:
            write(shares, str(limits.cpu_shares))
            write(f"{self._dirs['cpu']}/cpu.cfs_period_us", str(CPU_PERIOD_US))
            quota = limits.cpu_quota_us
            write(f"{self._dirs['cpu']}/cpu.cfs_quota_us", str(quota if quota is not None else -1))
        if (memory := self._dirs.get("memory")) is not None:
            self._update_memory(memory, limits.mem_bytes, fresh=fresh)
        if (pids_max := self._file("pids", "pids.max")) is not None:
            write(pids_max, str(limits.pids_max) if limits.pids_max else "max")

    @staticmethod
    def _update_memory(memory: str, mem_bytes: int | None, *, fresh: bool) -> None:
        value = str(mem_bytes) if mem_bytes is not None else "-1"
        limit = f"{memory}/memory.limit_in_bytes"
        memsw = f"{memory}/memory.memsw.limit_in_bytes"
        if not os.path.exists(memsw):  # swap accounting off: the memory limit alone
            write(limit, value)
            return
        # The kernel keeps memsw >= limit at every step, so order the two writes. A new
        # cgroup's limits are unlimited: a limit only lowers them, memory first.
        if fresh:
            growing = mem_bytes is None
        else:
            current = read_int(limit)
            growing = mem_bytes is None or current is None or mem_bytes > current
        for path in (memsw, limit) if growing else (limit, memsw):
            write(path, value)

    def stats(self) -> ContainerStats:
        cpu, cpuacct = self._dirs.get("cpu"), self._dirs.get("cpuacct")
        memory, pids = self._dirs.get("memory"), self._dirs.get("pids")
        usage_ns = read_int(f"{cpuacct}/cpuacct.usage") if cpuacct is not None else None
        cpu_stat = read_keyed(f"{cpu}/cpu.stat") if cpu is not None else {}
        throttled_ns = cpu_stat.get("throttled_time")
        mem: dict[str, int | None] = {}
        oom: dict[str, int] = {}
        if memory is not None:
            for name in ("usage_in_bytes", "max_usage_in_bytes", "limit_in_bytes", "failcnt"):
                mem[name] = read_int(f"{memory}/memory.{name}")
            oom = read_keyed(f"{memory}/memory.oom_control")
        limit = mem.get("limit_in_bytes")
        return ContainerStats(
            cpu_usage_s=usage_ns / 1e9 if usage_ns is not None else None,
            cpu_periods=cpu_stat.get("nr_periods"),
            cpu_throttled_periods=cpu_stat.get("nr_throttled"),
            cpu_throttled_s=throttled_ns / 1e9 if throttled_ns is not None else None,
            mem_usage_bytes=mem.get("usage_in_bytes"),
            mem_peak_bytes=mem.get("max_usage_in_bytes"),
            mem_limit_bytes=limit if limit is not None and limit < cgroupfs.UNLIMITED_V1 else None,
            mem_limit_hits=mem.get("failcnt"),
            pids_current=read_int(f"{pids}/pids.current") if pids is not None else None,
            # Kernels before 4.13 do not count OOM kills here; None then.
            oom_kills=oom.get("oom_kill"),
        )

    def remove(self, deadline: float) -> None:
        for path in self.paths:
            cgroupfs.rmdir_retrying(path, deadline)


class CgroupsV1:
    """Driver for v1 hierarchies; ``mounts`` maps each controller to its mount point."""

    name = "cgroups-v1"

    def __init__(self, mounts: Mapping[str, Path], root_name: str) -> None:
        validate_container_id(root_name, "cgroup root name")
        missing = [c for c in REQUIRED if c not in mounts]
        if missing:
            raise ValueError(f"cgroup v1 needs the {' and '.join(missing)} hierarchies mounted")
        self.root_name = root_name
        self.mounts = {c: Path(mounts[c]) for c in CONTROLLERS if c in mounts}
        self._lock = threading.Lock()
        self._roots_checked = False  # Each root made (or its settings checked) once.

    @property
    def hierarchies(self) -> tuple[Path, ...]:
        return tuple(dict.fromkeys(self.mounts.values()))

    @property
    def root_dirs(self) -> tuple[Path, ...]:
        return tuple(mount / self.root_name for mount in self.hierarchies)

    def _dirs(self, container_id: str) -> dict[str, Path]:
        return {c: m / self.root_name / container_id for c, m in self.mounts.items()}

    def _ensure_root(self, hierarchy: Path) -> None:
        root = hierarchy / self.root_name
        try:
            root.mkdir(exist_ok=True)
        except OSError as e:
            raise IsolationError(f"cannot create cgroup {root}: {e.strerror}") from e
        use_hierarchy = root / "memory.use_hierarchy"
        if (read_text(use_hierarchy) or "").strip() == "0":
            # Without hierarchy, a parent's limits and counters ignore its children; it can
            # only change while the cgroup has no children, i.e. right now. Newer kernels
            # fix it at 1.
            with contextlib.suppress(IsolationError):
                write(use_hierarchy, "1")

    def create(self, container_id: str, limits: ContainerLimits) -> V1Cgroups:
        validate_container_id(container_id)
        dirs = self._dirs(container_id)
        if not self._roots_checked:
            with self._lock:
                for hierarchy in self.hierarchies:
                    self._ensure_root(hierarchy)
                self._roots_checked = True
        created: list[Path] = []
        try:
            for hierarchy in self.hierarchies:
                path = hierarchy / self.root_name / container_id
                self._mkdir(hierarchy, path, container_id)
                created.append(path)
            cgroups = V1Cgroups(container_id, dirs)
            cgroups.initialise(limits)
        except BaseException:
            for path in reversed(created):
                cgroupfs.rmdir_if_empty(path)
            raise
        return cgroups

    def _mkdir(self, hierarchy: Path, path: Path, container_id: str) -> None:
        """Create a container's directory in ``hierarchy``, and the root above it if it is
        gone (removed when the last container went): no lock and no root check per launch,
        as each takes the kernel's cgroup mutex, which every launch and exit on the host
        contends for."""
        for attempt in range(3):
            try:
                os.mkdir(path)
                return
            except FileNotFoundError as e:
                if attempt == 2:
                    raise IsolationError(f"cannot create cgroup {path}: {e.strerror}") from e
                with self._lock:
                    self._ensure_root(hierarchy)
            except FileExistsError:
                raise IsolationError(
                    f"cgroup {path} already exists: container {container_id!r} is "
                    "running or was not cleaned up"
                ) from None
            except OSError as e:
                raise IsolationError(f"cannot create cgroup {path}: {e.strerror}") from e

    def open(self, container_id: str) -> V1Cgroups | None:
        validate_container_id(container_id)
        dirs = {c: d for c, d in self._dirs(container_id).items() if d.is_dir()}
        return V1Cgroups(container_id, dirs) if dirs else None

    def container_ids(self) -> set[str]:
        found: set[str] = set()
        for root in self.root_dirs:
            found |= cgroupfs.child_ids(root)
        return found

    def remove_root_if_empty(self) -> None:
        with self._lock:
            for root in self.root_dirs:
                cgroupfs.rmdir_if_empty(root)
