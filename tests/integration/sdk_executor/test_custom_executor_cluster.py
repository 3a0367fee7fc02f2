"""examples.custom_executor end to end: a real master, a real agent, the framework and its
executors, each a process of its own.

``python -m master`` and ``python -m agent`` (posix isolation, so no root needed) run on port
0 in a temporary work dir; ``python -m examples.custom_executor`` then launches its tasks, each
with the example's executor, plays ping-pong with them through the master and the agent, and
exits 0 once every task finished. Nothing may be left running afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
WAIT_SECONDS = 90.0

pytestmark = pytest.mark.skipif(
    not (ROOT / "master" / "__main__.py").exists() or not (ROOT / "agent" / "runtime").is_dir(),
    reason="needs the real master (python -m master) and agent (python -m agent)",
)


def test_framework_and_its_executors_on_a_real_cluster(tmp_path: Path) -> None:
    sdk_support = pytest.importorskip("tests.integration.sdk.conftest")
    agent_support = pytest.importorskip("tests.integration.agent.support")
    master_dir, agent_dir = tmp_path / "master", tmp_path / "agent"
    master_dir.mkdir()
    master = sdk_support.MasterProcess(master_dir)
    master.start()
    try:
        agent = agent_support.AgentProcess(master.address, agent_dir, isolation="posix")
        try:
            result = subprocess.run(
                [
                    *(sys.executable, "-m", "examples.custom_executor"),
                    *("--master", master.address, "--tasks", "2", "--pings", "3"),
                    *("--timeout", str(WAIT_SECONDS)),
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=WAIT_SECONDS + 30,
                check=False,
            )
        finally:
            agent.stop()
        assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{agent.log()[-4000:]}"
        summary = json.loads(result.stdout)
        assert summary["finished"] == 2
        assert summary["pongs"] == 6
        assert summary["failed"] == {}
        assert summary["status"] == "DRIVER_STOPPED"
        # One executor per task, each with a sandbox of its own (Mesos's directory layout).
        executors = {p.name for p in agent_dir.glob("agents/*/frameworks/*/executors/*")}
        assert executors == {"pingpong-ping-pong-0", "pingpong-ping-pong-1"}
    finally:
        master.stop()
    agent_support.wait_until(
        lambda: not agent_support.processes_with(str(tmp_path)), "every process to end", 30
    )
