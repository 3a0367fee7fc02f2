"""``bench.launch_latency --tasks-per-s`` leaves nothing behind when it is killed: its master,
both agents, their fork servers and every task go with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.isolation import procfs
from tests.integration.agent.support import ROOT, processes_with
from tests.integration.agent_runtime_defects.processes import (
    alive,
    child_running,
    children_of,
    kill_quietly,
    wait_for,
)

pytestmark = pytest.mark.root


@pytest.fixture
def bench() -> Iterator[subprocess.Popen[bytes]]:
    if os.geteuid() != 0:
        pytest.skip(f"the agents' isolation needs root; running as euid {os.geteuid()}")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.launch_latency",
            "--tasks-per-s",
            "100000",
            "--command",
            "sleep 3600",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # So that the fixture can clean up after a failure.
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    yield process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _session(pid: int) -> int | None:
    stat = procfs.read_stat(pid)
    return None if stat is None else stat.session


def _agents(bench: int) -> dict[int, str]:
    # Not start_child's trampoline (its command line holds the agent's until it execs).
    return {
        pid: cmd
        for pid, cmd in children_of(bench).items()
        if "-m agent " in cmd and "os.execvp" not in cmd
    }


def test_a_killed_throughput_bench_stops_its_master_agents_servers_and_tasks(
    bench: subprocess.Popen[bytes],
) -> None:
    wait_for(lambda: len(_agents(bench.pid)) == 2, "the bench's two agents")
    master = child_running(bench.pid, "-m master")
    assert master is not None
    agents = _agents(bench.pid)
    works = {cmd.split("--work-dir ")[1].split()[0] for cmd in agents.values()}
    assert len(works) == 2
    wait_for(lambda: all(processes_with(work) for work in works), "tasks on both agents")

    # The servers and the helpers they cloned share a command line; helpers lead a session.
    def servers() -> list[int]:
        return [
            pid
            for agent in agents
            for pid, cmd in children_of(agent).items()
            if "init.py --fork-server" in cmd and _session(pid) not in (None, pid)
        ]

    wait_for(lambda: len(servers()) == 2, "both agents' fork servers")
    server_pids = servers()
    try:
        bench.kill()  # SIGKILL: only the kernel's parent-death signal stops its children.
        bench.wait()
        gone = [master, *agents, *server_pids]
        wait_for(lambda: not any(alive(pid) for pid in gone), "the master, agents and servers")
        wait_for(lambda: not any(processes_with(work) for work in works), "the agents' tasks")
    finally:
        for work in works:
            for pid in processes_with(work):
                kill_quietly(pid, signal.SIGKILL)
            subprocess.run(["rm", "-rf", str(Path(work).parent)], check=False)
