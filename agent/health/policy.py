"""When to probe a task and what each probe result means: a pure state machine (no I/O).

The rules are Mesos's built-in executors' (``docs/health-checks.md``, ``src/checks``):

* the first probe runs ``delay`` after the checker starts (the task's launch), and each next
  one ``interval`` after the previous result;
* a failure counts unless the task has never passed a probe and the grace period (measured from
  the start, so it includes the delay) has not run out: such failures are ignored;
* after ``consecutive_failures`` counted failures in a row the task is to be killed, and the
  checker stops;
* reports: the first result (healthy, or unhealthy once failures count) and every change
  between healthy and unhealthy. Mesos additionally repeats the unhealthy report on every
  failure; Emporion reports changes only, so a flapping task does not flood the status stream
  and the scheduler still sees each transition.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.health.spec import HealthCheckSpec
from protos.v1 import mesos_pb2


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of one probe."""

    healthy: bool
    detail: str = ""
    """What happened, for logs and the kill reason (``"HTTP 503"``, ``"timed out after 1s"``)."""


@dataclass(frozen=True)
class HealthDecision:
    """What the runtime should do after a probe result."""

    report: bool | None
    """Health to report now (a TASK_RUNNING update with ``healthy``), or None for nothing."""
    kill: bool
    """True when the task must be killed; no more probes follow."""
    ignored: bool
    """True for a failure ignored because of the grace period."""
    consecutive_failures: int
    next_probe_at: float | None
    reason: str
    """Why: the probe's detail, and for a kill the failure count."""


class HealthCheckPolicy:
    """Health-check decisions for one task, driven by ``now`` and probe results."""

    def __init__(self, spec: HealthCheckSpec, started_at: float) -> None:
        self.spec = spec
        self.started_at = started_at
        self.healthy: bool | None = None
        """The last reported health; None before anything was reported."""
        self.consecutive_failures = 0
        self.passed_once = False
        self.killed = False
        self.next_probe_at: float | None = started_at + spec.delay_s
        self.probes = 0

    @classmethod
    def from_proto(cls, check: mesos_pb2.HealthCheck, started_at: float) -> HealthCheckPolicy:
        """A policy for ``check``; raises ValueError naming an invalid field."""
        return cls(HealthCheckSpec.from_proto(check), started_at)

    def in_grace_period(self, now: float) -> bool:
        """Whether a failure at ``now`` would be ignored."""
        return (
            not self.passed_once
            and self.spec.grace_period_s > 0
            and now - self.started_at <= self.spec.grace_period_s
        )

    def record(self, result: ProbeResult, now: float) -> HealthDecision:
        """Take one probe result that arrived at ``now``; returns what to do."""
        if self.killed:
            raise ValueError("the health check already decided to kill the task")
        if now < self.started_at:
            raise ValueError(f"now ({now}) is before the check started ({self.started_at})")
        self.probes += 1
        self.next_probe_at = now + self.spec.interval_s
        if result.healthy:
            return self._success(result)
        return self._failure(result, now)

    def _success(self, result: ProbeResult) -> HealthDecision:
        self.passed_once = True
        self.consecutive_failures = 0
        report = None if self.healthy is True else True
        self.healthy = True
        return HealthDecision(report, False, False, 0, self.next_probe_at, result.detail)

    def _failure(self, result: ProbeResult, now: float) -> HealthDecision:
        if self.in_grace_period(now):
            reason = f"ignored during the grace period: {result.detail}"
            return HealthDecision(None, False, True, 0, self.next_probe_at, reason)
        self.consecutive_failures += 1
        report = None if self.healthy is False else False
        self.healthy = False
        # Mesos compares with >=, so 0 behaves like 1: the first counted failure kills.
        if self.consecutive_failures >= self.spec.consecutive_failures:
            self.killed = True
            self.next_probe_at = None
            reason = (
                f"health check failed {self.consecutive_failures} consecutive times; "
                f"last: {result.detail}"
            )
            return HealthDecision(report, True, False, self.consecutive_failures, None, reason)
        return HealthDecision(
            report, False, False, self.consecutive_failures, self.next_probe_at, result.detail
        )

    def validate(self) -> None:
        """Invariants of the state machine; raises AssertionError when one is broken."""
        assert self.consecutive_failures >= 0
        assert (self.next_probe_at is None) == self.killed, "probes continue iff not killed"
        if self.killed:
            assert self.healthy is False
            assert self.consecutive_failures >= max(1, self.spec.consecutive_failures)
        if self.consecutive_failures:
            assert self.healthy is False, "counted failures mean the task was reported unhealthy"
        if self.healthy is True:
            assert self.passed_once
            assert self.consecutive_failures == 0
        assert self.consecutive_failures <= self.probes
