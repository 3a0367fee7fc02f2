"""A container's process on the real kernel: session, cgroups, namespaces, limits, sandbox."""

from __future__ import annotations

import os
import pwd
import signal
import sys
import time
from pathlib import Path

import pytest

from agent.isolation import Container, ContainerLimits, Isolation, procfs
from tests.integration.isolation.conftest import Start
from tests.integration.isolation.support import sandbox_text, wait_exit, wait_for

pytestmark = pytest.mark.root

HALF_CPU_64M = ContainerLimits.from_resources(cpus=0.5, mem_mb=64)


def cgroup_of(pid: int) -> str:
    return Path(f"/proc/{pid}/cgroup").read_text()


def ns_pids(pid: int) -> list[int]:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("NSpid:"):
            return [int(n) for n in line.split()[1:]]
    raise AssertionError(f"no NSpid for {pid}")


def test_process_runs_in_its_session_cgroups_and_pid_namespace(
    namespaced_isolation: Isolation, start: Start
) -> None:
    script = (
        "echo pid=$$; grep NSpid /proc/$$/status; ls /proc | grep -c '^[0-9]'; "
        "echo to-stderr >&2; echo ready > ready; exec sleep 30"
    )
    container = start(namespaced_isolation, script, limits=HALF_CPU_64M)
    wait_for((container.sandbox / "ready").exists)
    out = sandbox_text(container, "stdout").splitlines()
    assert out[0] == "pid=2"  # PID 1 is the namespace's init, the task is its first child
    assert out[1].split() == ["NSpid:", "2"]  # its /proc is the new namespace's
    assert int(out[2]) <= 5  # a fresh /proc shows only the container's processes
    assert sandbox_text(container, "stderr") == "to-stderr\n"

    members = container.state().cgroups
    pids = {int(p) for path in members for p in (Path(path) / "cgroup.procs").read_text().split()}
    assert container.pid in pids
    assert len(pids) == 3  # helper, init, the task
    # Seen from the host: the helper in our namespace, init and the task one level down.
    assert container.init_pid is not None
    (task,) = pids - {container.pid, container.init_pid}
    assert ns_pids(container.pid) == [container.pid]
    assert ns_pids(container.init_pid) == [container.init_pid, 1]
    assert ns_pids(task) == [task, 2]
    for pid in pids:
        stat = procfs.read_stat(pid)
        assert stat is not None
        assert stat.session == container.pid  # its own session, led by the launched process
        assert f"/{container.container_id}" in cgroup_of(pid)
    limits_dir = next(Path(p) for p in members if "/memory/" in p or p.endswith("/memory"))
    if (limits_dir / "memory.limit_in_bytes").exists():
        assert int((limits_dir / "memory.limit_in_bytes").read_text()) == 64 * 1024 * 1024
    assert container.poll() is None
    container.destroy()
    info = container.poll()
    assert info is not None
    assert info.signal == signal.SIGKILL
    assert not info.oom_killed


def test_exit_status_passes_through_the_namespace_init(
    namespaced_isolation: Isolation, start: Start
) -> None:
    info = wait_exit(start(namespaced_isolation, "exit 3"))
    assert (info.status, info.signal, info.oom_killed) == (3, None, False)
    assert info.message == "The command exited with status 3"


def test_sigterm_reaches_a_task_without_a_handler(
    namespaced_isolation: Isolation, start: Start
) -> None:
    # As PID 1 the task would ignore SIGTERM; behind our init it dies of it.
    container = start(namespaced_isolation, ["sleep", "30"])
    container.signal_all(signal.SIGTERM)
    info = wait_exit(container, timeout_s=5)
    assert (info.status, info.signal) == (None, signal.SIGTERM)
    assert info.message == "The command was killed by SIGTERM"


def test_signals_to_the_launched_process_are_forwarded(
    namespaced_isolation: Isolation, start: Start
) -> None:
    # A runtime may signal container.pid alone: the helper passes it to init, init to the task.
    container = start(namespaced_isolation, "echo ready > ready; exec sleep 30")
    wait_for((container.sandbox / "ready").exists)
    os.kill(container.pid, signal.SIGINT)
    info = wait_exit(container, timeout_s=5)
    assert (info.status, info.signal) == (None, signal.SIGINT)


def test_terminate_escalates_to_sigkill(namespaced_isolation: Isolation, start: Start) -> None:
    container = start(namespaced_isolation, "trap '' TERM; echo ready > ready; sleep 30 & wait")
    wait_for((container.sandbox / "ready").exists)
    began = time.monotonic()
    info = container.terminate(grace_s=0.3)
    assert time.monotonic() - began < 3
    assert info is not None
    assert info.signal == signal.SIGKILL


