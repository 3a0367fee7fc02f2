"""Detection of cgroups from mountinfo and /proc/self/cgroup, and the choice it leads to."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agent.isolation import IsolationUnavailableError, select_isolation
from agent.isolation.detect import (
    HostCgroups,
    IsolationReport,
    parse_mountinfo,
    parse_proc_cgroup,
    plan_isolation,
    probe_cgroups,
)

# A hybrid host like the CI machines: v1 controllers, an empty cgroup2 at .../unified.
HYBRID_MOUNTINFO = """\
22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
HYBRID_PROC_CGROUP = """\
9:name=systemd:/
8:pids:/
4:memory:/process_api/491b
2:cpuacct:/
1:cpu:/
0::/
"""
COMOUNTED = "30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"


def test_parse_hybrid_mountinfo() -> None:
    mounts = {m.path: m for m in parse_mountinfo(HYBRID_MOUNTINFO)}
    assert mounts[Path("/sys/fs/cgroup/memory")].controllers == {"memory"}
    assert mounts[Path("/sys/fs/cgroup/systemd")].controllers == frozenset()
    assert mounts[Path("/sys/fs/cgroup/unified")].version == 2
    assert Path("/proc") not in mounts


def test_parse_comounted_and_escaped_mount_points() -> None:
    escaped = "41 31 0:38 / /mnt/my\\040cgroup rw - cgroup2 cgroup2 rw\n"
    mounts = parse_mountinfo(COMOUNTED + escaped + "garbage line\n")
    assert mounts[0].controllers == {"cpu", "cpuacct"}
    assert mounts[1].path == Path("/mnt/my cgroup")


def test_parse_proc_cgroup() -> None:
    membership = parse_proc_cgroup(HYBRID_PROC_CGROUP)
    assert membership["memory"] == "/process_api/491b"
    assert membership[""] == "/"
    assert membership["name=systemd"] == "/"


def write_fake_proc(tmp_path: Path, mountinfo: str, proc_cgroup: str) -> tuple[Path, Path]:
    (tmp_path / "mountinfo").write_text(mountinfo)
    (tmp_path / "cgroup").write_text(proc_cgroup)
    return tmp_path / "mountinfo", tmp_path / "cgroup"


def test_probe_hybrid_host(tmp_path: Path) -> None:
    unified = tmp_path / "unified"
    unified.mkdir()
    (unified / "cgroup.controllers").write_text("\n")
    mountinfo = HYBRID_MOUNTINFO.replace("/sys/fs/cgroup/unified", str(unified))
    host = probe_cgroups(*write_fake_proc(tmp_path, mountinfo, HYBRID_PROC_CGROUP))
    assert host.v1["cpu"] == Path("/sys/fs/cgroup/cpu")
    assert set(host.v1) == {"cpu", "cpuacct", "cpuset", "memory", "freezer", "pids"}
    assert host.v2 == unified
    assert host.v2_controllers == frozenset()
    assert host.membership["memory"] == "/process_api/491b"


def test_probe_unified_host(tmp_path: Path) -> None:
    root = tmp_path / "fs-cgroup"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
    mountinfo = f"30 23 0:26 / {root} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
    host = probe_cgroups(*write_fake_proc(tmp_path, mountinfo, "0::/system.slice/x.service\n"))
    assert host.v1 == {}
    assert host.v2 == root
    assert {"cpu", "memory", "pids"} <= host.v2_controllers


def test_probe_without_proc_files(tmp_path: Path) -> None:
    host = probe_cgroups(tmp_path / "none", tmp_path / "none")
    assert host == HostCgroups()


V1_HOST = HostCgroups(
    v1={c: Path(f"/sys/fs/cgroup/{c}") for c in ("cpu", "cpuacct", "memory", "pids", "freezer")},
    v2=Path("/sys/fs/cgroup/unified"),
)
V2_HOST = HostCgroups(
    v2=Path("/sys/fs/cgroup"), v2_controllers=frozenset({"cpu", "memory", "pids"})
)


