"""cgroup v2: one directory per container in the unified hierarchy.

Layout: ``<mount>/<root_name>/<container_id>``. The root directory holds no processes and
enables the cpu, memory and pids controllers for its children (``cgroup.subtree_control``);
v2's no-internal-process rule makes that impossible under a cgroup that has processes, which
the error then says.
"""

from __future__ import annotations

import errno
import threading
import time
from pathlib import Path

from agent.isolation import cgroupfs
from agent.isolation.cgroupfs import read_int, read_keyed, read_pids, read_text, write
from agent.isolation.errors import IsolationError
from agent.isolation.limits import CPU_PERIOD_US, ContainerLimits
from agent.isolation.spec import validate_container_id
from agent.isolation.state import ContainerStats

CONTROLLERS = ("cpu", "memory", "pids")
REQUIRED = ("cpu", "memory")
FREEZE_WAIT_S = 1.0


class V2Cgroup:
    """One container's directory (and any sub-cgroups its processes made inside it)."""

    def __init__(self, container_id: str, path: Path, controllers: tuple[str, ...]) -> None:
        self.container_id = container_id
        self.path = path
        self.controllers = controllers  # enabled for this cgroup by its parent

    @property
    def paths(self) -> tuple[Path, ...]:
        return (self.path,)

    @property
    def procs_files(self) -> tuple[Path, ...]:
        return (self.path / "cgroup.procs",)

    def _tree(self) -> list[Path]:
        """This directory and every nested cgroup below it, deepest first."""
        nested = [p for p in self.path.rglob("*") if p.is_dir()] if self.path.is_dir() else []
        return [*sorted(nested, key=lambda p: len(p.parts), reverse=True), self.path]

    def pids(self) -> set[int]:
        found: set[int] = set()
        for path in self._tree():
            found |= read_pids(path / "cgroup.procs")
        return found

    def kill_round(self) -> None:
        if (self.path / "cgroup.kill").exists():  # Linux 5.14+
            self.kill_by_cgroup_kill()
        elif (self.path / "cgroup.freeze").exists():  # Linux 5.2+
            self.kill_frozen()
        else:
            cgroupfs.kill_pids(self.pids())

    def kill_by_cgroup_kill(self) -> None:
        """The kernel SIGKILLs the whole subtree at once, processes forking meanwhile included."""
        write(self.path / "cgroup.kill", "1")

    def kill_frozen(self) -> None:
        """Freeze the subtree so nothing forks, SIGKILL every process, thaw so they die."""
        freeze = self.path / "cgroup.freeze"
        write(freeze, "1")
        deadline = time.monotonic() + FREEZE_WAIT_S
        while read_keyed(self.path / "cgroup.events").get("frozen") != 1:
            if time.monotonic() >= deadline:  # a task in uninterruptible sleep; kill anyway
                break
            time.sleep(cgroupfs.POLL_S)
        try:
            cgroupfs.kill_pids(self.pids())
        finally:
            write(freeze, "0")

    def initialise(self, limits: ContainerLimits) -> None:
        oom_group = self.path / "memory.oom.group"
        if oom_group.exists():
            # An OOM kill takes the whole container, never leaving half of it running.
            write(oom_group, "1")
        self.update(limits)

    def update(self, limits: ContainerLimits) -> None:
        quota = limits.cpu_quota_us
        if "cpu" in self.controllers:
            write(self.path / "cpu.max", f"{quota if quota is not None else 'max'} {CPU_PERIOD_US}")
            write(self.path / "cpu.weight", str(limits.cpu_weight))
        mem = limits.mem_bytes
        write(self.path / "memory.max", str(mem) if mem is not None else "max")
        swap = self.path / "memory.swap.max"
        if swap.exists():  # absent without swap accounting
            write(swap, "0" if mem is not None else "max")
        if "pids" in self.controllers:
            write(self.path / "pids.max", str(limits.pids_max) if limits.pids_max else "max")

    def stats(self) -> ContainerStats:
        cpu = read_keyed(self.path / "cpu.stat")
        events = read_keyed(self.path / "memory.events")
        usage_us, throttled_us = cpu.get("usage_usec"), cpu.get("throttled_usec")
        return ContainerStats(
            cpu_usage_s=usage_us / 1e6 if usage_us is not None else None,
            cpu_periods=cpu.get("nr_periods"),
            cpu_throttled_periods=cpu.get("nr_throttled"),
            cpu_throttled_s=throttled_us / 1e6 if throttled_us is not None else None,
            mem_usage_bytes=read_int(self.path / "memory.current"),
            mem_peak_bytes=read_int(self.path / "memory.peak"),  # Linux 5.19+
            mem_limit_bytes=read_int(self.path / "memory.max"),
            mem_limit_hits=events.get("max"),
            pids_current=read_int(self.path / "pids.current"),
            oom_kills=events.get("oom_kill"),
        )

    def remove(self, deadline: float) -> None:
        for path in self._tree():
            cgroupfs.rmdir_retrying(path, deadline)


