"""The pure parts of the commands for people: exit statuses, run's flags, output, lookups.

No cluster here: these are the rules the integration tests rely on, each checked directly.
"""

from __future__ import annotations

import argparse
import asyncio

import httpx
import pytest

from emporion.cli import PEOPLE_COMMANDS, build_parser, main
from emporion.client import ClientError, SandboxFile, UsageError, discover, follow, master_from_env
from emporion.commands.ops.run import spec_from_args
from emporion.commands.ops.runner import Output, exit_status
from emporion.commands.ops.tasks import command_text, resources_of, state_name
from protos.resources import Resources
from protos.v1 import mesos_pb2


def status(state: int, message: str = "") -> mesos_pb2.TaskStatus:
    return mesos_pb2.TaskStatus(state=state, message=message)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("state", "message", "code"),
    [
        (mesos_pb2.TASK_FINISHED, "Command exited with status 0", 0),
        (mesos_pb2.TASK_FAILED, "Command exited with status 3", 3),
        (mesos_pb2.TASK_FAILED, "Command exited with status 255", 255),
        (mesos_pb2.TASK_FAILED, "Command terminated by signal 9 (KILL)", 137),
        (mesos_pb2.TASK_KILLED, "Command terminated by signal 15 (TERM)", 143),
        (mesos_pb2.TASK_FAILED, "Memory limit exceeded: 64 MiB", 1),
        (mesos_pb2.TASK_LOST, "Command exited with status 4", 1),  # not the command's word
        (mesos_pb2.TASK_ERROR, "the agent refused it", 1),
    ],
)
def test_exit_status_is_the_commands_own(state: int, message: str, code: int) -> None:
    assert exit_status(status(state, message)) == code


def test_exit_status_without_a_status_is_1() -> None:
    assert exit_status(None) == 1


def _run_args(*args: str) -> argparse.Namespace:
    return build_parser(people_only=True).parse_args(["run", *args])


def test_run_flags_make_the_task() -> None:
    spec = spec_from_args(
        _run_args(
            "--cpus", "2", "--mem", "512", "--gpus", "1", "--env", "A=1=2", "--uri",
            "http://x/t.tgz", "--instances", "3", "--name", "job", "--", "sh", "-c", "echo $A",
        )
    )  # fmt: skip
    assert spec.resources == Resources.parse("cpus:2;mem:512;gpus:1")
    assert spec.name == "job"
    ids = spec.task_ids()
    assert len(ids) == 3
    assert all(i.startswith("job-") and i.endswith(f"-{n}") for n, i in enumerate(ids))
    command = spec.command()
    assert not command.shell
    assert command.value == "sh"
    assert list(command.arguments) == ["sh", "-c", "echo $A"]
    assert [(v.name, v.value) for v in command.environment.variables] == [("A", "1=2")]
    assert [u.value for u in command.uris] == ["http://x/t.tgz"]


def test_one_instance_has_one_id_named_after_the_command() -> None:
    spec = spec_from_args(_run_args("/usr/bin/env"))
    (task_id,) = spec.task_ids()
    assert task_id.startswith("env-")
    assert spec.name == "emporion-run"
    assert spec.resources == Resources.parse("cpus:0.1;mem:32")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "no command given"),
        (("--",), "no command given"),
        (("--cpus", "0", "--mem", "0", "--", "true"), "--cpus and --mem cannot both be 0"),
    ],
)
def test_run_without_a_command_or_resources_is_refused(args: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        spec_from_args(_run_args(*args))


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("--cpus", "-1"), "--cpus: expected a number >= 0, got '-1'"),
        (("--mem", "nan"), "--mem: expected a number >= 0, got 'nan'"),
        (("--instances", "0"), "--instances: expected a whole number >= 1, got '0'"),
        (("--env", "=x"), "--env: expected NAME=VALUE, got '=x'"),
    ],
)
def test_bad_run_flags_exit_2_naming_them(
    args: tuple[str, ...], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["run", *args, "--", "true"])
    assert exit_.value.code == 2
    assert error in capsys.readouterr().err


def test_output_prefixes_whole_lines_per_task(capsys: pytest.CaptureFixture[str]) -> None:
    out = Output(prefix=True, as_json=False)
    out.write("t-0", "stdout", "one\ntw")
    out.write("t-1", "stdout", "other\n")
    out.write("t-0", "stdout", "o\nthr")
    out.write("t-0", "stderr", "warn\n")
    out.close("t-0", "stdout")
    out.close("t-1", "stdout")
    captured = capsys.readouterr()
    assert captured.out == "[t-0] one\n[t-1] other\n[t-0] two\n[t-0] thr\n"
    assert captured.err == "[t-0] warn\n"