def test_hybrid_root_host_uses_v1_with_namespaces() -> None:
    plan = plan_isolation("auto", V1_HOST, is_linux=True, euid=0, namespaces_problem=None)
    assert plan.kind == "cgroups-v1"
    assert plan.namespaces
    assert {"cgroups/cpu", "cgroups/memory", "cgroups/pids", "cgroups/freezer"} <= set(
        plan.report.active
    )
    assert {"namespaces/pid", "namespaces/mnt", "posix/session"} <= set(plan.report.active)
    assert plan.report.missing == {}


def test_v2_is_preferred_when_it_has_the_controllers() -> None:
    both = HostCgroups(v1=V1_HOST.v1, v2=V2_HOST.v2, v2_controllers=V2_HOST.v2_controllers)
    plan = plan_isolation("cgroups", both, is_linux=True, euid=0, namespaces_problem=None)
    assert plan.kind == "cgroups-v2"
    assert plan.report.name == "cgroups-v2"


def test_missing_optional_controllers_are_reported() -> None:
    host = HostCgroups(v2=Path("/sys/fs/cgroup"), v2_controllers=frozenset({"cpu", "memory"}))
    plan = plan_isolation("auto", host, is_linux=True, euid=0, namespaces_problem="seccomp")
    assert plan.kind == "cgroups-v2"
    assert not plan.namespaces
    assert plan.report.missing == {
        "cgroups/pids": "no v2 pids controller",
        "namespaces/pid": "seccomp",
        "namespaces/mnt": "seccomp",
    }


def test_not_root_falls_back_to_posix_and_says_why() -> None:
    plan = plan_isolation("auto", V2_HOST, is_linux=True, euid=1000, namespaces_problem="x")
    assert plan.kind == "posix"
    assert plan.report.missing["cgroups/memory"] == "not root (euid 1000)"
    assert plan.report.missing["namespaces/pid"] == "not root (euid 1000)"
    assert plan.report.active == ["posix/session", "posix/rlimits"]


def test_no_usable_cgroups_names_both_versions() -> None:
    host = HostCgroups(v1={"cpu": Path("/c")}, v2=Path("/u"))
    plan = plan_isolation("auto", host, is_linux=True, euid=0, namespaces_problem=None)
    assert plan.kind == "posix"
    reason = plan.report.missing["cgroups/cpu"]
    assert "cgroup2 mount at /u has no controllers" in reason
    assert "no cgroup v1 cpu and memory hierarchies" in reason


@pytest.mark.parametrize(
    ("host", "euid", "linux", "reason"),
    [
        (V2_HOST, 1000, True, "not root"),
        (HostCgroups(), 0, True, "no cgroup2 mount"),
        (V2_HOST, 0, False, "not Linux"),
    ],
)
def test_cgroups_mode_refuses_clearly(
    host: HostCgroups, euid: int, linux: bool, reason: str
) -> None:
    expected = f"cgroups isolation is unavailable: {reason}"
    with pytest.raises(IsolationUnavailableError, match=expected):
        plan_isolation("cgroups", host, is_linux=linux, euid=euid, namespaces_problem=None)


def test_posix_mode_on_a_capable_host() -> None:
    plan = plan_isolation("posix", V1_HOST, is_linux=True, euid=0, namespaces_problem=None)
    assert plan.kind == "posix"
    assert plan.report.missing["cgroups/cpu"] == "posix isolation was selected"


def test_unknown_mode() -> None:
    with pytest.raises(ValueError, match="isolation mode must be one of auto, cgroups, posix"):
        plan_isolation("docker", V1_HOST, is_linux=True, euid=0, namespaces_problem=None)  # type: ignore[arg-type]


def test_report_is_one_line() -> None:
    report = IsolationReport("posix", ["posix/session"], {"cgroups/cpu": "not root (euid 1000)"})
    assert str(report) == (
        "isolation posix: active posix/session; missing cgroups/cpu (not root (euid 1000))"
    )
    assert "\n" not in report.summary()
    assert "missing nothing" in IsolationReport("x", [], {}).summary()


def test_select_posix_with_a_given_host(tmp_path: Path) -> None:
    isolation = select_isolation("posix", "emporion-unit", run_dir=tmp_path, host=V1_HOST)
    assert isolation.name == "posix"
    assert "cgroups/memory" in isolation.report.missing


def test_select_refuses_a_bad_root_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=re.escape("invalid cgroup root name '../x'")):
        select_isolation("posix", "../x", run_dir=tmp_path, host=V1_HOST)
