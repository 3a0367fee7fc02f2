"""``status``, ``agents``, ``frameworks``, ``tasks``, ``task``, ``explain``, ``teardown``.

Run in-process (:func:`emporion.cli.main`, output captured) against the real cluster of
``conftest.py``: tables name what they should, ``--json`` parses into the operator API's
objects, a failed task's message shows, a suppressed framework is explained as such, teardown
ends a framework, and unknown ids or an unreachable master are one line with exit status 2.
"""

from __future__ import annotations

import json
import shlex
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from emporion.cli import main
from emporion.client import OperatorClient
from framework_sdk import Scheduler, SchedulerDriver, messages

Capture = pytest.CaptureFixture[str]


def run_json(capsys: Capture, *args: str) -> Any:
    """``emporion ARGS --json``'s output, parsed (the command must succeed)."""
    capsys.readouterr()
    assert main([*args, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


class _Registered(Scheduler):
    """Declines every offer; ``ready`` once registered."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.ended = threading.Event()

    def registered(self, driver: Any, frameworkId: Any, masterInfo: Any) -> None:
        self.ready.set()

    def resourceOffers(self, driver: Any, offers: Any) -> None:
        for offer in offers:
            driver.declineOffer(offer.id, messages.filters(refuse_seconds=60))

    def error(self, driver: Any, message: str) -> None:
        self.ended.set()


@pytest.fixture
def idle_framework(master: str) -> Iterator[tuple[SchedulerDriver, _Registered, str]]:
    """A framework that declines every offer, registered; its driver, scheduler and id."""
    scheduler = _Registered()
    driver = SchedulerDriver(scheduler, messages.framework_info("idle-cli-test"), master)
    driver.start()
    assert scheduler.ready.wait(30)
    assert driver.framework_id is not None
    yield driver, scheduler, driver.framework_id.value
    driver.abort()
    driver.join()


def test_status_names_the_leader_and_counts(master: str, capsys: Capture) -> None:
    doc = run_json(capsys, "status")
    assert doc["leader"]["address"] == master
    assert doc["agents"]["connected"] == 1
    assert doc["resources"]["cpus"]["total"] == 2.0
    assert set(doc["tasks"]) >= {"TASK_RUNNING", "TASK_FINISHED", "TASK_FAILED"}
    assert main(["status"]) == 0
    table = capsys.readouterr().out
    assert f"at {master}" in table
    assert "1 connected" in table
    assert "cpus" in table


def test_agents_lists_the_agent(master: str, capsys: Capture) -> None:
    (agent,) = run_json(capsys, "agents")["agents"]
    agent_id = agent["agent_info"]["id"]["value"]
    assert main(["agents"]) == 0
    table = capsys.readouterr().out
    assert agent_id in table
    assert "connected" in table
    assert "/2 " in table  # cpus in use of the total


def test_a_failed_task_shows_its_message_everywhere(
    master: str, operator: OperatorClient, capsys: Capture
) -> None:
    script = "echo '[bold]bad[/bold] :smile:' >&2; exit 7"  # shown as it is, never as markup
    assert main(["run", "--name", "doomed", "--", "sh", "-c", script]) == 7
    err = capsys.readouterr().err
    assert "TASK_FAILED: Command exited with status 7" in err
    tasks = run_json(capsys, "tasks", "--all", "--framework", "doomed")
    (task,) = tasks
    task_id = task["task_id"]["value"]
    assert task["state"] == "TASK_FAILED"
    # Completed tasks are left out without --all.
    assert run_json(capsys, "tasks", "--framework", "doomed") == []
    failed = run_json(capsys, "tasks", "--all", "--state", "failed")
    assert task_id in {t["task_id"]["value"] for t in failed}
    described = run_json(capsys, "task", task_id)
    assert described["task"]["statuses"][-1]["message"] == "Command exited with status 7"
    assert described["framework"]["name"] == "doomed"
    assert described["sandbox"].endswith(f"/executors/{task_id}/runs/latest")
    assert main(["task", task_id]) == 0
    page = capsys.readouterr().out
    assert "Command exited with status 7" in page
    assert "TASK_FAILED" in page
    assert f"sh -c {shlex.quote(script)}" in page
    assert "STAGING" in page  # the statuses, oldest first
    assert main(["tasks", "--all", "--framework", "doomed"]) == 0
    assert task_id in capsys.readouterr().out


def test_explain_says_a_suppressed_framework_is_suppressed(
    idle_framework: tuple[SchedulerDriver, _Registered, str],
    operator: OperatorClient,
    capsys: Capture,
) -> None:
    driver, _, framework_id = idle_framework
    assert main(["frameworks"]) == 0
    assert framework_id in capsys.readouterr().out
    driver.suppressOffers()
    deadline = time.monotonic() + 30  # the call travels to the master
    while not any(
        e["code"] == "SUPPRESSED" for e in operator.explanation(framework_id)["explanations"]
    ):
        assert time.monotonic() < deadline, "the master never saw the SUPPRESS"
        time.sleep(0.1)
    answer = run_json(capsys, "explain", framework_id)
    assert answer["framework_id"] == framework_id
    assert [e["code"] for e in answer["explanations"]] == ["SUPPRESSED"]
    assert main(["explain", "idle-cli-test"]) == 0  # by name, too
    out = capsys.readouterr().out
    assert "SUPPRESSED" in out
    assert "offers are suppressed" in out


def test_teardown_ends_the_framework(
    idle_framework: tuple[SchedulerDriver, _Registered, str],
    operator: OperatorClient,
    capsys: Capture,
) -> None:
    _, scheduler, framework_id = idle_framework
    assert run_json(capsys, "teardown", framework_id) == {
        "framework_id": framework_id,
        "name": "idle-cli-test",
        "torn_down": True,
    }
    assert operator.find_framework(framework_id)["summary"]["phase"] == "removed"
    assert scheduler.ended.wait(30)  # the scheduler was told (ERROR)
    listed = run_json(capsys, "frameworks", "--all")
    removed = [f for f in listed["completed_frameworks"] if f["framework_info"]["id"]["value"]]
    assert framework_id in {f["framework_info"]["id"]["value"] for f in removed}
    # Once gone it cannot be torn down again: one line naming it, exit 2.
    assert main(["teardown", framework_id]) == 2
    assert capsys.readouterr().err == (
        f"emporion teardown: no framework {framework_id!r} is known to the master (by id or name)\n"
    )


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["task", "nope"], "emporion task: no task 'nope' is known to the master\n"),
        (
            ["explain", "nope"],
            "emporion explain: no framework 'nope' is known to the master (by id or name)\n",
        ),
        (["tasks", "--state", "sleepy"], "emporion tasks: get_tasks.state: unknown task state "),
    ],
)
def test_unknown_ids_and_bad_filters_are_one_line_exit_2(
    master: str, capsys: Capture, args: list[str], line: str
) -> None:
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(line)
    assert captured.err.count("\n") == 1
    assert captured.out == ""


@pytest.mark.parametrize("command", ["status", "agents", "frameworks", "tasks", "explain x"])
def test_unreachable_master_is_one_line_exit_2(
    command: str, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMPORION_MASTER", "127.0.0.1:1")
    name, *rest = command.split()
    assert main([name, *rest]) == 2
    assert capsys.readouterr().err == (
        f"emporion {name}: cannot reach the master at 127.0.0.1:1: connection refused\n"
    )
