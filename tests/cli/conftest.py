"""One real local cluster (a master and one agent as processes) for every test in tests/cli.

The commands are run the way a person runs them: :func:`emporion` starts the installed
``emporion`` script (the one next to this Python) as a subprocess with ``EMPORION_MASTER`` set;
tests of the table and JSON output call :func:`emporion.cli.main` in-process, which is faster
and reads the same code. Posix isolation keeps the sandbox on the host's file system, so a
test can hand a running task a file to wait for.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from emporion.client import OperatorClient, discover
from emporion.local_cluster import LocalCluster

SCRIPT = Path(sys.executable).with_name("emporion")
"""The console script a user runs (``.venv/bin/emporion``)."""


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A master with one agent holding enough for a few small tasks at once."""
    with LocalCluster(
        agents=1,
        isolation="posix",
        agent_resources="cpus:2;mem:1024;disk:1000;ports:[31000-31099]",
        work_dir=tmp_path_factory.mktemp("cli-cluster"),
    ) as running:
        assert running.master_address is not None
        endpoints = discover(running.master_address)
        with OperatorClient(endpoints.http, endpoints.given) as operator:
            deadline = time.monotonic() + 60  # the agent registers just after it says it runs
            while not operator.agents()["agents"]:
                assert time.monotonic() < deadline, "the agent never registered"
                time.sleep(0.1)
        yield running


@pytest.fixture
def master(cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch) -> str:
    """The master's gRPC address, also set as EMPORION_MASTER for in-process commands."""
    assert cluster.master_address is not None
    monkeypatch.setenv("EMPORION_MASTER", cluster.master_address)
    return cluster.master_address


@pytest.fixture
def operator(master: str) -> Iterator[OperatorClient]:
    """An operator API client of the cluster's master, for checking what commands did."""
    endpoints = discover(master)
    with OperatorClient(endpoints.http, master) as client:
        yield client


def emporion_command(*args: str) -> list[str]:
    """The argv that runs ``emporion ARGS`` as a user would."""
    if SCRIPT.exists():
        return [str(SCRIPT), *args]
    return [sys.executable, "-m", "emporion", *args]


def emporion(master: str, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run ``emporion ARGS`` against ``master`` to its end; its output and status."""
    return subprocess.run(
        emporion_command(*args),
        env={**os.environ, "EMPORION_MASTER": master},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
