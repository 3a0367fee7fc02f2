"""The agent's security flags: where its HTTP API listens, user switching, disk enforcement."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from agent.config import AgentConfig, ConfigError, config_from_args


def config(tmp_path: Path, *flags: str) -> AgentConfig:
    return config_from_args(["--master", "m:5050", "--work-dir", str(tmp_path), *flags], {})


def test_the_http_api_listens_on_the_advertised_address_not_every_interface(
    tmp_path: Path,
) -> None:
    assert config(tmp_path).ip == socket.gethostbyname(socket.gethostname())
    assert config(tmp_path).ip != "0.0.0.0"
    assert config(tmp_path, "--hostname", "localhost").ip == "127.0.0.1"
    assert config(tmp_path, "--hostname", "localhost", "--ip", "0.0.0.0").ip == "0.0.0.0"
    with pytest.raises(ConfigError, match=r"hostname 'no-such-host\.invalid' does not resolve"):
        config(tmp_path, "--hostname", "no-such-host.invalid")


def test_user_and_disk_flags(tmp_path: Path) -> None:
    defaults = config(tmp_path)
    assert (defaults.switch_user, defaults.allow_root_tasks) == (None, True)
    assert (defaults.enforce_container_disk_quota, defaults.container_disk_watch_interval) == (
        True,
        15.0,
    )
    flags = config(
        tmp_path,
        "--no-switch-user",
        "--no-allow-root-tasks",
        "--no-enforce-container-disk-quota",
        "--container-disk-watch-interval",
        "250ms",
    )
    assert flags.switch_user is False
    assert flags.allow_root_tasks is False
    assert flags.enforce_container_disk_quota is False
    assert flags.container_disk_watch_interval == 0.25
    assert config(tmp_path, "--switch-user").switch_user is True
    from_env = config_from_args(
        ["--master", "m:5050", "--work-dir", str(tmp_path)],
        {"EMPORION_ALLOW_ROOT_TASKS": "false"},
    )
    assert from_env.allow_root_tasks is False
    with pytest.raises(ConfigError, match="--allow-root-tasks: 'maybe' is not a boolean"):
        config_from_args(
            ["--master", "m:5050", "--work-dir", str(tmp_path)],
            {"EMPORION_ALLOW_ROOT_TASKS": "maybe"},
        )
    with pytest.raises(ConfigError, match="--container-disk-watch-interval must be > 0"):
        config(tmp_path, "--container-disk-watch-interval", "0s")