def test_people_commands_are_the_ones_registered() -> None:
    parser = build_parser(people_only=True)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == PEOPLE_COMMANDS
    full = build_parser()
    every = next(a for a in full._actions if isinstance(a, argparse._SubParsersAction))
    assert set(every.choices) >= PEOPLE_COMMANDS | {"master", "agent", "local", "resources"}


@pytest.mark.parametrize(
    ("target", "args"),
    [
        ("emporion.commands.ops.common.discover", ["status", "--master", "127.0.0.1:5050"]),
        ("emporion.commands.resources.cmd_resources", ["resources", "cpus:1"]),
    ],
)
def test_ctrl_c_in_any_command_is_130_and_quiet(
    target: str,
    args: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def interrupted(*_: object, **__: object) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr(target, interrupted)
    assert main(args) == 130
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("nonsense", "--master 'nonsense' is not HOST:PORT"),
        ("host:99999", "--master 'host:99999' is not HOST:PORT"),
        ("zk://", "--master 'zk://'"),
    ],
)
def test_malformed_master_is_a_usage_error(given: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as error:
        discover(given, timeout=1.0)
    assert error.value.exit_status == 2


def test_no_master_anywhere_says_how_to_give_one() -> None:
    with pytest.raises(UsageError, match=r"pass --master HOST:PORT .* or set EMPORION_MASTER"):
        master_from_env(None, {})
    assert master_from_env(None, {"EMPORION_MASTER": " h:1 "}) == "h:1"
    assert master_from_env("a:2", {"EMPORION_MASTER": "h:1"}) == "a:2"


def test_task_text_helpers() -> None:
    resources = [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}},
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.25}},
        {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 1, "end": 2}]}},
    ]
    assert resources_of(resources) == "cpus:0.75 ports:[1-2]"
    assert command_text({"command": {"value": "echo hi", "shell": True}}) == "echo hi"
    argv = {"command": {"value": "sh", "shell": False, "arguments": ["sh", "-c", "a b"]}}
    assert command_text(argv) == "sh -c 'a b'"
    assert command_text({}) == ""
    assert state_name("running") == "TASK_RUNNING"
    assert state_name("TASK_FAILED") == "TASK_FAILED"


def test_the_client_asks_the_method_the_master_serves() -> None:
    from emporion.client import discovery as client
    from master.runtime import discovery as server

    assert client.DISCOVERY_METHOD == server.DISCOVERY_METHOD


def _sandbox(answers: list[tuple[int, dict[str, object]]]) -> tuple[SandboxFile, list[int]]:
    """A SandboxFile whose master answers ``answers`` in turn; the offsets it was asked for."""
    asked: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(int(request.url.params["offset"]))
        status, body = answers.pop(0)
        return httpx.Response(status, json=body)

    client = httpx.AsyncClient(base_url="http://master", transport=httpx.MockTransport(answer))
    return SandboxFile(client, "m:1", "F", "T", path="stdout"), asked


def test_follow_reads_on_from_where_it_was_and_outlasts_a_hiccup() -> None:
    file, asked = _sandbox(
        [
            (404, {"detail": "'stdout' does not exist"}),  # not created yet
            (200, {"data": "ab", "offset": 0, "next": 2}),
            (502, {"detail": "agent a:1 did not answer read"}),
            (200, {"data": "c\n", "offset": 2, "next": 4}),
            (200, {"data": "", "offset": 4, "next": 4}),
            (200, {"data": "", "offset": 4, "next": 4}),  # after the end: the rest, then stop
        ]
    )

    async def collect() -> list[str]:
        # The task "ends" once five reads were made: the sixth drains what is left.
        return [chunk async for chunk in follow(file, lambda: len(asked) >= 5, fast=0, slow=0)]

    assert asyncio.run(collect()) == ["ab", "c\n"]
    assert asked == [0, 0, 2, 2, 4, 4]


def test_follow_gives_up_after_failures_in_a_row() -> None:
    file, _ = _sandbox([(502, {"detail": "agent a:1 did not answer read"})] * 3)

    async def collect() -> None:
        async for _ in follow(file, lambda: False, fast=0.0, slow=0.0, attempts=3):
            pass

    with pytest.raises(ClientError, match="agent a:1 did not answer read"):
        asyncio.run(collect())


@pytest.mark.parametrize("command", sorted(PEOPLE_COMMANDS))
def test_help_is_plain_text(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "--master" in text
    assert "``" not in text
    assert ":mod:" not in text


def test_run_checks_its_arguments_before_looking_for_a_master(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["run", "--master", "127.0.0.1:1"]) == 2
    assert "no command given" in capsys.readouterr().err
