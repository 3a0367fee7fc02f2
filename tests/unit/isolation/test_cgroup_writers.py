"""The cgroup writers against a fake tree of plain files (no kernel, no processes).

A plain directory does not grow control files the way cgroupfs does, so these tests check
what the drivers write and read; the real behaviour is in tests/integration/isolation.
"""

from __future__ import annotations

import errno
import time
from pathlib import Path

import pytest

from agent.isolation import ContainerLimits, IsolationError, cgroupfs, cgroups_v1, cgroups_v2
from agent.isolation.cgroups_v1 import CgroupsV1, V1Cgroups
from agent.isolation.cgroups_v2 import CgroupsV2, V2Cgroup
from agent.isolation.limits import MIB

HALF_CPU = ContainerLimits.from_resources(cpus=0.5, mem_mb=64)
UNLIMITED = ContainerLimits(cpus=None, mem_bytes=None, pids_max=None)
ALL_V2 = frozenset({"cpu", "memory", "pids", "io"})


@pytest.fixture
def mount(tmp_path: Path) -> Path:
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpu io memory pids\n")
    (root / "cgroup.subtree_control").write_text("io\n")
    return root


def test_v2_create_enables_controllers_and_writes_limits(mount: Path) -> None:
    driver = CgroupsV2(mount, "emporion", ALL_V2)
    cgroup = driver.create("c1", HALF_CPU)
    path = mount / "emporion" / "c1"
    assert cgroup.paths == (path,)
    assert cgroup.procs_files == (path / "cgroup.procs",)
    # Only controllers not yet enabled are asked for, at the mount and under our root.
    assert (mount / "cgroup.subtree_control").read_text() == "+cpu +memory +pids"
    assert (mount / "emporion" / "cgroup.subtree_control").read_text() == "+cpu +memory +pids"
    assert (path / "cpu.max").read_text() == "50000 100000"
    assert (path / "cpu.weight").read_text() == "50"
    assert (path / "memory.max").read_text() == str(64 * MIB)
    assert (path / "pids.max").read_text() == "4096"
    # Optional files are written only where the kernel offers them.
    assert not (path / "memory.swap.max").exists()
    assert not (path / "memory.oom.group").exists()


def test_v2_without_pids_controller_skips_pids(mount: Path) -> None:
    CgroupsV2(mount, "emporion", frozenset({"cpu", "memory"})).create("c1", HALF_CPU)
    assert not (mount / "emporion" / "c1" / "pids.max").exists()
    assert (mount / "cgroup.subtree_control").read_text() == "+cpu +memory"


def test_v2_optional_files_and_unlimited_values(tmp_path: Path) -> None:
    path = tmp_path / "c1"
    path.mkdir()
    for name in ("memory.swap.max", "memory.oom.group"):
        (path / name).write_text("")
    cgroup = V2Cgroup("c1", path, ("cpu", "memory", "pids"))
    cgroup.initialise(HALF_CPU)
    assert (path / "memory.swap.max").read_text() == "0"  # no swapping past the limit
    assert (path / "memory.oom.group").read_text() == "1"  # an OOM kill takes the container
    cgroup.update(UNLIMITED)
    assert (path / "cpu.max").read_text() == "max 100000"
    assert (path / "cpu.weight").read_text() == "100"
    assert (path / "memory.max").read_text() == "max"
    assert (path / "memory.swap.max").read_text() == "max"
    assert (path / "pids.max").read_text() == "max"


