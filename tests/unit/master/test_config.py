"""MasterConfig: flags, EMPORION_* variables, durations, and errors that name the flag."""

from __future__ import annotations

from pathlib import Path

import pytest

from master.config import ConfigError, MasterConfig, config_from_args, parse_duration, parse_weights


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5", 5.0),
        ("5s", 5.0),
        ("5secs", 5.0),
        ("100ms", 0.1),
        ("2mins", 120.0),
        ("1.5hrs", 5400.0),
        ("1days", 86400.0),
        ("2weeks", 1209600.0),
        ("250us", 0.00025),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5x", "-1s", "s", "1e999s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_weights() -> None:
    assert parse_weights("eng=2, ops=0.5") == {"eng": 2.0, "ops": 0.5}
    for bad in ("eng", "eng=x", "eng=0", "a//b=1"):
        with pytest.raises(ValueError, match="invalid"):
            parse_weights(bad)


def test_defaults_follow_the_issue() -> None:
    config = config_from_args(["--work-dir", "/tmp/w"], {})
    assert config.agent_ping_timeout == 5.0
    assert config.max_agent_ping_timeouts == 3
    assert config.heartbeat_interval == 15.0
    assert config.allocation_interval == 1.0
    assert config.offer_timeout is None
    assert config.registry == "file"
    assert config.work_dir == Path("/tmp/w")
    assert config.agent_ping_deadline == 15.0


def test_flags_and_environment() -> None:
    env = {
        "EMPORION_PORT": "0",
        "EMPORION_REGISTRY": "memory",
        "EMPORION_OFFER_TIMEOUT": "30secs",
        "EMPORION_HEARTBEAT_INTERVAL": "1s",
        "EMPORION_WEIGHTS": "eng=3",
    }
    config = config_from_args(["--heartbeat-interval", "2s", "--host", "0.0.0.0"], env)
    assert config.port == 0
    assert config.registry == "memory"
    assert config.offer_timeout == 30.0
    assert config.heartbeat_interval == 2.0  # The flag wins over the variable.
    assert config.host == "0.0.0.0"
    assert config.weights == {"eng": 3.0}


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--port", "70000", "--registry", "memory"], "--port"),
        (["--port", "x", "--registry", "memory"], "--port"),
        (["--registry", "zk"], "--registry"),
        ([], "--work-dir"),
        (["--registry", "memory", "--agent-ping-timeout", "0s"], "--agent-ping-timeout"),
        (["--registry", "memory", "--max-agent-ping-timeouts", "0"], "--max-agent-ping-timeouts"),
        (["--registry", "memory", "--offer-timeout", "soon"], "--offer-timeout"),
        (["--registry", "memory", "--min-allocatable-resources", "cpus:x"], "--min-allocatable"),
        (["--registry", "memory", "--weights", "eng=-1"], "--weights"),
        (["--registry", "memory", "--log-level", "LOUD"], "--log-level"),
    ],
)
def test_bad_values_name_the_flag(argv: list[str], flag: str) -> None:
    with pytest.raises(ConfigError) as raised:
        config_from_args(argv, {})
    assert str(raised.value).startswith(flag)


def test_config_is_frozen() -> None:
    config = MasterConfig(registry="memory")
    with pytest.raises(AttributeError):
        config.port = 1  # type: ignore[misc]


def test_a_number_flag_given_a_word_says_what_it_expected() -> None:
    with pytest.raises(ConfigError) as raised:
        config_from_args(["--registry", "memory", "--max-tasks-per-accept", "lots"], {})
    assert str(raised.value) == "--max-tasks-per-accept: expected a whole number, got 'lots'"
