"""``emporion agents`` keeps an agent that died in its table, as ``unreachable``.

GET_AGENTS answers the registered agents only; the command asks for the unreachable ones too,
so an operator sees the agent they lost rather than a shorter list. A cluster of its own (its
agent is killed), with a master that gives up on a silent agent quickly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from emporion.cli import main
from emporion.local_cluster import LocalCluster

Capture = pytest.CaptureFixture[str]


def agents_json(capsys: Capture) -> dict[str, list[dict[str, object]]]:
    capsys.readouterr()
    assert main(["agents", "--json"]) == 0, capsys.readouterr().err
    document: dict[str, list[dict[str, object]]] = json.loads(capsys.readouterr().out)
    return document


def test_a_killed_agent_is_listed_as_unreachable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    with LocalCluster(
        agents=1,
        isolation="posix",
        agent_resources="cpus:1;mem:256;disk:100;ports:[31100-31109]",
        master_flags=("--agent-ping-timeout", "0.5", "--max-agent-ping-timeouts", "1"),
        work_dir=tmp_path,
    ) as cluster:
        assert cluster.master_address is not None
        monkeypatch.setenv("EMPORION_MASTER", cluster.master_address)
        deadline = time.monotonic() + 60
        while not agents_json(capsys)["agents"]:
            assert time.monotonic() < deadline, "the agent never registered"
            time.sleep(0.2)
        (agent,) = agents_json(capsys)["agents"]
        agent_id = agent["agent_info"]["id"]["value"]  # type: ignore[index]

        found = subprocess.run(
            ["pgrep", "-f", "--", f"--work-dir {tmp_path / 'agent-0'}"],
            capture_output=True,
            text=True,
            check=True,
        )
        for pid in found.stdout.split():
            os.kill(int(pid), signal.SIGKILL)

        deadline = time.monotonic() + 60
        while not (document := agents_json(capsys))["unreachable_agents"]:
            assert time.monotonic() < deadline, f"never unreachable: {document}"
            time.sleep(0.2)
        assert document["agents"] == []
        (lost,) = document["unreachable_agents"]
        assert lost["agent_info"]["id"]["value"] == agent_id  # type: ignore[index]
        assert main(["agents"]) == 0
        table = capsys.readouterr().out
        assert agent_id in table
        assert "unreachable" in table
