"""Benchmarks and harness processes leave nothing behind, however they end (issue 10).

``bench.launch_throughput`` killed by a timeout used to leave its master running. Each test
starts a real benchmark (or a small program using :func:`start_child`), waits until its
children run, kills it (SIGKILL: nothing of it runs any more; SIGTERM: a timeout), and waits
for every child to be gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.agent.conftest import needs_root
from tests.integration.agent.support import ROOT, processes_with
from tests.integration.agent_runtime_defects.processes import (
    alive,
    child_running,
    children_of,
    kill_quietly,
    serving_clients,
    wait_for,
)


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts; killed (with their process groups) at the end whatever
    happened."""
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _start(started: list[subprocess.Popen[bytes]], args: list[str]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        args,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # So that the fixture can clean up after a failure.
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    started.append(process)
    return process


def _throughput(started: list[subprocess.Popen[bytes]]) -> tuple[subprocess.Popen[bytes], int]:
    """A launch_throughput run far too long to end by itself, and its master's pid."""
    bench = _start(
        started,
        [
            sys.executable,
            "-m",
            "bench.launch_throughput",
            "--agents",
            "1",
            "--tasks",
            "100000000",
            "--timeout",
            "3600",
        ],
    )
    wait_for(lambda: child_running(bench.pid, "-m master") is not None, "the bench's master")
    master = child_running(bench.pid, "-m master")
    assert master is not None
    # Up and talking to the bench's agents (it printed its address, and nothing but the bench
    # going can end it now).
    wait_for(lambda: serving_clients(master), "the master to serve the bench")
    return bench, master


def test_a_killed_launch_throughput_bench_takes_its_master_with_it(
    started: list[subprocess.Popen[bytes]],
) -> None:
    bench, master = _throughput(started)
    bench.kill()  # SIGKILL: no handler, no atexit; only the kernel can end the master.
    bench.wait()
    wait_for(lambda: not alive(master), "the master to die with the bench")


def test_a_terminated_launch_throughput_bench_stops_its_master_and_exits(
    started: list[subprocess.Popen[bytes]],
) -> None:
    bench, master = _throughput(started)
    bench.send_signal(signal.SIGTERM)  # What a timeout sends.
    assert bench.wait(60) == 128 + signal.SIGTERM
    assert not alive(master)  # Stopped before the bench exited, not only by the kernel.


def test_children_die_with_a_program_killed_while_it_has_threads(
    started: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """start_child from a program with other threads running; SIGKILL of the program ends
    every child, each of which was in its own process group."""
    marker = f"child-cleanup-{tmp_path.name}"
    program = textwrap.dedent(
        f"""
        import threading, time
        from emporion.testing.child_processes import start_child
        threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()
        for _ in range(3):
            start_child(["sh", "-c", "sleep 3600 # {marker}"])
        print("started", flush=True)
        time.sleep(3600)
        """
    )
    parent = _start(started, [sys.executable, "-c", program])
    wait_for(lambda: len(processes_with(marker)) >= 3, "three children")
    children = children_of(parent.pid)
    assert all(os.getpgid(child) == child for child in children)  # Own process groups.
    parent.kill()
    parent.wait()
    wait_for(lambda: not processes_with(marker), "the children to die with their parent")


@pytest.mark.root
@needs_root
def test_a_killed_launch_latency_bench_stops_its_master_agent_and_tasks(
    started: list[subprocess.Popen[bytes]],
) -> None:
    """The agent's death signal is its shutdown (SIGUSR1): its tasks go with it."""
    bench = _start(
        started,
        [
            sys.executable,
            "-m",
            "bench.launch_latency",
            "--tasks",
            "100000",
            "--command",
            "sleep 3600",
            "--concurrency",
            "4",
        ],
    )
    wait_for(lambda: child_running(bench.pid, "-m agent") is not None, "the bench's agent")
    agent = child_running(bench.pid, "-m agent")
    master = child_running(bench.pid, "-m master")
    assert agent is not None
    assert master is not None
    argv = Path(f"/proc/{agent}/cmdline").read_bytes().decode().split("\0")
    work = Path(argv[argv.index("--work-dir") + 1])
    wait_for(lambda: processes_with(str(work)), "a task")
    try:
        bench.kill()
        bench.wait()
        wait_for(lambda: not alive(agent) and not alive(master), "the master and the agent")
        wait_for(lambda: not processes_with(str(work)), "the agent's tasks")
    finally:
        for pid in processes_with(str(work)):
            kill_quietly(pid, signal.SIGKILL)
        subprocess.run(["rm", "-rf", str(work.parent)], check=False)