def test_v2_stats_parse_kernel_files(tmp_path: Path) -> None:
    path = tmp_path / "c1"
    path.mkdir()
    files = {
        "cpu.stat": "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n"
        "nr_periods 30\nnr_throttled 12\nthrottled_usec 750000\n",
        "memory.current": "1048576\n",
        "memory.peak": "67108864\n",
        "memory.max": "67108864\n",
        "memory.events": "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\noom_group_kill 1\n",
        "pids.current": "3\n",
    }
    for name, text in files.items():
        (path / name).write_text(text)
    stats = V2Cgroup("c1", path, ("cpu", "memory", "pids")).stats()
    assert stats.cpu_usage_s == 2.5
    assert stats.cpu_periods == 30
    assert stats.cpu_throttled_periods == 12
    assert stats.cpu_throttled_s == 0.75
    assert stats.mem_usage_bytes == MIB
    assert stats.mem_peak_bytes == 64 * MIB
    assert stats.mem_limit_bytes == 64 * MIB
    assert stats.mem_limit_hits == 7
    assert stats.pids_current == 3
    assert stats.oom_kills == 1


def test_v2_stats_of_an_unlimited_cgroup_on_an_old_kernel(tmp_path: Path) -> None:
    (tmp_path / "memory.max").write_text("max\n")
    stats = V2Cgroup("c1", tmp_path, ("memory",)).stats()
    assert stats.mem_limit_bytes is None
    assert stats.mem_peak_bytes is None  # memory.peak is Linux 5.19+
    assert stats.oom_kills is None


def test_v2_kill_uses_cgroup_kill(tmp_path: Path) -> None:
    (tmp_path / "cgroup.kill").write_text("")
    V2Cgroup("c1", tmp_path, ()).kill_round()
    assert (tmp_path / "cgroup.kill").read_text() == "1"


def test_v2_kill_freezes_when_there_is_no_cgroup_kill(tmp_path: Path) -> None:
    (tmp_path / "cgroup.freeze").write_text("0")
    (tmp_path / "cgroup.events").write_text("populated 0\nfrozen 1\n")
    (tmp_path / "cgroup.procs").write_text("")
    V2Cgroup("c1", tmp_path, ()).kill_round()
    assert (tmp_path / "cgroup.freeze").read_text() == "0"  # thawed again afterwards


def test_v2_existing_cgroup_is_refused(mount: Path) -> None:
    driver = CgroupsV2(mount, "emporion", ALL_V2)
    driver.create("c1", HALF_CPU)
    with pytest.raises(IsolationError, match="already exists: container 'c1'"):
        driver.create("c1", HALF_CPU)


