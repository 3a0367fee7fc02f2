"""The launch path's file handling without the kernel: run directories removed with plain
system calls (falling back to rmtree), a new cgroup's memory limits written in the order the
kernel accepts without reading them first, a v1 root made again when it is gone, and the
helper's atomic writes retried when a rename races a bind mount."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from agent.isolation import ContainerLimits, IsolationError, cgroupfs, cgroups_v1
from agent.isolation.cgroups_v1 import CgroupsV1, V1Cgroups
from agent.isolation.container import remove_run_dir
from agent.isolation.helper import steps
from agent.isolation.limits import MIB


def test_remove_run_dir_removes_its_files_and_it(tmp_path: Path) -> None:
    run = tmp_path / "c1"
    run.mkdir()
    for name in ("intent.json", "pids.json", "state.json", "exit_status", ".state.json.tmp"):
        (run / name).write_text("x")
    remove_run_dir(run)
    assert not run.exists()
    remove_run_dir(run)  # Gone already: nothing to do, no error.


def test_remove_run_dir_with_a_directory_in_it_takes_the_long_way(tmp_path: Path) -> None:
    run = tmp_path / "c1"
    (run / "nested" / "deeper").mkdir(parents=True)
    (run / "nested" / "deeper" / "file").write_text("x")
    (run / "pids.json").write_text("{}")
    remove_run_dir(run)
    assert not run.exists()


def record_writes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    written: list[str] = []

    def recording(path: Path | str, value: str) -> None:
        written.append(f"{Path(path).name}={value}")
        cgroupfs.write(path, value)

    monkeypatch.setattr(cgroups_v1, "write", recording)
    return written


def test_a_new_cgroup_lowers_its_memory_limit_before_the_swap_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = tmp_path / "memory"
    memory.mkdir()
    # What the kernel shows in a new cgroup: both limits unlimited.
    unlimited = str(cgroupfs.UNLIMITED_V1)
    (memory / "memory.limit_in_bytes").write_text(unlimited)
    (memory / "memory.memsw.limit_in_bytes").write_text(unlimited)
    (memory / "memory.oom_control").write_text("oom_kill_disable 0\n")
    written = record_writes(monkeypatch)
    real_read_int = cgroupfs.read_int
    reads: list[str] = []

    def recording_read(path: Path | str) -> int | None:
        reads.append(Path(path).name)
        return real_read_int(path)

    monkeypatch.setattr(cgroups_v1, "read_int", recording_read)
    V1Cgroups("c1", {"memory": memory}).initialise(
        ContainerLimits(cpus=None, mem_bytes=64 * MIB, pids_max=None)
    )
    # Lowering from unlimited: the memory limit first (memsw may never be below it).
    assert written == [
        "memory.oom_control=0",
        f"memory.limit_in_bytes={64 * MIB}",
        f"memory.memsw.limit_in_bytes={64 * MIB}",
    ]
    assert reads == []  # A new cgroup's limits are known: nothing read first.
    V1Cgroups("c1", {"memory": memory}).initialise(
        ContainerLimits(cpus=None, mem_bytes=None, pids_max=None)
    )
    assert written[-2:] == ["memory.memsw.limit_in_bytes=-1", "memory.limit_in_bytes=-1"]


def test_v1_makes_a_removed_root_again_at_the_next_create(tmp_path: Path) -> None:
    mounts = {c: tmp_path / c for c in ("cpu", "memory")}
    for path in mounts.values():
        path.mkdir()
    driver = CgroupsV1(mounts, "emporion")
    first = driver.create("c1", ContainerLimits.from_resources(cpus=0.5, mem_mb=64))
    for path in first.paths:  # Plain directories: empty them as the kernel would.
        for file in path.iterdir():
            file.unlink()
        path.rmdir()
    for mount in mounts.values():
        for file in (mount / "emporion").iterdir():
            file.unlink()
        (mount / "emporion").rmdir()
    second = driver.create("c2", ContainerLimits.from_resources(cpus=0.5, mem_mb=64))
    assert all(path.is_dir() for path in second.paths)
    assert driver.container_ids() == {"c2"}


def test_v1_create_names_a_missing_hierarchy(tmp_path: Path) -> None:
    mounts = {c: tmp_path / c for c in ("cpu", "memory")}
    mounts["cpu"].mkdir()  # memory's mount point does not exist
    driver = CgroupsV1(mounts, "emporion")
    with pytest.raises(IsolationError, match=r"cannot create cgroup .*memory"):
        driver.create("c1", ContainerLimits.from_resources(cpus=0.5, mem_mb=64))
    assert driver.container_ids() == set()


def test_the_helper_writes_again_a_file_whose_rename_crossed_a_new_mount(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_replace = os.replace
    calls: list[str] = []

    def replace_racing_a_bind(source: str, target: str) -> None:
        calls.append(target)
        if len(calls) < 3:  # init binding the directory onto itself, twice
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace_racing_a_bind)
    target = tmp_path / "pids.json"
    steps.write_atomically(str(target), '{"pid": 7}\n')
    assert target.read_text() == '{"pid": 7}\n'
    assert len(calls) == 3
    assert not (tmp_path / "pids.json.tmp").exists()


def test_the_helper_gives_up_on_a_rename_that_keeps_failing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def always_across(source: str, target: str) -> None:
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))

    monkeypatch.setattr(os, "replace", always_across)
    with pytest.raises(OSError, match="cross-device"):
        steps.write_atomically(str(tmp_path / "pids.json"), "{}\n")