class CgroupsV2:
    """Driver for the unified hierarchy mounted at ``mount`` with ``controllers`` available."""

    name = "cgroups-v2"

    def __init__(self, mount: Path, root_name: str, controllers: frozenset[str]) -> None:
        validate_container_id(root_name, "cgroup root name")
        missing = [c for c in REQUIRED if c not in controllers]
        if missing:
            raise ValueError(f"cgroup v2 at {mount} lacks the {' and '.join(missing)} controller")
        self.mount = Path(mount)
        self.root_name = root_name
        self.controllers = tuple(c for c in CONTROLLERS if c in controllers)
        self._lock = threading.Lock()

    @property
    def root(self) -> Path:
        return self.mount / self.root_name

    @property
    def root_dirs(self) -> tuple[Path, ...]:
        return (self.root,)

    def _enable_controllers(self, parent: Path) -> None:
        control = parent / "cgroup.subtree_control"
        enabled = set((read_text(control) or "").split())
        wanted = [c for c in self.controllers if c not in enabled]
        if not wanted:
            return
        value = " ".join(f"+{c}" for c in wanted)
        try:
            write(control, value)
        except IsolationError as e:
            cause = e.__cause__
            if isinstance(cause, OSError) and cause.errno == errno.EBUSY:
                raise IsolationError(
                    f"{e}; {parent} has processes of its own, and cgroup v2 enables "
                    "controllers only for cgroups without (run the agent in a leaf cgroup)"
                ) from cause
            raise

    def _ensure_root(self) -> None:
        try:
            self.root.mkdir(exist_ok=True)
        except OSError as e:
            raise IsolationError(f"cannot create cgroup {self.root}: {e.strerror}") from e
        self._enable_controllers(self.mount)
        self._enable_controllers(self.root)

    def create(self, container_id: str, limits: ContainerLimits) -> V2Cgroup:
        validate_container_id(container_id)
        path = self.root / container_id
        with self._lock:
            self._ensure_root()
            try:
                path.mkdir()
            except FileExistsError:
                raise IsolationError(
                    f"cgroup {path} already exists: container {container_id!r} is running "
                    "or was not cleaned up"
                ) from None
            except OSError as e:
                raise IsolationError(f"cannot create cgroup {path}: {e.strerror}") from e
            cgroup = V2Cgroup(container_id, path, self.controllers)
            try:
                cgroup.initialise(limits)
            except BaseException:
                cgroupfs.rmdir_if_empty(path)
                raise
        return cgroup

    def open(self, container_id: str) -> V2Cgroup | None:
        validate_container_id(container_id)
        path = self.root / container_id
        return V2Cgroup(container_id, path, self.controllers) if path.is_dir() else None

    def container_ids(self) -> set[str]:
        return cgroupfs.child_ids(self.root)

    def remove_root_if_empty(self) -> None:
        with self._lock:
            cgroupfs.rmdir_if_empty(self.root)
