"""The cgroup roots on the launch path, on the real kernel: checked once per driver, re-made
when removed behind the agent's back, kept while any container has its run directory and
removed with the last one.

A launch no longer checks every root (each check took the kernel's cgroup mutex), and an exit
tries the roots only once the isolation's run directory is empty; these tests pin what that
must not change.
"""

from __future__ import annotations

import signal

import pytest

from agent.isolation import Isolation
from agent.isolation.detect import probe_cgroups
from tests.integration.isolation.conftest import Start, leftover_cgroups
from tests.integration.isolation.support import wait_for

pytestmark = pytest.mark.root


def test_roots_stay_while_a_container_is_left_and_go_with_the_last(
    cgroup_isolation: Isolation, start: Start, root_name: str
) -> None:
    first = start(cgroup_isolation, "exec sleep 60")
    second = start(cgroup_isolation, "exec sleep 60")
    roots = leftover_cgroups(root_name)
    assert roots, "launching made no cgroup root"
    first.destroy()
    assert first.poll() is not None
    # The second container still runs: its cgroups, and the roots above them, stay.
    assert leftover_cgroups(root_name) == roots
    assert all((root / second.container_id).is_dir() for root in roots)
    second.signal_all(signal.SIGKILL)
    wait_for(lambda: second.poll() is not None)
    second.destroy()
    assert leftover_cgroups(root_name) == []


def test_a_root_removed_behind_the_agents_back_is_made_again(
    cgroup_isolation: Isolation, start: Start, root_name: str
) -> None:
    first = start(cgroup_isolation, "exit 0")
    wait_for(lambda: first.poll() is not None)
    # Ended, but its run directory is kept (as the agent does until the exit is recorded):
    # the roots stay until it goes.
    first.destroy(keep_run_dir=True)
    roots = leftover_cgroups(root_name)
    assert roots
    for root in roots:  # An operator's cleanup, say, while the agent runs.
        root.rmdir()
    second = start(cgroup_isolation, "exit 3")
    wait_for(lambda: second.poll() is not None)
    info = second.poll()
    assert info is not None
    assert info.status == 3
    assert sorted(leftover_cgroups(root_name)) == sorted(roots)
    host = probe_cgroups()
    memory = host.v1.get("memory")
    if memory is not None:
        # Made again with the same settings as at first: children count in the root's usage.
        assert (memory / root_name / "memory.use_hierarchy").read_text().strip() == "1"
    second.destroy()
    first.remove_run_dir()
    assert leftover_cgroups(root_name) == []
