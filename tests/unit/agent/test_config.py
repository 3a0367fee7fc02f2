"""AgentConfig from flags and EMPORION_* variables; durations, attributes, resources, env."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from agent.config import (
    Attribute,
    ConfigError,
    MasterAddress,
    ZkMaster,
    config_from_args,
    format_duration,
    parse_attributes,
    parse_duration,
    parse_master,
)
from agent.resources_detect import detect_resources, merge_resources
from agent.runtime.environment import ExecutorEndpoint, command_argv, process_environment
from emporion.commands.agent import cmd_agent, register
from protos.resources import Resources
from protos.v1 import mesos_pb2


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5s", 5),
        ("5secs", 5),
        ("100ms", 0.1),
        ("2mins", 120),
        ("1.5hrs", 5400),
        ("3", 3),
        ("1weeks", 604800),
        ("2days", 172800),
        ("250us", 0.00025),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "5 parsecs", "-1s", "s", "1e400s"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(bad)


def test_durations_for_executors_use_mesos_units() -> None:
    assert (format_duration(5), format_duration(0.25), format_duration(900)) == (
        "5secs",
        "250ms",
        "900secs",
    )


def test_attributes_of_every_type() -> None:
    attributes = parse_attributes("rack:r1;level:3;slots:[1-4,8-9];tags:{gpu,ssd};path:a/b.c")
    assert attributes == (
        Attribute("rack", "r1"),
        Attribute("level", 3.0),
        Attribute("slots", ((1, 4), (8, 9))),
        Attribute("tags", frozenset({"gpu", "ssd"})),
        Attribute("path", "a/b.c"),
    )
    protos = [a.to_proto() for a in attributes]
    assert [p.type for p in protos] == [
        mesos_pb2.Value.TEXT,
        mesos_pb2.Value.SCALAR,
        mesos_pb2.Value.RANGES,
        mesos_pb2.Value.SET,
        mesos_pb2.Value.TEXT,
    ]
    assert protos[2].ranges.range[1].end == 9


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("rack", "attribute 'rack' must be written name:value"),
        ("rack:", "attribute 'rack:' must be written name:value"),
        ("rack:r1;rack:r2", "attribute 'rack' is given twice"),
        ("slots:[4-1]", "'4-1' is not a range a-b"),
        ("slots:[1-4", "lack the closing ']'"),
        ("tags:{a b}", "set item 'a b' is not plain text"),
        ("zone:a b", "must be a number, [ranges], {set} or text"),
        ("bad name:x", "attribute name 'bad name'"),
    ],
)
def test_bad_attributes_are_named(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error.replace("[", r"\[").replace("{", r"\{")):
        parse_attributes(text)


def test_master_addresses() -> None:
    assert parse_master("10.0.0.1:5050").target == "10.0.0.1:5050"
    assert parse_master("[::1]:5050").target == "[::1]:5050"
    assert isinstance(parse_master("m:1"), MasterAddress)
    with pytest.raises(ValueError, match="must be HOST:PORT"):
        parse_master("localhost")


def test_zk_masters() -> None:
    master = parse_master("zk://zk1:2181,zk2/emporion")
    assert isinstance(master, ZkMaster)
    assert master.url.connect_string == "zk1:2181,zk2:2181"
    assert master.url.path == "/emporion"
    assert master.target == "zk://zk1:2181,zk2:2181/emporion"
    assert isinstance(parse_master("ZK://zk1:2181/mesos"), ZkMaster)
    with pytest.raises(ValueError, match=r"master 'zk:///mesos'.*names no host"):
        parse_master("zk:///mesos")


def test_zk_master_from_the_environment(tmp_path: Path) -> None:
    env = {"EMPORION_MASTER": "zk://127.0.0.1:2181/e", "EMPORION_WORK_DIR": str(tmp_path)}
    config = config_from_args(["--zk-session-timeout", "3s"], env)
    assert isinstance(config.master, ZkMaster)
    assert config.master.url.path == "/e"
    assert config.zk_session_timeout == 3
    with pytest.raises(ConfigError, match="--zk-session-timeout must be > 0"):
        config_from_args(["--zk-session-timeout", "0s"], env)


def test_flags_win_over_the_environment(tmp_path: Path) -> None:
    env = {
        "EMPORION_MASTER": "m:1",
        "EMPORION_WORK_DIR": str(tmp_path),
        "EMPORION_PORT": "7000",
        "EMPORION_EXECUTOR_REGISTRATION_TIMEOUT": "30s",
    }
    config = config_from_args(["--port", "0", "--attributes", "rack:r1"], env)
    assert (config.master.target, config.work_dir, config.port) == ("m:1", tmp_path, 0)
    assert config.executor_registration_timeout == 30
    assert config.attributes == (Attribute("rack", "r1"),)
    assert config.resources is None
    assert config.max_concurrent_launches == 0  # Two per CPU (see ContainerManager).
    flags = ["--max-concurrent-launches", "3"]
    assert config_from_args(flags, env).max_concurrent_launches == 3


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        ([], "--master is required"),
        (["--master", "m:1"], "--work-dir is required"),
        (["--master", "m", "--work-dir", "w"], "--master: master 'm' must be HOST:PORT"),
        (["--master", "m:1", "--work-dir", "w", "--port", "x"], "--port: 'x' is not a port"),
        (["--master", "m:1", "--work-dir", "w", "--isolation", "lxc"], "--isolation: 'lxc'"),
        (["--master", "m:1", "--work-dir", "w", "--resources", "cpus:x"], "--resources: invalid"),
        (
            ["--master", "m:1", "--work-dir", "w", "--executor-reregistration-timeout", "20s"],
            "at most 15s",
        ),
        (["--master", "m:1", "--work-dir", "w", "--gc-delay", "soon"], "--gc-delay: invalid"),
        (["--master", "m:1", "--work-dir", "w", "--bogus"], "unknown arguments: --bogus"),
        (
            ["--master", "m:1", "--work-dir", "w", "--max-concurrent-launches", "-1"],
            "--max-concurrent-launches: '-1' is not a whole number",
        ),
    ],
)
def test_bad_configuration_names_the_flag(argv: list[str], error: str) -> None:
    with pytest.raises(ConfigError, match=error.replace("(", r"\(")):
        config_from_args(argv, {})


def test_given_resources_win_and_the_rest_is_detected(tmp_path: Path) -> None:
    detected = detect_resources(tmp_path)
    assert {"cpus", "mem", "disk", "ports"} <= detected.names()
    assert detected.ranges("ports") == ((31000, 32000),)
    merged = merge_resources(Resources.parse("cpus:1;gpus:2"), detected)
    assert merged.get("cpus") == 1
    assert merged.get("gpus") == 2
    assert merged.get("mem") == detected.get("mem")


def test_argv_of_shell_and_plain_commands() -> None:
    shell = mesos_pb2.CommandInfo(value="echo $HOME")
    assert command_argv(shell) == (["echo $HOME"], True)
    plain = mesos_pb2.CommandInfo(shell=False, value="/bin/echo", arguments=["echo", "a", "b"])
    assert command_argv(plain) == (["/bin/echo", "a", "b"], False)


def test_executors_get_the_mesos_environment(tmp_path: Path) -> None:
    command = mesos_pb2.CommandInfo(value="x")
    command.environment.variables.add(name="MESOS_CHECKPOINT", value="mine")
    env = process_environment(
        command,
        sandbox=tmp_path,
        agent_id="A",
        framework_id="F",
        executor_id="E",
        container_id="C",
        task_id=None,
        checkpoint=True,
        executor=ExecutorEndpoint("127.0.0.1:9", 5.0, 900.0, http_address="127.0.0.1:5051"),
        agent_environ={"PATH": "/p", "SECRET": "no"},
    )
    # Mesos's variable names the agent's HTTP API (/api/v1/executor); Emporion's the gRPC one.
    assert env["MESOS_AGENT_ENDPOINT"] == "127.0.0.1:5051"
    assert env["EMPORION_AGENT_ENDPOINT"] == "127.0.0.1:9"
    assert env["MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"] == "5secs"
    assert env["MESOS_RECOVERY_TIMEOUT"] == "900secs"
    assert env["MESOS_SANDBOX"] == str(tmp_path)
    assert env["MESOS_CHECKPOINT"] == "mine"  # The command's own variables win.
    assert env["PATH"] == "/p"
    assert "SECRET" not in env
    assert "MESOS_TASK_ID" not in env


def test_emporion_agent_subcommand_registers() -> None:
    parser = argparse.ArgumentParser(prog="emporion")
    register(parser.add_subparsers(dest="command"))
    ns = parser.parse_args(["agent", "--master", "m:1", "--work-dir", "/tmp/w", "--port", "0"])
    assert ns.func is cmd_agent
    assert (ns.master, ns.port) == ("m:1", "0")
