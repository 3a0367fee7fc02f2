"""``emporion logs``: a task's output through the master, followed while it runs with ``-f``.

The task here prints a line, then waits for a file the test creates, then prints another: the
test sees the first line while the task still runs (the follower is still running too), lets
the task go on, and sees the follower print the second line and end with the task.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from emporion.cli import main
from emporion.client import NotFoundError, OperatorClient, tasks_of
from tests.cli.conftest import emporion, emporion_command


def _running(operator: OperatorClient, name: str) -> str:
    """The id of framework ``name``'s task once it is RUNNING (waiting for it to launch)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            framework = operator.find_framework(name)
        except NotFoundError:  # not registered yet
            time.sleep(0.2)
            continue
        fid = framework["framework_info"]["id"]["value"]
        found = tasks_of(operator.tasks(framework_id=fid))
        if found and found[0]["state"] == "TASK_RUNNING":
            return str(found[0]["task_id"]["value"])
        time.sleep(0.2)
    raise AssertionError(f"no running task of framework {name!r}")


@pytest.fixture
def gated_task(master: str, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path, str]]:
    """``emporion run`` of a task that prints 'first', waits for ``go``, prints 'second';
    with the file and the framework's name."""
    go = tmp_path / "go"
    name = f"gated-{tmp_path.name}"
    wait = f"while [ ! -e {go} ]; do sleep 0.05; done"
    script = f"echo first; echo err-first >&2; {wait}; echo second"
    with subprocess.Popen(
        emporion_command("run", "--name", name, "--", "sh", "-c", script),
        env={**os.environ, "EMPORION_MASTER": master},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as run:
        yield run, go, name
        go.touch()
        run.wait(timeout=60)


def test_logs_follow_prints_lines_as_they_come_and_ends_with_the_task(
    master: str,
    operator: OperatorClient,
    gated_task: tuple[subprocess.Popen[str], Path, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    run, go, name = gated_task
    task_id = _running(operator, name)
    with subprocess.Popen(
        emporion_command("logs", "-f", task_id),
        env={**os.environ, "EMPORION_MASTER": master},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as follower:
        assert follower.stdout is not None
        assert follower.stdout.readline() == "first\n"
        assert follower.poll() is None  # still following: the task has not ended
        go.touch()
        assert follower.stdout.readline() == "second\n"
        assert follower.wait(timeout=60) == 0
        assert follower.stdout.read() == ""
    assert run.wait(timeout=60) == 0
    # Once it ended (in-process now): the whole file, and stderr on request, as JSON lines too.
    capsys.readouterr()
    assert main(["logs", task_id]) == 0
    assert capsys.readouterr().out == "first\nsecond\n"
    assert main(["logs", "--stderr", "--json", task_id]) == 0
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == [
        {"task_id": task_id, "stream": "stderr", "data": "err-first\n"}
    ]


def test_logs_of_an_unknown_task_is_one_line_exit_2(master: str) -> None:
    result = emporion(master, "logs", "no-such-task")
    assert result.returncode == 2
    assert result.stderr == "emporion logs: no task 'no-such-task' is known to the master\n"
