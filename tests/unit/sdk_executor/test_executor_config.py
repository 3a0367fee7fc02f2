"""ExecutorConfig.from_env: the MESOS_* environment of an executor, and Mesos durations."""

from __future__ import annotations

import os

import pytest

from framework_sdk.executor_config import (
    DEFAULT_RECOVERY_TIMEOUT,
    DEFAULT_SHUTDOWN_GRACE_PERIOD,
    DEFAULT_SUBSCRIPTION_BACKOFF_MAX,
    ExecutorConfig,
    ExecutorEnvironmentError,
    parse_duration,
)

BASE = {
    "MESOS_AGENT_ENDPOINT": "127.0.0.1:5051",
    "MESOS_FRAMEWORK_ID": "fw-1",
    "MESOS_EXECUTOR_ID": "ex-1",
}


def test_minimal_environment_gets_mesos_defaults() -> None:
    config = ExecutorConfig.from_env(BASE)
    assert config.agent_endpoint == "127.0.0.1:5051"
    assert (config.framework_id, config.executor_id) == ("fw-1", "ex-1")
    assert config.checkpoint is False
    assert config.sandbox == os.getcwd()
    assert config.recovery_timeout_seconds == DEFAULT_RECOVERY_TIMEOUT == 900.0
    assert config.subscription_backoff_max_seconds == DEFAULT_SUBSCRIPTION_BACKOFF_MAX == 2.0
    assert config.shutdown_grace_period_seconds == DEFAULT_SHUTDOWN_GRACE_PERIOD == 5.0


def test_full_environment_as_the_agent_writes_it() -> None:
    env = {
        **BASE,
        "MESOS_SANDBOX": "/var/sandbox",
        "MESOS_CHECKPOINT": "1",
        "MESOS_RECOVERY_TIMEOUT": "15mins",
        "MESOS_SUBSCRIPTION_BACKOFF_MAX": "250ms",
        "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "5secs",
    }
    config = ExecutorConfig.from_env(env)
    assert config.sandbox == "/var/sandbox"
    assert config.checkpoint is True
    assert config.recovery_timeout_seconds == 900.0
    assert config.subscription_backoff_max_seconds == 0.25
    assert config.shutdown_grace_period_seconds == 5.0


@pytest.mark.parametrize("variable", sorted(BASE))
@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_required_variable_is_named(variable: str, value: str | None) -> None:
    env = dict(BASE)
    if value is None:
        del env[variable]
    else:
        env[variable] = value
    with pytest.raises(ExecutorEnvironmentError, match=variable) as caught:
        ExecutorConfig.from_env(env)
    assert caught.value.variable == variable
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    "endpoint", ["127.0.0.1", "localhost:", ":5051", "host:0", "host:70000", "a b:1", "h:-1"]
)
def test_bad_endpoint_is_refused(endpoint: str) -> None:
    with pytest.raises(ExecutorEnvironmentError, match="MESOS_AGENT_ENDPOINT"):
        ExecutorConfig.from_env({**BASE, "MESOS_AGENT_ENDPOINT": endpoint})


@pytest.mark.parametrize("endpoint", ["localhost:1", "[::1]:5051", "agent-3.example.org:65535"])
def test_good_endpoints(endpoint: str) -> None:
    assert ExecutorConfig.from_env({**BASE, "MESOS_AGENT_ENDPOINT": endpoint}).agent_endpoint


@pytest.mark.parametrize("value", ["true", "yes", "2", "01"])
def test_checkpoint_must_be_one_or_zero(value: str) -> None:
    with pytest.raises(ExecutorEnvironmentError, match="MESOS_CHECKPOINT"):
        ExecutorConfig.from_env({**BASE, "MESOS_CHECKPOINT": value})


@pytest.mark.parametrize(
    "variable",
    [
        "MESOS_RECOVERY_TIMEOUT",
        "MESOS_SUBSCRIPTION_BACKOFF_MAX",
        "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
    ],
)
@pytest.mark.parametrize("value", ["soon", "5 parsecs", "-1secs", "1e999secs"])
def test_bad_durations_are_named(variable: str, value: str) -> None:
    with pytest.raises(ExecutorEnvironmentError, match=variable):
        ExecutorConfig.from_env({**BASE, variable: value})


def test_zero_is_a_backoff_but_not_a_timeout() -> None:
    config = ExecutorConfig.from_env({**BASE, "MESOS_SUBSCRIPTION_BACKOFF_MAX": "0secs"})
    assert config.subscription_backoff_max_seconds == 0.0
    with pytest.raises(ExecutorEnvironmentError, match="MESOS_RECOVERY_TIMEOUT"):
        ExecutorConfig.from_env({**BASE, "MESOS_RECOVERY_TIMEOUT": "0secs"})


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5secs", 5.0),
        ("100ms", 0.1),
        ("15mins", 900.0),
        ("1.5hrs", 5400.0),
        ("2days", 172800.0),
        ("1weeks", 604800.0),
        ("250us", 0.00025),
        ("10ns", 1e-8),
        ("3s", 3.0),
        ("2m", 120.0),
        ("7", 7.0),
        (" 4 secs ", 4.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def test_direct_construction_is_checked() -> None:
    with pytest.raises(ValueError, match="agent_endpoint"):
        ExecutorConfig("nowhere", "fw", "ex")
    with pytest.raises(ValueError, match="executor_id"):
        ExecutorConfig("h:1", "fw", "")
    with pytest.raises(ValueError, match="recovery_timeout_seconds"):
        ExecutorConfig("h:1", "fw", "ex", recovery_timeout_seconds=0)
    with pytest.raises(TypeError, match="call_timeout_seconds"):
        ExecutorConfig("h:1", "fw", "ex", call_timeout_seconds=True)


def test_emporions_endpoint_comes_before_mesos_one() -> None:
    # An Emporion agent names its gRPC executor API in EMPORION_AGENT_ENDPOINT and its HTTP
    # API (for Mesos's HTTP executors) in MESOS_AGENT_ENDPOINT.
    env = {**BASE, "EMPORION_AGENT_ENDPOINT": "127.0.0.1:7000"}
    assert ExecutorConfig.from_env(env).agent_endpoint == "127.0.0.1:7000"
    with pytest.raises(ExecutorEnvironmentError, match="EMPORION_AGENT_ENDPOINT"):
        ExecutorConfig.from_env({**BASE, "EMPORION_AGENT_ENDPOINT": "nowhere"})
