"""MasterConfig under ``--zk``: the URL, the session timeout, and the registry it implies."""

from __future__ import annotations

from pathlib import Path

import pytest

from master.config import ConfigError, MasterConfig, config_from_args
from protos.leader_info import parse_zk_url


def test_standalone_by_default() -> None:
    config = config_from_args(["--work-dir", "/tmp/x"], {})
    assert config.zk is None
    assert config.registry == "file"
    assert config.zk_session_timeout == 10.0


def test_zk_flag_implies_the_zookeeper_registry() -> None:
    config = config_from_args(
        ["--zk", "zk://h1:2181,h2/emporion", "--zk-session-timeout", "4secs"], {}
    )
    assert config.zk == parse_zk_url("zk://h1:2181,h2:2181/emporion")
    assert config.zk is not None
    assert config.zk.path == "/emporion"
    assert config.registry == "zookeeper"
    assert config.work_dir is None
    assert config.zk_session_timeout == 4.0


def test_zk_from_the_environment() -> None:
    config = config_from_args([], {"EMPORION_ZK": "zk://10.0.0.1:2181/m"})
    assert config.zk is not None
    assert config.zk.connect_string == "10.0.0.1:2181"
    assert config.registry == "zookeeper"


def test_zk_with_an_explicit_registry_keeps_it() -> None:
    config = config_from_args(["--zk", "zk://h/e", "--registry", "memory"], {})
    assert config.registry == "memory"
    config = config_from_args(["--zk", "zk://h/e", "--work-dir", "/w", "--registry", "file"], {})
    assert config.registry == "file"
    assert config.work_dir == Path("/w")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--zk", "http://h:2181/e"], "--zk: .*must start with zk://"),
        (["--zk", "zk://h:2181"], "--zk: "),
        (["--zk", "zk://h/e", "--zk-session-timeout", "0"], "--zk-session-timeout: must be"),
        (["--zk", "zk://h/e", "--zk-session-timeout", "soon"], "--zk-session-timeout: invalid"),
        (["--registry", "zookeeper"], "--zk: required with --registry zookeeper"),
    ],
)
def test_bad_zk_settings_name_the_flag(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_args(argv, {})


def test_built_directly() -> None:
    url = parse_zk_url("zk://127.0.0.1:2181/emporion")
    config = MasterConfig(zk=url, registry="zookeeper", zk_session_timeout=2.0)
    assert config.zk is url
    with pytest.raises(ConfigError, match="--zk: must be a parsed"):
        MasterConfig(zk="zk://h/e", registry="zookeeper")  # type: ignore[arg-type]
