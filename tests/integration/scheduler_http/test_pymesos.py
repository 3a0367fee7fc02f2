"""pymesos 0.3.15, unmodified, against a real cluster (master and agent processes).

pymesos is installed by ``make test`` (``.ci/install-pymesos.sh``). Its scheduler runs in a
child process (pymesos installs a SIGINT handler at import, and its driver owns threads), given
the master's HTTP ``HOST:PORT`` as a Mesos user gives ``master:5050``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from emporion.local_cluster import LocalCluster
from master.http.scheduler_api.version import MESOS_VERSION

SCRIPT = Path(__file__).with_name("pymesos_scheduler.py")
ROOT = Path(__file__).resolve().parents[3]

pytest.importorskip("pymesos", reason="pymesos is installed by .ci/install-pymesos.sh")


def run_scheduler(master: str, tasks: int, *args: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), master, str(tasks), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    summary: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return summary


def test_a_pymesos_scheduler_runs_command_tasks_to_finished(tmp_path: Path) -> None:
    with LocalCluster(
        agents=1,
        isolation="posix",
        work_dir=tmp_path,
        agent_resources="cpus:1;mem:512;ports:[31000-31099]",
    ) as cluster:
        assert cluster.master_http_address is not None
        summary = run_scheduler(cluster.master_http_address, 6)
    assert summary["finished"] == 6
    assert "TASK_FINISHED" in summary["states"]  # type: ignore[operator]
    assert summary["ports"] == [99]  # 31099 - 31000: port ranges arrive as numbers
    assert summary["version"] == MESOS_VERSION
    host, port = cluster.master_http_address.rsplit(":", 1)
    assert summary["master_info"] == {"hostname": host, "port": int(port), "version": MESOS_VERSION}


def test_a_pymesos_scheduler_kills_its_running_tasks(tmp_path: Path) -> None:
    with LocalCluster(
        agents=1, isolation="posix", work_dir=tmp_path, agent_resources="cpus:1;mem:512"
    ) as cluster:
        assert cluster.master_http_address is not None
        summary = run_scheduler(cluster.master_http_address, 3, "sleep 600", "kill")
    assert summary["finished"] == 3
    assert summary["states"] == ["TASK_KILLED", "TASK_RUNNING"]
