"""A real 2-agent local cluster for the batch framework's fault tests, and ways to hurt it.

Agents' executors and their worker processes run with their cwd in a sandbox under the agent's
work dir (``<cluster root>/agent-<i>/...``), which is how :func:`sandbox_processes` finds them
without knowing the framework's internals: "what runs for agent i" is what runs under its
directory. :func:`kill_agent` kills an agent with SIGKILL together with everything under its
directory, as when the machine itself dies.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from emporion.local_cluster import LocalCluster

WAIT_SECONDS = 60.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """A master and two agents, shared by a module's tests (each makes its own context)."""
    with LocalCluster(agents=2, http_port=None) as running:
        yield running


def master_of(cluster: LocalCluster) -> str:
    """The cluster's master address (started clusters always have one)."""
    assert cluster.master_address is not None
    return cluster.master_address


def _cwd(pid: int) -> Path | None:
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def sandbox_processes(cluster: LocalCluster, agent: int | None = None) -> list[int]:
    """Processes whose cwd is under an agent's work dir (its executors and their workers)."""
    roots = [cluster.root / f"agent-{agent}"] if agent is not None else [cluster.root]
    found = []
    for pid in _pids():
        cwd = _cwd(pid)
        if cwd is not None and any(cwd.is_relative_to(root) for root in roots):
            found.append(pid)
    return found


def agent_pid(cluster: LocalCluster, agent: int) -> int:
    """The pid of agent ``agent`` (found by the work dir on its command line)."""
    work_dir = str(cluster.root / f"agent-{agent}")
    for pid in _pids():
        args = _cmdline(pid)
        if "agent" in args and work_dir in args:
            return pid
    raise AssertionError(f"no process runs agent-{agent} (work dir {work_dir})")


def kill_agent(cluster: LocalCluster, agent: int) -> list[int]:
    """SIGKILL agent ``agent`` and every process under its work dir; the pids killed."""
    victims = [agent_pid(cluster, agent), *sandbox_processes(cluster, agent)]
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return victims


def wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT_SECONDS) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"after {timeout:g}s still not: {what}")
        time.sleep(0.1)


def holders(path: Path) -> list[int]:
    """The processes (host pids) that have ``path`` open."""
    target = str(path)
    found = []
    for pid in _pids():
        try:
            descriptors = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in descriptors:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    found.append(pid)
                    break
            except OSError:
                continue
    return found
