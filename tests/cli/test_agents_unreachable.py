"""``emporion agents`` and the web UI's agents page keep an agent that died, as ``unreachable``.

GET_AGENTS answers the registered agents only, as Mesos does; both ask for every phase
(``phase: any``), so an operator sees the agent they lost rather than a shorter list. A
cluster of its own (its agent is killed), with a master that gives up on a silent agent
quickly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from emporion.cli import main
from emporion.local_cluster import LocalCluster

Capture = pytest.CaptureFixture[str]


def agents_json(capsys: Capture) -> dict[str, list[dict[str, Any]]]:
    capsys.readouterr()
    assert main(["agents", "--json"]) == 0, capsys.readouterr().err
    document: dict[str, list[dict[str, Any]]] = json.loads(capsys.readouterr().out)
    return document


def phases(document: dict[str, list[dict[str, Any]]]) -> list[str]:
    return [agent["summary"]["phase"] for agent in document["agents"]]


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
        agent_id = agent["agent_info"]["id"]["value"]

        found = subprocess.run(
            ["pgrep", "-f", "--", f"--work-dir {tmp_path / 'agent-0'}"],
            capture_output=True,
            text=True,
            check=True,
        )
        for pid in found.stdout.split():
            os.kill(int(pid), signal.SIGKILL)

        deadline = time.monotonic() + 60
        while phases(document := agents_json(capsys)) != ["unreachable"]:
            assert time.monotonic() < deadline, f"never unreachable: {document}"
            time.sleep(0.2)
        (lost,) = document["agents"]
        assert lost["agent_info"]["id"]["value"] == agent_id
        assert main(["agents"]) == 0
        table = capsys.readouterr().out
        assert agent_id in table
        assert "unreachable" in table
        # The UI's agents page, "any state" (no filter), lists it too.
        page = httpx.get(f"http://{cluster.master_http_address}/ui/agents", timeout=30)
        assert page.status_code == 200
        assert agent_id in page.text
        assert "unreachable" in page.text.split(agent_id, 1)[1]
        # A phase that does not exist is named in the refusal, "any" among the choices.
        capsys.readouterr()
        bad = httpx.post(
            f"http://{cluster.master_http_address}/api/v1",
            json={"type": "GET_AGENTS", "get_agents": {"phase": "lost"}},
            timeout=30,
        )
        assert bad.status_code == 400
        assert "get_agents.phase: must be one of any, connected" in bad.text
