"""``HealthChecker``: the asyncio driver that runs a task's probes on the policy's schedule."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from agent.health.policy import HealthCheckPolicy, HealthDecision
from agent.health.probes import run_probe
from agent.health.spec import HealthCheckSpec
from protos.v1 import mesos_pb2

log = logging.getLogger(__name__)


class HealthChecker:
    """Probes one task and reports health changes and the decision to kill it.

    ``on_change(healthy)`` is called for the first result and each change (the runtime sends a
    TASK_RUNNING update with ``healthy`` and reason REASON_TASK_HEALTH_CHECK_STATUS_UPDATED);
    ``on_kill(reason)`` once, after ``consecutive_failures`` failures, after which probing
    stops. Callbacks run on the event loop and should not block; an exception in one is logged
    and probing goes on. The grace period runs from :meth:`start`, so start the checker when
    the task is launched.
    """

    def __init__(
        self,
        check: mesos_pb2.HealthCheck,
        env: Mapping[str, str],
        cwd: Path,
        on_change: Callable[[bool], None],
        on_kill: Callable[[str], None],
    ) -> None:
        self.spec = HealthCheckSpec.from_proto(check)
        self.env = dict(env)
        self.cwd = Path(cwd)
        self._on_change = on_change
        self._on_kill = on_kill
        self.policy: HealthCheckPolicy | None = None
        self._task: asyncio.Task[None] | None = None
        self.decisions: list[HealthDecision] = []
        """Every decision so far, oldest first (for introspection and tests)."""

    @property
    def running(self) -> bool:
        """Whether probes are still scheduled."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Begin checking; must be called from the event loop, once."""
        if self._task is not None:
            raise RuntimeError("the health checker was already started")
        loop = asyncio.get_running_loop()
        self.policy = HealthCheckPolicy(self.spec, started_at=loop.time())
        self._task = loop.create_task(self._run(self.policy), name="health-checker")

    async def stop(self) -> None:
        """Stop checking and wait until a probe in progress (and its processes) is gone."""
        task = self._task
        if task is None or task.done():
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def wait(self) -> None:
        """Wait until checking ends by itself (after a kill decision)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def _run(self, policy: HealthCheckPolicy) -> None:
        loop = asyncio.get_running_loop()
        while (due := policy.next_probe_at) is not None:
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            result = await run_probe(self.spec.probe, self.env, self.cwd, self.spec.timeout_s)
            decision = policy.record(result, loop.time())
            self.decisions.append(decision)
            if decision.ignored or (not result.healthy and decision.report is None):
                log.info("health check of %s: %s", self.cwd, decision.reason)
            if decision.report is not None:
                self._call("on_change", functools.partial(self._on_change, decision.report))
            if decision.kill:
                log.warning("health check of %s: %s", self.cwd, decision.reason)
                self._call("on_kill", functools.partial(self._on_kill, decision.reason))

    @staticmethod
    def _call(name: str, call: Callable[[], None]) -> None:
        try:
            call()
        except Exception:
            log.exception("health check callback %s failed", name)
