"""LaunchSpec and container id validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.isolation import ContainerLimits, LaunchSpec, validate_container_id

LIMITS = ContainerLimits.from_resources(1, 64)
SANDBOX = Path("/tmp/sandbox")


@pytest.mark.parametrize(
    "container_id",
    ["3f2504e0-4f89-11d3-9a0c-0305e82c3301", "task_1.executor-2", "a", "A" * 200],
)
def test_valid_container_ids(container_id: str) -> None:
    assert validate_container_id(container_id) == container_id


@pytest.mark.parametrize(
    "container_id",
    ["", ".", "..", "../etc", "a/b", "/abs", ".hidden", "a b", "a\0b", "é", "A" * 201],
)
def test_invalid_container_ids_are_named(container_id: str) -> None:
    with pytest.raises(ValueError, match="invalid container id") as raised:
        validate_container_id(container_id)
    assert repr(container_id) in str(raised.value)


def spec(**overrides: object) -> LaunchSpec:
    fields: dict[str, object] = {
        "container_id": "c1",
        "argv": ["echo", "hi"],
        "env": {"PATH": "/bin"},
        "sandbox": SANDBOX,
        "limits": LIMITS,
    }
    return LaunchSpec(**{**fields, **overrides})  # type: ignore[arg-type]


def test_argv_command() -> None:
    launch = spec()
    assert launch.command == ["echo", "hi"]
    assert launch.argv == ("echo", "hi")
    assert launch.stdout_path == SANDBOX / "stdout"
    assert launch.stderr_path == SANDBOX / "stderr"


def test_shell_command_runs_through_sh() -> None:
    command = spec(argv=["echo $HOME | wc"], shell=True).command
    assert command == ["/bin/sh", "-c", "echo $HOME | wc"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"container_id": "../x"}, "invalid container id '../x'"),
        ({"argv": []}, "argv must be a non-empty sequence"),
        ({"argv": "echo hi"}, "argv must be a non-empty sequence"),
        ({"argv": ["echo", "a\0b"]}, "arguments are strings without NUL"),
        ({"argv": ["echo", "hi"], "shell": True}, "shell=True takes exactly one command"),
        ({"env": {"A=B": "c"}}, "invalid environment variable 'A=B'"),
        ({"env": {"": "c"}}, "invalid environment variable ''"),
        ({"sandbox": Path("relative")}, "sandbox must be an absolute path"),
        ({"user": "a/b"}, "invalid user name 'a/b'"),
        ({"user": ""}, "invalid user name ''"),
    ],
)
def test_invalid_specs_are_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        spec(**overrides)


def test_spec_copies_its_environment() -> None:
    env = {"A": "1"}
    launch = spec(env=env)
    env["A"] = "2"
    assert launch.env["A"] == "1"
