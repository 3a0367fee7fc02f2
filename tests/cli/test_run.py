"""``emporion run``, as a user runs it: a subprocess against a real cluster.

The command's output reaches this terminal through the master's sandbox proxy, the exit status
is the command's, a failed task says its state and message, Ctrl-C kills the task and tears the
framework down with status 130.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from emporion.cli import main
from emporion.client import OperatorClient, tasks_of
from tests.cli.conftest import emporion, emporion_command


def test_run_prints_the_output_and_exits_with_the_status(master: str) -> None:
    result = emporion(master, "run", "--", "sh", "-c", "echo hi; echo oops >&2; exit 3")
    assert result.returncode == 3, result.stderr
    assert result.stdout == "hi\n"
    lines = result.stderr.splitlines()
    assert lines[0] == "oops"
    assert "TASK_FAILED" in lines[-1]
    assert "Command exited with status 3" in lines[-1]
    assert "Traceback" not in result.stderr


def test_instances_prefix_their_lines_and_the_first_failure_decides(master: str) -> None:
    script = 'echo "from $MESOS_TASK_ID"; case $MESOS_TASK_ID in *-1) exit 5;; esac'
    result = emporion(master, "run", "--instances", "2", "--name", "pair", "--", "sh", "-c", script)
    assert result.returncode == 5, result.stderr
    lines = sorted(result.stdout.splitlines())
    assert len(lines) == 2
    for index, line in enumerate(lines):
        task_id = line.split("]")[0].lstrip("[")
        assert task_id.startswith("pair-")
        assert task_id.endswith(f"-{index}")
        assert line == f"[{task_id}] from {task_id}"
    assert "-1: TASK_FAILED: Command exited with status 5" in result.stderr


def test_json_lines_carry_output_and_the_outcome(master: str) -> None:
    result = emporion(master, "run", "--json", "--env", "GREETING=hello there", "--", "sh", "-c",
                      'echo "$GREETING"')  # fmt: skip
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    output = [r for r in records if "stream" in r]
    assert [r["data"] for r in output] == ["hello there\n"]
    (outcome,) = [r for r in records if "state" in r]
    assert outcome["state"] == "TASK_FINISHED"
    assert outcome["exit_status"] == 0
    assert outcome["task_id"] == output[0]["task_id"]


def test_bad_flags_exit_2_naming_them(master: str, capsys: pytest.CaptureFixture[str]) -> None:
    """In-process: the lines are the same, without three more interpreters starting."""
    assert main(["run", "--cpus", "1"]) == 2
    assert capsys.readouterr().err == (
        "emporion run: no command given: emporion run [flags] -- CMD ARGS...\n"
    )
    for flag, value, error in [
        ("--cpus", "lots", "--cpus: expected a number, got 'lots'"),
        ("--env", "NOVALUE", "--env: expected NAME=VALUE, got 'NOVALUE'"),
    ]:
        with pytest.raises(SystemExit) as exit_:
            main(["run", flag, value, "--", "true"])
        assert exit_.value.code == 2
        assert error in capsys.readouterr().err


def test_ctrl_c_kills_the_task_and_tears_the_framework_down(
    master: str, operator: OperatorClient, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    script = f"echo $$ > {pid_file}; echo up; exec sleep 120"  # exec: the pid is the sleep's
    with subprocess.Popen(
        emporion_command("run", "--name", "interrupted", "--", "sh", "-c", script),
        env={**os.environ, "EMPORION_MASTER": master},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None
        assert child.stdout.readline() == "up\n"  # the task runs and its output came back
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=60)
    assert child.returncode == 130
    assert stderr == ""  # quietly
    framework = operator.find_framework("interrupted")
    assert framework["summary"]["phase"] == "removed"
    (task,) = tasks_of(operator.tasks(framework_id=framework["framework_info"]["id"]["value"]))
    assert task["state"] == "TASK_KILLED"
    # The agent killed the process itself (posix isolation: it runs on this host).
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 30  # the teardown travels to the agent, which kills
    while _alive(pid):
        assert time.monotonic() < deadline, f"the task's process {pid} still runs"
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie waiting for its parent does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(") ", 1)[-1][:1] != "Z"


def test_a_task_no_agent_can_hold_says_why_it_waits(
    master: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """In-process, to see the notice at once: it is printed, then Ctrl-C ends the wait."""
    from emporion.commands.ops import runner

    noticed = threading.Event()
    notes: list[str] = []

    def note(text: str) -> None:
        notes.append(text)
        noticed.set()

    monkeypatch.setattr(runner, "WAIT_NOTICE", 0.5)
    monkeypatch.setattr(runner, "_note", note)

    def interrupt_once_noticed() -> None:
        if noticed.wait(60):
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends

    interrupter = threading.Thread(target=interrupt_once_noticed, daemon=True)
    interrupter.start()
    assert main(["run", "--name", "too-big", "--cpus", "64", "--", "true"]) == 130
    interrupter.join()
    (notice,) = notes
    assert notice.startswith("waiting for an offer of cpus:64;mem:32 for role *")
    assert "the largest offer so far held cpus:2;" in notice
    assert capsys.readouterr().out == ""


def test_an_unreachable_master_is_one_line_exit_2() -> None:
    result = emporion("127.0.0.1:1", "run", "--", "true")
    assert result.returncode == 2
    assert result.stderr == (
        "emporion run: cannot reach the master at 127.0.0.1:1: connection refused\n"
    )
    assert result.stdout == ""


def test_a_reader_that_goes_away_stops_the_run_quietly(
    master: str, operator: OperatorClient
) -> None:
    """``emporion run ... | head -1``: the task is killed, the framework torn down, no noise."""
    with subprocess.Popen(
        emporion_command("run", "--name", "headed", "--", "sh", "-c", "while :; do echo y; done"),
        env={**os.environ, "EMPORION_MASTER": master},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None
        assert child.stdout.readline() == "y\n"
        child.stdout.close()  # what head does once it has its line
        assert child.wait(timeout=60) == 1
        assert child.stderr is not None
        assert child.stderr.read() == ""
    assert operator.find_framework("headed")["summary"]["phase"] == "removed"


@pytest.mark.slow  # a cluster of its own with TLS everywhere: ~10 s more
def test_run_over_tls_end_to_end(tmp_path: Path) -> None:
    """Master and agent with TLS (the agent's certificate names its host, which the master
    checks when it proxies the sandbox); the CLI given only the CA through the SDK's variable."""
    import socket

    from emporion.local_cluster import LocalCluster

    certs = tmp_path / "certs"
    assert main(["certs", "--out", str(certs), "--hosts", socket.gethostname()]) == 0
    tls = ("--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server-key.pem"))
    ca = ("--tls-ca", str(certs / "ca.pem"))
    with LocalCluster(
        agents=1,
        isolation="posix",
        agent_resources="cpus:1;mem:256",
        master_flags=(*tls, *ca),
        agent_flags=(*tls, *ca),
    ) as secured:
        assert secured.master_address is not None
        result = subprocess.run(
            emporion_command("run", "--", "sh", "-c", "echo over tls; exit 4"),
            env={
                **os.environ,
                "EMPORION_MASTER": secured.master_address,
                "EMPORION_SDK_TLS_CA": str(certs / "ca.pem"),
            },
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 4, result.stderr
    assert result.stdout == "over tls\n"
