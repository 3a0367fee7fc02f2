"""What this host can isolate with: cgroup hierarchies, namespaces, root — and the report.

Detection reads ``/proc/self/mountinfo`` and ``/proc/self/cgroup`` from paths it is given, so
tests feed it recorded or invented files. ``plan_isolation`` turns the facts into a choice and
an ``IsolationReport`` without touching the system.
"""

from __future__ import annotations

import functools
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from agent.isolation import cgroups_v1, cgroups_v2
from agent.isolation.errors import IsolationUnavailableError
from agent.isolation.launcher import helper_argv

Mode = Literal["auto", "cgroups", "posix"]
Kind = Literal["cgroups-v2", "cgroups-v1", "posix"]
MODES: tuple[Mode, ...] = ("auto", "cgroups", "posix")
V1_CONTROLLER_NAMES = frozenset(
    {
        "blkio",
        "cpu",
        "cpuacct",
        "cpuset",
        "devices",
        "freezer",
        "hugetlb",
        "memory",
        "misc",
        "net_cls",
        "net_prio",
        "perf_event",
        "pids",
        "rdma",
    }
)
ALWAYS_ACTIVE = ("posix/session", "posix/rlimits")
NAMESPACES = ("namespaces/pid", "namespaces/mnt")
MECHANISMS = ("cgroups/cpu", "cgroups/memory", "cgroups/pids")


@dataclass(frozen=True)
class CgroupMount:
    """One cgroup filesystem from mountinfo; v1 lists its controllers, v2 reads them later."""

    path: Path
    version: int
    controllers: frozenset[str]


@dataclass(frozen=True)
class HostCgroups:
    """The cgroup hierarchies visible here and this process's place in them."""

    v1: Mapping[str, Path] = field(default_factory=dict)  # controller -> mount point
    v2: Path | None = None
    v2_controllers: frozenset[str] = frozenset()
    membership: Mapping[str, str] = field(default_factory=dict)  # controller ("" = v2) -> path


@dataclass(frozen=True)
class IsolationReport:
    """Which isolation mechanisms are active and why the others are missing."""

    name: str
    active: list[str]
    missing: dict[str, str]

    def summary(self) -> str:
        """One line for the agent's startup log."""
        missing = "; ".join(f"{key} ({why})" for key, why in self.missing.items()) or "nothing"
        return f"isolation {self.name}: active {', '.join(self.active) or 'nothing'}; " + (
            f"missing {missing}"
        )

    def __str__(self) -> str:
        return self.summary()


