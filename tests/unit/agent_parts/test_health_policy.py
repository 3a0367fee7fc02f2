"""HealthCheckPolicy: scheduling, grace period, consecutive failures and what is reported."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from agent.health import CommandProbe, HealthCheckPolicy, HealthCheckSpec, ProbeResult
from protos.v1 import mesos_pb2

START = 1000.0


def spec(
    *, delay: float = 0.0, interval: float = 1.0, grace: float = 0.0, failures: int = 3
) -> HealthCheckSpec:
    return HealthCheckSpec(
        delay_s=delay,
        interval_s=interval,
        timeout_s=1.0,
        consecutive_failures=failures,
        grace_period_s=grace,
        probe=CommandProbe(shell=True, value="true", arguments=(), environment=()),
    )


@dataclass(frozen=True)
class Step:
    at: float  # seconds after the start
    healthy: bool
    report: bool | None = None
    kill: bool = False
    ignored: bool = False


OK, BAD = True, False

SCENARIOS: dict[str, tuple[HealthCheckSpec, list[Step]]] = {
    "first healthy is reported once": (
        spec(),
        [Step(0, OK, report=True), Step(1, OK), Step(2, OK)],
    ),
    "failures in the grace period are ignored until the first success": (
        spec(grace=10, failures=1),
        [
            Step(1, BAD, ignored=True),
            Step(5, BAD, ignored=True),
            Step(6, OK, report=True),
            # After a success the grace period no longer applies, even inside it.
            Step(7, BAD, report=False, kill=True),
        ],
    ),
    "the grace period ends": (
        spec(grace=5, failures=2),
        [
            Step(1, BAD, ignored=True),
            Step(5, BAD, ignored=True),  # the boundary is still inside, as in Mesos
            Step(6, BAD, report=False),
            Step(7, BAD, kill=True),
        ],
    ),
    "recovery resets the count and every change is reported": (
        spec(failures=3),
        [
            Step(0, BAD, report=False),
            Step(1, BAD),
            Step(2, OK, report=True),
            Step(3, BAD, report=False),
            Step(4, BAD),
            Step(5, OK, report=True),
        ],
    ),
    "kill after consecutive failures": (
        spec(failures=3),
        [
            Step(0, OK, report=True),
            Step(1, BAD, report=False),
            Step(2, BAD),
            Step(3, BAD, kill=True),
        ],
    ),
    "zero consecutive failures kills at the first counted failure": (
        spec(failures=0, grace=2),
        [Step(1, BAD, ignored=True), Step(3, BAD, report=False, kill=True)],
    ),
    "no grace period counts the first failure": (
        spec(failures=2),
        [Step(0, BAD, report=False), Step(1, BAD, kill=True)],
    ),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(name: str) -> None:
    check, steps = SCENARIOS[name]
    policy = HealthCheckPolicy(check, started_at=START)
    for step in steps:
        decision = policy.record(ProbeResult(step.healthy, "detail"), START + step.at)
        policy.validate()
        got = (decision.report, decision.kill, decision.ignored)
        assert got == (step.report, step.kill, step.ignored), f"at t={step.at}"
        if decision.kill:
            assert decision.next_probe_at is None
            assert "consecutive times" in decision.reason
        else:
            assert decision.next_probe_at == START + step.at + check.interval_s
    assert policy.killed == steps[-1].kill


def test_first_probe_waits_for_the_delay_and_then_the_interval() -> None:
    policy = HealthCheckPolicy(spec(delay=15, interval=10), started_at=START)
    assert policy.next_probe_at == START + 15
    decision = policy.record(ProbeResult(True), START + 15.5)
    assert decision.next_probe_at == START + 25.5
    assert policy.next_probe_at == START + 25.5


def test_grace_period_includes_the_delay() -> None:
    policy = HealthCheckPolicy(spec(delay=20, grace=10), started_at=START)
    assert not policy.in_grace_period(START + 20)
    assert policy.record(ProbeResult(False), START + 20).report is False


def test_nothing_is_recorded_after_the_kill_or_before_the_start() -> None:
    policy = HealthCheckPolicy(spec(failures=1), started_at=START)
    with pytest.raises(ValueError, match="before the check started"):
        policy.record(ProbeResult(True), START - 1)
    assert policy.record(ProbeResult(False, "exit 1"), START).kill
    with pytest.raises(ValueError, match="already decided to kill"):
        policy.record(ProbeResult(True), START + 1)
    policy.validate()


def test_from_proto_validates() -> None:
    check = mesos_pb2.HealthCheck(type=mesos_pb2.HealthCheck.TCP)
    with pytest.raises(ValueError, match=r"health_check\.tcp must be set"):
        HealthCheckPolicy.from_proto(check, START)
    check.tcp.port = 80
    assert HealthCheckPolicy.from_proto(check, START).next_probe_at == START + 15