def test_v2_busy_parent_gets_a_hint(mount: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def busy(path: Path, value: str) -> None:
        cause = OSError(errno.EBUSY, "Device or resource busy")
        raise IsolationError(f"cannot write {value!r} to {path}: busy") from cause

    monkeypatch.setattr(cgroups_v2, "write", busy)
    with pytest.raises(IsolationError, match="run the agent in a leaf cgroup"):
        CgroupsV2(mount, "emporion", ALL_V2).create("c1", HALF_CPU)


def test_v2_lists_removes_and_prunes(mount: Path) -> None:
    driver = CgroupsV2(mount, "emporion", ALL_V2)
    cgroup = driver.create("c1", HALF_CPU)
    for name in (".hidden", "not valid"):
        (driver.root / name).mkdir()
    nested = cgroup.path / "sub"
    nested.mkdir()
    assert driver.container_ids() == {"c1"}
    assert driver.open("c1") is not None
    assert driver.open("c2") is None
    for file in cgroup.path.iterdir():  # cgroupfs would not need this; plain dirs do
        if file.is_file():
            file.unlink()
    cgroup.remove(time.monotonic() + 1)
    assert not cgroup.path.exists()
    for name in (".hidden", "not valid"):
        (driver.root / name).rmdir()
    (driver.root / "cgroup.subtree_control").unlink()
    driver.remove_root_if_empty()
    assert not driver.root.exists()


def test_v2_remove_gives_up_at_the_deadline(tmp_path: Path) -> None:
    (tmp_path / "c1").mkdir()
    (tmp_path / "c1" / "busy").write_text("")
    with pytest.raises(IsolationError, match=r"cannot remove cgroup .*c1"):
        V2Cgroup("c1", tmp_path / "c1", ()).remove(time.monotonic() + 0.02)


def test_v2_needs_cpu_and_memory(mount: Path) -> None:
    with pytest.raises(ValueError, match="lacks the cpu controller"):
        CgroupsV2(mount, "emporion", frozenset({"memory"}))


def record_writes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    written: list[str] = []

    def recording(path: Path | str, value: str) -> None:
        written.append(f"{Path(path).name}={value}")
        cgroupfs.write(path, value)

    monkeypatch.setattr(cgroups_v1, "write", recording)
    return written


def test_v1_orders_memory_and_swap_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    memory = tmp_path / "memory"
    memory.mkdir()
    (memory / "memory.limit_in_bytes").write_text(str(64 * MIB))
    (memory / "memory.memsw.limit_in_bytes").write_text(str(64 * MIB))
    cgroups = V1Cgroups("c1", {"memory": memory})
    written = record_writes(monkeypatch)
    cgroups.update(ContainerLimits(cpus=None, mem_bytes=128 * MIB))  # growing: swap limit first
    cgroups.update(ContainerLimits(cpus=None, mem_bytes=32 * MIB))  # shrinking: memory first
    assert written == [
        f"memory.memsw.limit_in_bytes={128 * MIB}",
        f"memory.limit_in_bytes={128 * MIB}",
        f"memory.limit_in_bytes={32 * MIB}",
        f"memory.memsw.limit_in_bytes={32 * MIB}",
    ]


def test_v1_create_writes_every_controller(tmp_path: Path) -> None:
    mounts = {c: tmp_path / c for c in ("cpu", "cpuacct", "memory", "pids", "freezer", "blkio")}
    for path in mounts.values():
        path.mkdir()
    driver = CgroupsV1(mounts, "emporion")
    cgroups = driver.create("c1", HALF_CPU)
    assert len(cgroups.paths) == 5  # blkio is not used
    assert (mounts["cpu"] / "emporion/c1/cpu.cfs_quota_us").read_text() == "50000"
    assert (mounts["cpu"] / "emporion/c1/cpu.cfs_period_us").read_text() == "100000"
    assert (mounts["cpu"] / "emporion/c1/cpu.shares").read_text() == "512"
    assert (mounts["memory"] / "emporion/c1/memory.limit_in_bytes").read_text() == str(64 * MIB)
    assert (mounts["pids"] / "emporion/c1/pids.max").read_text() == "4096"
    assert driver.container_ids() == {"c1"}


def test_v1_comounted_controllers_share_a_directory(tmp_path: Path) -> None:
    both = tmp_path / "cpu,cpuacct"
    both.mkdir()
    (tmp_path / "memory").mkdir()
    driver = CgroupsV1({"cpu": both, "cpuacct": both, "memory": tmp_path / "memory"}, "emporion")
    paths = driver.create("c1", HALF_CPU).paths
    assert paths == (both / "emporion/c1", tmp_path / "memory/emporion/c1")


def test_v1_failed_create_leaves_no_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mounts = {c: tmp_path / c for c in ("cpu", "memory")}
    for path in mounts.values():
        path.mkdir()

    def failing(path: Path, value: str) -> None:
        raise IsolationError(f"cannot write {value!r} to {path}: Invalid argument")

    monkeypatch.setattr(cgroups_v1, "write", failing)
    with pytest.raises(IsolationError, match="Invalid argument"):
        CgroupsV1(mounts, "emporion").create("c1", HALF_CPU)
    assert not (mounts["cpu"] / "emporion/c1").exists()
    assert not (mounts["memory"] / "emporion/c1").exists()


def test_v1_stats_treat_huge_limits_as_unlimited(tmp_path: Path) -> None:
    memory = tmp_path / "memory"
    memory.mkdir()
    (memory / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (memory / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\n")
    stats = V1Cgroups("c1", {"memory": memory}).stats()
    assert stats.mem_limit_bytes is None
    assert stats.oom_kills is None  # kernels before 4.13 do not count them
