"""destroy(), launch failures and orphan cleanup leave no process and no cgroup behind."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agent.isolation import (
    ContainerLimits,
    Isolation,
    LaunchError,
    LaunchSpec,
    procfs,
    select_isolation,
)
from tests.integration.isolation.conftest import Start, leftover_cgroups, marked_processes
from tests.integration.isolation.support import wait_for

pytestmark = pytest.mark.root

# Three children with a grandchild each, and a daemon that double-forks out of the session.
PROCESS_TREE = r"""
import os, time

def sleep_forever():
    time.sleep(300)
    os._exit(0)

for _ in range(3):
    if os.fork() == 0:
        if os.fork() == 0:
            sleep_forever()
        sleep_forever()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        with open("daemon", "w") as f:
            f.write("started")
        sleep_forever()
    os._exit(0)
sleep_forever()
"""


def gone(pid: int) -> bool:
    stat = procfs.read_stat(pid)
    return stat is None or stat.exited


@pytest.mark.parametrize("namespaces", [True, False], ids=["namespaces", "no-namespaces"])
def test_destroy_kills_the_whole_tree_and_an_escaped_daemon(
    cgroup_isolation: Isolation, start: Start, root_name: str, namespaces: bool
) -> None:
    if namespaces and "namespaces/pid" in cgroup_isolation.report.missing:
        pytest.skip("PID namespaces unavailable here")
    container = start(cgroup_isolation, [sys.executable, "-c", PROCESS_TREE], namespaces=namespaces)
    wait_for((container.sandbox / "daemon").exists)
    # The task, 3 children, 3 grandchildren and the daemon (the launch helper and the
    # namespace init do not carry the task's environment).
    wait_for(lambda: len(marked_processes(root_name)) == 8)
    pids = set(marked_processes(root_name))
    sessions = {stat.session for pid in pids if (stat := procfs.read_stat(pid)) is not None}
    assert len(sessions) == 2  # the container's session and the daemon's own

    container.destroy()

    assert all(gone(pid) for pid in pids)
    assert marked_processes(root_name) == []
    assert not any(Path(path).exists() for path in container.state().cgroups)
    assert leftover_cgroups(root_name) == []  # the root is removed with its last container
    info = container.poll()
    assert info is not None
    assert info.signal == 9
    container.destroy()  # idempotent


def test_destroy_after_exit_keeps_the_exit_status(
    cgroup_isolation: Isolation, start: Start
) -> None:
    container = start(cgroup_isolation, "exit 5")
    wait_for(lambda: container.poll() is not None)
    container.destroy()
    info = container.poll()
    assert info is not None
    assert info.status == 5


@pytest.mark.parametrize(
    ("command", "fields", "message"),
    [
        (["no-such-command-emporion"], {}, "command 'no-such-command-emporion' not found in PATH="),
        (["/nonexistent/bin/x"], {}, "command '/nonexistent/bin/x' not found"),
        (["./stdout"], {}, "cannot execute command './stdout': Permission denied"),
        (
            ["true"],
            {"user": "no-such-user-emporion"},
            "user 'no-such-user-emporion' does not exist",
        ),
        (["true"], {"namespaces": False, "user": "no-such-user-x"}, "user 'no-such-user-x'"),
    ],
)
def test_launch_failures_name_the_problem_and_leave_nothing(  # noqa: PLR0917
    cgroup_isolation: Isolation,
    start: Start,
    root_name: str,
    tmp_path: Path,
    command: list[str],
    fields: dict[str, object],
    message: str,
) -> None:
    with pytest.raises(LaunchError, match="cannot launch container c0: ") as raised:
        start(cgroup_isolation, command, **fields)
    assert message in str(raised.value)
    assert leftover_cgroups(root_name) == []
    assert marked_processes(root_name) == []
    assert list((tmp_path / "run").glob("*")) == []


def test_launch_failure_is_told_in_the_sandbox_too(
    cgroup_isolation: Isolation, start: Start, tmp_path: Path
) -> None:
    with pytest.raises(LaunchError):
        start(cgroup_isolation, ["no-such-command-emporion"], container_id="failed")
    stderr = (tmp_path / "sandboxes" / "failed" / "stderr").read_text()
    assert "emporion: launch failed: command 'no-such-command-emporion' not found" in stderr


def test_duplicate_container_id_is_refused(cgroup_isolation: Isolation, start: Start) -> None:
    start(cgroup_isolation, ["sleep", "30"], container_id="twice")
    with pytest.raises(LaunchError, match="cannot launch container twice: it already exists"):
        start(cgroup_isolation, ["sleep", "30"], container_id="twice")


def test_missing_sandbox_is_refused(cgroup_isolation: Isolation, tmp_path: Path) -> None:
    spec = LaunchSpec(
        "c1", ["true"], {}, tmp_path / "absent", ContainerLimits.from_resources(1, 64)
    )
    with pytest.raises(LaunchError, match=r"sandbox .*absent is not a directory"):
        cgroup_isolation.launch(spec)


def test_cleanup_orphans_after_a_restart(
    cgroup_isolation: Isolation, start: Start, root_name: str, tmp_path: Path
) -> None:
    keep = start(cgroup_isolation, ["sleep", "30"], container_id="keep")
    orphan = start(cgroup_isolation, "sleep 30 & sleep 30 & wait", container_id="orphan")
    # A cgroup an agent created but never recorded (it died before writing its state).
    bare = [Path(path).parent / "bare" for path in keep.state().cgroups]
    for path in bare:
        path.mkdir()
    restarted = select_isolation("auto", root_name, run_dir=tmp_path / "run")

    assert restarted.cleanup_orphans({"keep"}) == ["bare", "orphan"]

    assert not any(path.exists() for path in bare)
    assert not any(Path(path).exists() for path in orphan.state().cgroups)
    assert orphan.poll() is not None  # killed (and reaped here, its parent)
    assert keep.poll() is None
    assert all(Path(path).exists() for path in keep.state().cgroups)
    assert restarted.cleanup_orphans({"keep"}) == []
