"""Mesos's v1 executor HTTP API on the agent (``/api/v1/executor``): a pymesos executor,
unmodified, launched by a real agent for a pymesos scheduler; and Mesos's answers to bad calls.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from emporion.local_cluster import LocalCluster

pytest.importorskip("pymesos", reason="pymesos is installed by .ci/install-pymesos.sh")

SCHEDULER = Path(__file__).with_name("pymesos_exec_scheduler.py")
ROOT = Path(__file__).resolve().parents[3]


def test_a_pymesos_executor_runs_tasks_and_talks_to_its_scheduler(tmp_path: Path) -> None:
    with LocalCluster(
        agents=1, isolation="posix", work_dir=tmp_path, agent_resources="cpus:2;mem:1024"
    ) as cluster:
        assert cluster.master_http_address is not None
        result = subprocess.run(
            [sys.executable, str(SCHEDULER), cluster.master_http_address, "3"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        logs = result.stderr[-4000:] + cluster.log_tail("agent-0.log", 40)
    assert result.returncode == 0, result.stdout + logs
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    # Each task's data came back reversed in its TASK_FINISHED: the executor got the task.
    assert sorted(summary["finished"].values()) == ["0-daolyap", "1-daolyap", "2-daolyap"]
    assert {"TASK_RUNNING", "TASK_FINISHED"} <= set(summary["states"])
    assert summary["messages"] == ["HELLO EXECUTOR"]  # scheduler -> executor -> scheduler
    assert summary["failures"] == []


def agent_http(cluster: LocalCluster, timeout: float = 60.0) -> str:
    """The HTTP address of the cluster's agent, once it has registered."""
    deadline = time.monotonic() + timeout
    url = f"http://{cluster.master_http_address}/master/slaves"
    while time.monotonic() < deadline:
        slaves = httpx.get(url).json()["slaves"]
        if slaves:
            return f"127.0.0.1:{slaves[0]['port']}"
        time.sleep(0.1)
    raise AssertionError("the agent did not register")


def test_bad_executor_calls_get_mesos_answers(tmp_path: Path) -> None:
    with LocalCluster(agents=1, isolation="posix", work_dir=tmp_path) as cluster:
        url = f"http://{agent_http(cluster)}/api/v1/executor"
        subscribe = {
            "type": "SUBSCRIBE",
            "framework_id": {"value": "no-such-framework"},
            "executor_id": {"value": "e"},
            "subscribe": {},
        }
        cases = [
            (httpx.get(url), 405, "Expecting 'POST'"),
            (httpx.post(url, content=b"{}"), 400, "Expecting 'Content-Type' to be present"),
            (
                httpx.post(url, content=b"{", headers={"Content-Type": "application/json"}),
                400,
                "Failed to parse body into JSON",
            ),
            (
                httpx.post(url, json={"type": "NO_SUCH_TYPE"}),
                400,
                "Failed to convert JSON into Call protobuf",
            ),
            (
                httpx.post(url, content=b"x", headers={"Content-Type": "text/plain"}),
                415,
                "Expecting 'Content-Type' of application/json or application/x-protobuf",
            ),
            (
                httpx.post(url, json=subscribe, headers={"Accept": "text/html"}),
                406,
                "Expecting 'Accept' to allow",
            ),
            (httpx.post(url, json=subscribe), 400, "no-such-framework"),
            (httpx.post(url, json={**subscribe, "type": "HEARTBEAT"}), 202, ""),
            (
                httpx.post(url, json={**subscribe, "type": "UNKNOWN"}),
                501,
                "Received 'UNKNOWN' call",
            ),
        ]
        for response, status, words in cases:
            assert response.status_code == status, (status, response.text)
            assert words in response.text, (words, response.text)
