"""cgroup v1: one directory per hierarchy, ``<mount>/<root_name>/<container_id>``.

Controllers used: cpu (CFS quota and shares), cpuacct (usage), memory (limit, swap limit, OOM
accounting), pids (process limit) and freezer (to stop forks while killing). cpu and memory are
required; the others are used when mounted. Co-mounted controllers (``cpu,cpuacct``) share one
directory.
"""

from __future__ import annotations

import contextlib
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
    """The directories of one container, one per mounted hierarchy we use."""

    def __init__(self, container_id: str, dirs: Mapping[str, Path]) -> None:
        self.container_id = container_id
        self._dirs = dict(dirs)  # controller -> directory (co-mounted ones share it)

    @property
    def paths(self) -> tuple[Path, ...]:
        return tuple(dict.fromkeys(self._dirs.values()))

    @property
    def procs_files(self) -> tuple[Path, ...]:
        return tuple(path / "cgroup.procs" for path in self.paths)

    def _dir(self, controller: str) -> Path | None:
        return self._dirs.get(controller)

    def pids(self) -> set[int]:
        found: set[int] = set()
        for procs in self.procs_files:
            found |= read_pids(procs)
        return found

    def kill_round(self) -> None:
        freezer = self._dir("freezer")
        state = freezer / "freezer.state" if freezer is not None else None
        if state is not None and state.exists():
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
        memory = self._dir("memory")
        if memory is not None and (memory / "memory.oom_control").exists():
            # Keep the OOM killer on: at the limit the kernel kills inside this cgroup only,
            # instead of pausing the container forever (oom_kill_disable=1).
            write(memory / "memory.oom_control", "0")
        self.update(limits)

    def update(self, limits: ContainerLimits) -> None:
        cpu = self._dir("cpu")
        if cpu is not None:
            write(cpu / "cpu.shares", str(limits.cpu_shares))
            write(cpu / "cpu.cfs_period_us", str(CPU_PERIOD_US))
            quota = limits.cpu_quota_us
            write(cpu / "cpu.cfs_quota_us", str(quota if quota is not None else -1))
        memory = self._dir("memory")
        if memory is not None:
            self._update_memory(memory, limits.mem_bytes)
        pids = self._dir("pids")
        if pids is not None:
            write(pids / "pids.max", str(limits.pids_max) if limits.pids_max else "max")

    @staticmethod
    def _update_memory(memory: Path, mem_bytes: int | None) -> None:
        value = str(mem_bytes) if mem_bytes is not None else "-1"
        limit = memory / "memory.limit_in_bytes"
        memsw = memory / "memory.memsw.limit_in_bytes"
        if not memsw.exists():  # swap accounting off: the memory limit alone
            write(limit, value)
            return
        # The kernel keeps memsw >= limit at every step, so order the two writes.
        current = read_int(limit)
        growing = mem_bytes is None or current is None or mem_bytes > current
        for path in (memsw, limit) if growing else (limit, memsw):
            write(path, value)

    def stats(self) -> ContainerStats:
        cpu, cpuacct = self._dir("cpu"), self._dir("cpuacct")
        memory, pids = self._dir("memory"), self._dir("pids")
        usage_ns = read_int(cpuacct / "cpuacct.usage") if cpuacct is not None else None
        cpu_stat = read_keyed(cpu / "cpu.stat") if cpu is not None else {}
        throttled_ns = cpu_stat.get("throttled_time")
        mem: dict[str, int | None] = {}
        oom: dict[str, int] = {}
        if memory is not None:
            for name in ("usage_in_bytes", "max_usage_in_bytes", "limit_in_bytes", "failcnt"):
                mem[name] = read_int(memory / f"memory.{name}")
            oom = read_keyed(memory / "memory.oom_control")
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
            pids_current=read_int(pids / "pids.current") if pids is not None else None,
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
        created: list[Path] = []
        with self._lock:
            try:
                for hierarchy in self.hierarchies:
                    self._ensure_root(hierarchy)
                    path = hierarchy / self.root_name / container_id
                    try:
                        path.mkdir()
                    except FileExistsError:
                        raise IsolationError(
                            f"cgroup {path} already exists: container {container_id!r} is "
                            "running or was not cleaned up"
                        ) from None
                    except OSError as e:
                        raise IsolationError(f"cannot create cgroup {path}: {e.strerror}") from e
                    created.append(path)
                cgroups = V1Cgroups(container_id, dirs)
                cgroups.initialise(limits)
            except BaseException:
                for path in reversed(created):
                    cgroupfs.rmdir_if_empty(path)
                raise
        return cgroups

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