def _unescape(path: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (``\\040``)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def parse_mountinfo(text: str) -> list[CgroupMount]:
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or len(tail) < 3:
            continue
        fstype, options = tail[0], tail[2].split(",")
        mount_point = Path(_unescape(fields[4]))
        if fstype == "cgroup":
            controllers = frozenset(o for o in options if o in V1_CONTROLLER_NAMES)
            mounts.append(CgroupMount(mount_point, 1, controllers))
        elif fstype == "cgroup2":
            mounts.append(CgroupMount(mount_point, 2, frozenset()))
    return mounts


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """``/proc/<pid>/cgroup``: controller -> path; the v2 entry has the key ""."""
    membership: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _hierarchy, controllers, path = parts
        for controller in controllers.split(",") if controllers else [""]:
            membership[controller] = path
    return membership


def probe_cgroups(
    mountinfo: Path = Path("/proc/self/mountinfo"),
    proc_cgroup: Path = Path("/proc/self/cgroup"),
) -> HostCgroups:
    try:
        mounts = parse_mountinfo(mountinfo.read_text())
    except OSError:
        mounts = []
    try:
        membership = parse_proc_cgroup(proc_cgroup.read_text())
    except OSError:
        membership = {}
    v1: dict[str, Path] = {}
    for mount in mounts:
        if mount.version == 1:
            for controller in sorted(mount.controllers):
                v1.setdefault(controller, mount.path)  # first mount wins over bind mounts
    v2 = next((m.path for m in mounts if m.version == 2), None)
    v2_controllers: frozenset[str] = frozenset()
    if v2 is not None:
        try:
            v2_controllers = frozenset((v2 / "cgroup.controllers").read_text().split())
        except OSError:
            v2 = None
    return HostCgroups(v1=v1, v2=v2, v2_controllers=v2_controllers, membership=membership)


@functools.cache
def probe_namespaces() -> str | None:
    """None when PID and mount namespaces with a private /proc work; else the reason.

    Tried for real in a throw-away helper process (root in a container may still lack
    CAP_SYS_ADMIN or be stopped by seccomp); run once per agent process.
    """
    try:
        result = subprocess.run(
            helper_argv("--probe-namespaces"),
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
            env={},
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"namespace probe failed: {e}"
    if result.returncode != 0:
        return (result.stdout + result.stderr).strip() or f"probe exited {result.returncode}"
    return None


@dataclass(frozen=True)
class Plan:
    """What ``select_isolation`` will build: the kind, and the report to log."""

    kind: Kind
    namespaces: bool
    report: IsolationReport


def _v2_usable(host: HostCgroups) -> bool:
    return host.v2 is not None and set(cgroups_v2.REQUIRED) <= host.v2_controllers


def _v1_usable(host: HostCgroups) -> bool:
    return set(cgroups_v1.REQUIRED) <= set(host.v1)


def _why_no_cgroups(host: HostCgroups) -> str:
    if host.v2 is not None and host.v2_controllers:
        v2 = f"the cgroup2 mount at {host.v2} lacks cpu or memory"
    elif host.v2 is not None:
        v2 = f"the cgroup2 mount at {host.v2} has no controllers"
    else:
        v2 = "no cgroup2 mount"
    v1 = "no cgroup v1 cpu and memory hierarchies" if not _v1_usable(host) else ""
    return " and ".join(part for part in (v2, v1) if part)


def plan_isolation(
    mode: Mode,
    host: HostCgroups,
    *,
    is_linux: bool,
    euid: int,
    namespaces_problem: str | None,
) -> Plan:
    """Choose cgroups v2, then v1, then posix; IsolationUnavailableError if ``cgroups`` can't be."""
    if mode not in MODES:
        raise ValueError(f"isolation mode must be one of {', '.join(MODES)}, got {mode!r}")
    active = list(ALWAYS_ACTIVE)
    missing: dict[str, str] = {}
    if not is_linux:
        problem: str | None = "not Linux"
    elif euid != 0:
        problem = f"not root (euid {euid})"
    elif mode == "posix":
        problem = "posix isolation was selected"
    elif _v2_usable(host) or _v1_usable(host):
        problem = None
    else:
        problem = _why_no_cgroups(host)
    if problem is not None and mode == "cgroups":
        raise IsolationUnavailableError(f"cgroups isolation is unavailable: {problem}")
    kind: Kind
    if problem is not None:
        kind = "posix"
        for mechanism in (*MECHANISMS, *NAMESPACES):
            missing[mechanism] = problem
        return Plan(kind, False, IsolationReport(kind, active, missing))
    wanted: tuple[str, ...]
    if _v2_usable(host):
        kind, available, wanted = "cgroups-v2", host.v2_controllers, cgroups_v2.CONTROLLERS
    else:
        kind, available, wanted = "cgroups-v1", frozenset(host.v1), cgroups_v1.CONTROLLERS
    version = "v2" if kind == "cgroups-v2" else "v1"
    for controller in wanted:
        key = f"cgroups/{controller}"
        if controller in available:
            active.append(key)
        else:
            missing[key] = f"no {version} {controller} controller"
    if namespaces_problem is None:
        active.extend(NAMESPACES)
    else:
        missing.update(dict.fromkeys(NAMESPACES, namespaces_problem))
    return Plan(kind, namespaces_problem is None, IsolationReport(kind, active, missing))
