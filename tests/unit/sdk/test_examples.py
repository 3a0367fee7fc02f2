"""The example frameworks run to completion against a scripted master playing a small cluster.

The scripted cluster offers two agents and answers every launched task with TASK_RUNNING then
TASK_FINISHED (the FINISHED twice, since updates are at-least-once), all carrying uuids. The
same examples run against the real master in tests/integration/sdk.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from examples import hello_async, hello_framework
from framework_sdk import messages
from protos.resources import Resources
from tests.unit.sdk.scripted_master import WAIT_SECONDS, ScriptedCluster, ScriptedMaster

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def cluster(master: ScriptedMaster) -> ScriptedCluster:
    return ScriptedCluster(master)


def launched_tasks(master: ScriptedMaster) -> list[messages.TaskInfo]:
    return [
        task
        for accept in master.wait_calls("Accept")
        for op in accept.call.accept.operations
        for task in op.launch.task_infos
    ]


def test_hello_framework_runs_every_task(
    master: ScriptedMaster, cluster: ScriptedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    code = hello_framework.main(
        ["--master", master.address, "--tasks", "12", "--timeout", str(WAIT_SECONDS)]
    )
    summary = json.loads(capsys.readouterr().out)
    assert code == 0, summary
    assert summary["finished"] == 12
    assert summary["failed"] == {}
    assert summary["status"] == "DRIVER_STOPPED"
    assert summary["framework_id"] == "framework-1"
    tasks = launched_tasks(master)
    assert sorted(t.command.value for t in tasks) == sorted(f"echo hello {i}" for i in range(12))
    assert {str(Resources.from_protos(t.resources)) for t in tasks} == {"cpus:0.1;mem:32"}
    assert {t.agent_id.value for t in tasks} == {"agent-1", "agent-2"}  # 10 fit on one agent
    methods = master.methods()
    assert methods.count("Accept") == 2
    assert "Suppress" in methods
    assert methods[-1] == "Teardown"


def test_hello_framework_exits_nonzero_on_timeout(
    master: ScriptedMaster, capsys: pytest.CaptureFixture[str]
) -> None:
    # No cluster: no offers ever come, so the timeout aborts the driver.
    code = hello_framework.main(["--master", master.address, "--tasks", "1", "--timeout", "0.2"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 1
    assert summary["status"] == "DRIVER_ABORTED"
    assert summary["finished"] == 0


def test_hello_async_runs_as_a_module(master: ScriptedMaster, cluster: ScriptedCluster) -> None:
    result = subprocess.run(
        [
            *(sys.executable, "-m", "examples.hello_async"),
            *("--master", master.address, "--tasks", "3", "--timeout", str(WAIT_SECONDS)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS * 2,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["finished"] == 3
    assert summary["failed"] == {}
    assert summary["framework_id"] == "framework-1"
    # Every update carries a uuid and is acknowledged, repeats too, except the repeat that
    # arrives after the last FINISHED made the framework tear itself down.
    acks = master.wait_calls("Acknowledge", 8)
    assert len({a.call.acknowledge.uuid for a in acks}) == 8
    assert master.methods()[-1] == "Teardown"


def test_hello_async_in_process(master: ScriptedMaster, cluster: ScriptedCluster) -> None:
    import asyncio

    summary = asyncio.run(hello_async.run(master.address, 11))
    assert (summary.finished, summary.launched, summary.failed) == (11, 11, {})


def test_example_arguments_are_checked() -> None:
    with pytest.raises(SystemExit):
        hello_framework.parse_args(["--master", "127.0.0.1:1", "--tasks", "0"])
    with pytest.raises(SystemExit):
        hello_async.parse_args(["--tasks", "3"])
