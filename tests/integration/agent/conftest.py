"""Fixtures: a fake master, real agent processes, and a check that nothing leaks.

After each test every agent is shut down (SIGUSR1: kill its tasks) and the test fails if any
process started for it, or any container cgroup of its isolation root, is still there. Then
whatever a failed test left behind is destroyed, so one failure does not spill into the next.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from agent.isolation import select_isolation
from agent.isolation.selection import default_run_dir
from agent.runtime.main import isolation_root_name
from emporion.testing.chaos.leaks import cgroup_mounts
from tests.integration.agent.fake_master import FakeMaster
from tests.integration.agent.support import AgentProcess, processes_with, wait_until

StartAgent = Callable[..., AgentProcess]


def leftover_cgroups(root_name: str) -> list[Path]:
    """Container cgroups still under ``root_name`` in any hierarchy."""
    left = []
    for mount in cgroup_mounts():
        root = mount / root_name
        if root.is_dir():
            left += [p for p in root.iterdir() if p.is_dir()]
    return left


@pytest.fixture
def master(request: pytest.FixtureRequest) -> Iterator[FakeMaster]:
    """A fake master on 127.0.0.1, port 0; it serves ConnectBatched only when parametrized
    (indirectly) with True, so by default agents fall back to Connect."""
    fake = FakeMaster(batched=bool(getattr(request, "param", False)))
    yield fake
    fake.stop()


@pytest.fixture
def master_address(master: FakeMaster) -> str:
    """Where agents started by ``start_agent`` find their master (the fake one by default)."""
    return master.address


@pytest.fixture
def start_agent(tmp_path: Path, master_address: str) -> Iterator[StartAgent]:
    """Start agents (``start_agent(extra_flags, work_dir=...)``); check for leaks afterwards."""
    started: list[AgentProcess] = []
    work_dirs: set[Path] = set()

    def start(
        extra: Sequence[str] = (), work_dir: Path | None = None, isolation: str = "auto"
    ) -> AgentProcess:
        work = work_dir or tmp_path / "work"
        work_dirs.add(work)
        agent = AgentProcess(master_address, work, extra, isolation)
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.stop()
    problems = []
    for work in work_dirs:
        root_name = isolation_root_name(work.resolve())
        marker = str(work)
        try:
            wait_until(lambda: not processes_with(marker), "task processes to end", 15)  # noqa: B023
        except AssertionError:
            problems.append(f"processes left: {processes_with(marker)}")
        if left := leftover_cgroups(root_name):
            problems.append(f"cgroups left: {left}")
        select_isolation("auto", root_name=root_name).cleanup_orphans(set())
        shutil.rmtree(default_run_dir(root_name), ignore_errors=True)
    if problems:
        logs = "\n".join(agent.log()[-4000:] for agent in started)
        pytest.fail("; ".join(problems) + "\n" + logs)


def is_root_with_cgroups() -> bool:
    """Whether cgroups and namespaces can be used here (root, Linux, cgroups mounted)."""
    return os.geteuid() == 0 and bool(cgroup_mounts())


needs_root = pytest.mark.skipif(
    not is_root_with_cgroups(), reason="needs root and mounted cgroups to isolate containers"
)
