"""HealthCheckSpec.from_proto: Mesos's validation rules, each error naming its field."""

from __future__ import annotations

import math

import pytest

from agent.health import CheckKind, CommandProbe, HealthCheckSpec, HttpProbe, TcpProbe
from protos.v1 import mesos_pb2

HC = mesos_pb2.HealthCheck


def command_check(**fields: object) -> mesos_pb2.HealthCheck:
    return HC(type=HC.COMMAND, command=mesos_pb2.CommandInfo(value="true"), **fields)  # type: ignore[arg-type]


def test_defaults_follow_mesos() -> None:
    spec = HealthCheckSpec.from_proto(command_check())
    assert (spec.delay_s, spec.interval_s, spec.timeout_s) == (15.0, 10.0, 20.0)
    assert (spec.consecutive_failures, spec.grace_period_s) == (3, 10.0)
    assert spec.kind is CheckKind.COMMAND
    assert spec.probe == CommandProbe(shell=True, value="true", arguments=(), environment=())
    assert spec.probe.argv == ("/bin/sh", "-c", "true")


def test_zero_timeout_means_no_timeout() -> None:
    assert HealthCheckSpec.from_proto(command_check(timeout_seconds=0)).timeout_s is None


def test_command_argv_form_and_environment() -> None:
    env = mesos_pb2.Environment(variables=[mesos_pb2.Environment.Variable(name="A", value="1")])
    command = mesos_pb2.CommandInfo(
        shell=False, value="/bin/test", arguments=["test", "-e", "f"], environment=env
    )
    probe = HealthCheckSpec.from_proto(HC(type=HC.COMMAND, command=command)).probe
    assert isinstance(probe, CommandProbe)
    assert probe.argv == ("test", "-e", "f")
    assert probe.environment == (("A", "1"),)


def test_http_defaults_and_ipv6() -> None:
    spec = HealthCheckSpec.from_proto(HC(type=HC.HTTP, http=HC.HTTPCheckInfo(port=8080)))
    assert spec.kind is CheckKind.HTTP
    assert spec.probe == HttpProbe("http", "127.0.0.1", 8080, "/", frozenset())
    assert spec.probe.url == "http://127.0.0.1:8080/"
    v6 = HC.HTTPCheckInfo(
        port=443, scheme="https", path="/h", protocol=mesos_pb2.NetworkInfo.IPv6, statuses=[204]
    )
    probe = HealthCheckSpec.from_proto(HC(type=HC.HTTP, http=v6)).probe
    assert isinstance(probe, HttpProbe)
    assert probe.url == "https://[::1]:443/h"
    assert probe.is_healthy(204)
    assert not probe.is_healthy(200)


def test_http_default_statuses_are_200_to_399() -> None:
    probe = HttpProbe("http", "127.0.0.1", 1, "/", frozenset())
    assert [probe.is_healthy(s) for s in (199, 200, 302, 399, 400, 503)] == [
        False,
        True,
        True,
        True,
        False,
        False,
    ]


def test_tcp() -> None:
    spec = HealthCheckSpec.from_proto(HC(type=HC.TCP, tcp=HC.TCPCheckInfo(port=9)))
    assert spec.kind is CheckKind.TCP
    assert spec.probe == TcpProbe("127.0.0.1", 9)


SECRET = mesos_pb2.Environment.Variable(name="S", type=mesos_pb2.Environment.Variable.SECRET)


@pytest.mark.parametrize(
    ("check", "field"),
    [
        (HC(), "health_check.type"),
        (HC(type=HC.UNKNOWN), "health_check.type"),
        (HC(type=HC.COMMAND), "health_check.command must be set"),
        (HC(type=HC.HTTP), "health_check.http must be set"),
        (HC(type=HC.TCP), "health_check.tcp must be set"),
        (HC(type=HC.TCP, http=HC.HTTPCheckInfo(port=1)), "health_check.http is set but"),
        (
            HC(type=HC.HTTP, http=HC.HTTPCheckInfo(port=1), tcp=HC.TCPCheckInfo(port=1)),
            "health_check.tcp is set but health_check.type is HTTP",
        ),
        (HC(type=HC.COMMAND, command=mesos_pb2.CommandInfo()), "health_check.command.value"),
        (
            HC(
                type=HC.COMMAND,
                command=mesos_pb2.CommandInfo(
                    value="x", environment=mesos_pb2.Environment(variables=[SECRET])
                ),
            ),
            "health_check.command.environment.variables[0] is a SECRET",
        ),
        (HC(type=HC.HTTP, http=HC.HTTPCheckInfo()), "health_check.http.port"),
        (HC(type=HC.HTTP, http=HC.HTTPCheckInfo(port=70000)), "health_check.http.port"),
        (HC(type=HC.HTTP, http=HC.HTTPCheckInfo(port=1, scheme="ftp")), "health_check.http.scheme"),
        (HC(type=HC.HTTP, http=HC.HTTPCheckInfo(port=1, path="health")), "health_check.http.path"),
        (
            HC(type=HC.HTTP, http=HC.HTTPCheckInfo(port=1, statuses=[42])),
            "health_check.http.statuses",
        ),
        (HC(type=HC.TCP, tcp=HC.TCPCheckInfo()), "health_check.tcp.port"),
        (command_check(delay_seconds=-1), "health_check.delay_seconds"),
        (command_check(interval_seconds=-0.5), "health_check.interval_seconds"),
        (command_check(timeout_seconds=-1), "health_check.timeout_seconds"),
        (command_check(grace_period_seconds=-1), "health_check.grace_period_seconds"),
        (command_check(interval_seconds=math.inf), "health_check.interval_seconds"),
        (command_check(delay_seconds=math.nan), "health_check.delay_seconds"),
    ],
)
def test_invalid_checks_name_the_field(check: mesos_pb2.HealthCheck, field: str) -> None:
    with pytest.raises(ValueError, match="health_check") as info:
        HealthCheckSpec.from_proto(check)
    assert field in str(info.value)
