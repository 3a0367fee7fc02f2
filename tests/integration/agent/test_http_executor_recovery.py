"""A pymesos executor (HTTP) of a checkpointing framework survives a kill -9 of its agent: it
resubscribes to the restarted agent on the same ``--port`` and its task finishes."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import httpx
import pytest

from protos.v1 import mesos_pb2
from tests.integration.agent.conftest import StartAgent
from tests.integration.agent.fake_master import FakeMaster
from tests.integration.agent.support import (
    ROOT,
    executor_info_for,
    executor_task,
    run_task,
    wait_until,
)

pytest.importorskip("pymesos", reason="pymesos is installed by .ci/install-pymesos.sh")

EXECUTOR = ROOT / "tests" / "integration" / "executor_http" / "pymesos_executor.py"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def executor_connected(http: str) -> bool:
    frameworks = httpx.get(f"http://{http}/state").json()["frameworks"]
    return bool(frameworks) and bool(frameworks[0]["executors"][0]["connected"])


def test_an_http_executor_resubscribes_after_the_agent_restarts(
    master: FakeMaster, start_agent: StartAgent
) -> None:
    # pymesos retries a lost agent after 2, 4, 8 s ... (its backoff): give it longer than the
    # default 2 s to come back (15 s, the most Mesos allows), as an operator would.
    flags = ["--port", str(free_port()), "--executor-reregistration-timeout", "15secs"]
    agent = start_agent(flags)
    executor = executor_info_for("pymesos", command=f"{sys.executable} {EXECUTOR}")
    executor.command.environment.variables.add(name="PYTHONPATH", value=str(ROOT))
    master.send(run_task(executor_task("a", data=b"wait"), checkpoint=True, executor=executor))
    master.wait_and_ack("a", mesos_pb2.TASK_RUNNING)
    state = httpx.get(f"http://{agent.http}/state").json()
    sandbox = Path(state["frameworks"][0]["executors"][0]["directory"])
    agent.crash()

    master.auto_ack = True
    restarted = start_agent(flags)
    assert restarted.http == agent.http
    wait_until(lambda: executor_connected(restarted.http), "the executor to subscribe again", 60)
    (sandbox / "go").touch()
    finished = master.wait_update("a", mesos_pb2.TASK_FINISHED)
    assert finished.status.data == b"tiaw"