@pytest.mark.parametrize("namespaces", [True, False])
def test_oom_kill_is_reported(cgroup_isolation: Isolation, start: Start, namespaces: bool) -> None:
    if namespaces and "namespaces/pid" in cgroup_isolation.report.missing:
        pytest.skip("PID namespaces unavailable here")
    # bytes * n writes every page, so the memory is really used (a bare bytearray may not be).
    allocate = "b = b'x' * (300 * 1024 * 1024); import time; time.sleep(5)"
    container = start(
        cgroup_isolation,
        [sys.executable, "-c", allocate],
        limits=HALF_CPU_64M,
        namespaces=namespaces,
    )
    info = wait_exit(container)
    assert info.oom_killed
    assert info.signal == signal.SIGKILL
    assert "memory limit of 64 MiB exceeded" in info.message
    stats = container.stats()
    assert stats.oom_kills is None or stats.oom_kills >= 1


def test_cpu_quota_throttles_a_busy_loop(cgroup_isolation: Isolation, start: Start) -> None:
    # Two busy loops want two cores, so the quota binds even on a busy machine.
    loops = "while :; do :; done & while :; do :; done"
    container = start(cgroup_isolation, loops, limits=HALF_CPU_64M)
    before, began = container.stats(), time.monotonic()
    time.sleep(1.5)
    after, elapsed = container.stats(), time.monotonic() - began
    assert before.cpu_usage_s is not None
    assert after.cpu_usage_s is not None
    share = (after.cpu_usage_s - before.cpu_usage_s) / elapsed
    # Only the upper bound is the limit; a busy CI machine may give the loop less.
    assert 0.05 < share < 0.75, f"used {share:.2f} of a core with cpus=0.5"
    assert after.cpu_throttled_periods is not None
    assert after.cpu_throttled_periods > 0
    assert after.cpu_periods is not None
    assert after.cpu_periods >= after.cpu_throttled_periods


def test_update_changes_the_limits(cgroup_isolation: Isolation, start: Start) -> None:
    container = start(cgroup_isolation, ["sleep", "30"], limits=HALF_CPU_64M)
    container.update(ContainerLimits.from_resources(cpus=2, mem_mb=256, pids_max=100))
    stats = container.stats()
    assert stats.mem_limit_bytes == 256 * 1024 * 1024
    cpu = next(Path(p) for p in container.state().cgroups if (Path(p) / "cpu.shares").exists())
    assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "200000"
    assert (cpu / "cpu.shares").read_text().strip() == "2048"
    container.update(HALF_CPU_64M)  # and back down
    assert container.stats().mem_limit_bytes == 64 * 1024 * 1024


def test_stats_while_running(cgroup_isolation: Isolation, start: Start) -> None:
    container = start(cgroup_isolation, "sleep 30 & sleep 30 & wait", limits=HALF_CPU_64M)
    wait_for(lambda: (container.stats().pids_current or 0) >= 3)
    stats = container.stats()
    assert stats.mem_limit_bytes == 64 * 1024 * 1024
    assert stats.mem_usage_bytes is not None
    assert 0 < stats.mem_usage_bytes < 64 * 1024 * 1024
    assert stats.oom_kills == 0


def test_user_and_rlimits(cgroup_isolation: Isolation, start: Start) -> None:
    nobody = pwd.getpwnam("nobody")
    limits = ContainerLimits.from_resources(cpus=1, mem_mb=64, rlimits={"nofile": 256})
    container = start(cgroup_isolation, "id -u; ulimit -n", limits=limits, user="nobody")
    assert wait_exit(container).status == 0
    assert sandbox_text(container, "stdout").split() == [str(nobody.pw_uid), "256"]
    assert os.stat(container.sandbox / "stdout").st_uid == nobody.pw_uid


def test_pidfd_is_readable_when_the_process_ends(cgroup_isolation: Isolation, start: Start) -> None:
    container: Container = start(cgroup_isolation, "sleep 0.2")
    assert container.poll() is None
    assert wait_exit(container, timeout_s=5).status == 0
    assert container.pidfd() is None  # reaped: nothing left to watch


def test_environment_and_working_directory(cgroup_isolation: Isolation, start: Start) -> None:
    container = start(cgroup_isolation, ["sh", "-c", 'echo "$EMPORION_TEST_MARKER"; pwd'])
    assert wait_exit(container).status == 0
    marker, cwd = sandbox_text(container, "stdout").split()
    assert marker.startswith("emporion-test-")
    assert cwd == str(container.sandbox)
