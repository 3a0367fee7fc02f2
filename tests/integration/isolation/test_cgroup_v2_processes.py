"""cgroup v2 process handling on the real kernel, where a cgroup2 mount exists.

The CI machines mount an empty cgroup2 hierarchy (every controller is bound to v1), so v2
limits cannot be tried there (tests/unit/isolation/test_cgroup_writers.py checks what is
written). Membership, cgroup.kill, the freezer and removal need no controller, and are tried
here for real.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.isolation import procfs
from agent.isolation.cgroups_v2 import V2Cgroup
from agent.isolation.detect import probe_cgroups

pytestmark = pytest.mark.root


@pytest.fixture
def v2_cgroup(root_name: str, leak_check: None) -> Iterator[V2Cgroup]:
    if os.geteuid() != 0:
        pytest.skip(f"cgroups need root; running as euid {os.geteuid()}")
    mount = probe_cgroups().v2
    if mount is None:
        pytest.skip("no cgroup2 mount on this host")
    root = mount / root_name
    root.mkdir()
    cgroup = V2Cgroup("c1", root / "c1", ())
    cgroup.path.mkdir()
    yield cgroup
    for path in (cgroup.path, root):
        if path.exists():
            path.rmdir()


def start_tree_in(cgroup: V2Cgroup, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A shell moved into ``cgroup`` before it forks two children and a grandchild."""
    shell = subprocess.Popen(
        ["sh", "-c", "read go; sleep 30 & (sleep 30 & wait) & wait"],
        stdin=subprocess.PIPE,
        env=env,
    )
    (cgroup.path / "cgroup.procs").write_text(str(shell.pid))
    assert shell.stdin is not None
    shell.stdin.write(b"go\n")
    shell.stdin.close()
    deadline = time.monotonic() + 5
    while len(cgroup.pids()) < 4:
        assert time.monotonic() < deadline, f"tree did not start: {cgroup.pids()}"
        time.sleep(0.01)
    return shell


@pytest.mark.parametrize(
    ("kill", "needs"),
    [
        (V2Cgroup.kill_by_cgroup_kill, "cgroup.kill"),  # Linux 5.14+
        (V2Cgroup.kill_frozen, "cgroup.freeze"),  # Linux 5.2+
    ],
    ids=["cgroup.kill", "freezer"],
)
def test_kill_round_empties_the_cgroup(
    v2_cgroup: V2Cgroup, env: dict[str, str], kill: Callable[[V2Cgroup], None], needs: str
) -> None:
    if not (v2_cgroup.path / needs).exists():
        pytest.skip(f"this kernel has no {needs}")
    shell = start_tree_in(v2_cgroup, env)
    pids = v2_cgroup.pids()
    assert shell.pid in pids
    kill(v2_cgroup)
    assert shell.wait(timeout=5) == -9
    deadline = time.monotonic() + 5
    while v2_cgroup.pids():
        assert time.monotonic() < deadline, f"still in the cgroup: {v2_cgroup.pids()}"
        time.sleep(0.01)
    for pid in pids:
        stat = procfs.read_stat(pid)
        assert stat is None or stat.exited
    assert (v2_cgroup.path / "cgroup.freeze").read_text().strip() in ("0", "")
    v2_cgroup.remove(time.monotonic() + 5)
    assert not v2_cgroup.path.exists()


def test_stats_without_controllers(v2_cgroup: V2Cgroup) -> None:
    stats = v2_cgroup.stats()
    assert stats.cpu_usage_s == 0  # cpu.stat is always there
    assert stats.mem_limit_bytes is None
    assert stats.pids_current is None


def test_remove_includes_nested_cgroups(v2_cgroup: V2Cgroup) -> None:
    (v2_cgroup.path / "nested" / "deeper").mkdir(parents=True)
    v2_cgroup.remove(time.monotonic() + 5)
    assert not Path(v2_cgroup.path).exists()
