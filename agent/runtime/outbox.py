"""Outbox: carries the agent core's effects out, in order, and turns their outcomes into events.

The core (:func:`agent.core.handle`) decides; this module does the I/O it asks for: checkpoint
writes (before the messages that depend on them, since effects come in that order), messages to
the master and to executors, containers, timers, health checks, sandbox garbage collection.
What an effect leads to comes back as an event through ``feed`` — a timer's firing, a health
change, and a container that could not even be prepared: a launch whose sandbox, environment
or command could not be set up is reported as ``ContainerLaunchFailed`` naming the cause, so
its task ends TASK_FAILED and frees its resources instead of staying STAGING forever.

One failing effect does not stop the others: it is logged and the next one is carried out.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agent.checkpoint import CheckpointStore, apply_checkpoint_effect
from agent.core import ContainerExit
from agent.core.effects import (
    CancelTimer,
    CheckpointAgent,
    CloseExecutorStream,
    DestroyContainer,
    Effect,
    ForwardUpdate,
    LaunchContainer,
    LookForContainer,
    ScheduleSandboxGC,
    SendToExecutor,
    SendToMaster,
    SetTimer,
    SignalContainer,
    StartHealthCheck,
    StopAgent,
    StopHealthCheck,
    TimerKey,
    UpdateContainer,
)
from agent.core.events import (
    Event,
    HealthChanged,
    HealthFailed,
    TimerFired,
)
from agent.core.messages import status_update_message
from agent.gc import SandboxGC
from agent.health import HealthChecker
from agent.runtime.containers import ContainerManager, NeverStarted, PreparedLaunch
from agent.runtime.environment import ExecutorEndpoint, command_argv, process_environment
from agent.runtime.executor_api import ExecutorHub
from agent.runtime.master_link import MasterLink

__all__ = ["Outbox"]

log = logging.getLogger(__name__)


class Outbox:
    """Outbox carries out one agent's effects (see the module docstring).

    ``feed`` hands an event back to the runtime (which queues it after the effects being
    carried out); ``now`` is the runtime's clock; ``agent_id`` and ``executor_address`` are
    read at launch time (the agent registers, and the executor API binds, after construction).
    """

    def __init__(
        self,
        *,
        store: CheckpointStore,
        link: MasterLink,
        hub: ExecutorHub,
        containers: ContainerManager,
        gc: SandboxGC,
        feed: Callable[[Event], None],
        now: Callable[[], float],
        agent_id: Callable[[], str | None],
        executor_port: Callable[[], int],
        recovery_timeout: float,
        http_endpoint: Callable[[], str | None] = lambda: None,
        on_gc_scheduled: Callable[[], None],
        on_stop: Callable[[str], None],
    ) -> None:
        self.store = store
        self.link = link
        self.hub = hub
        self.containers = containers
        self.gc = gc
        self._feed = feed
        self._now = now
        self._agent_id = agent_id
        self._executor_port = executor_port
        self._http_endpoint = http_endpoint
        self._recovery_timeout = recovery_timeout
        self._on_gc_scheduled = on_gc_scheduled
        self._on_stop = on_stop
        self.timers: dict[TimerKey, asyncio.TimerHandle] = {}
        self.health: dict[tuple[str, str], HealthChecker] = {}
        self.envs: dict[str, dict[str, str]] = {}
        self.recovered: list[tuple[str, ContainerExit | NeverStarted | None]] = []
        """Answers to ``LookForContainer``, for the runtime to feed once its servers run."""
        self.background: set[asyncio.Task[Any]] = set()

    def apply(self, effects: Sequence[Effect]) -> None:
        """Carry out ``effects`` in order; a failing one is logged and the rest go on."""
        for effect in effects:
            try:
                self._apply_one(effect)
            except Exception:
                log.exception("Carrying out %s failed", type(effect).__name__)

    def _apply_one(self, effect: Effect) -> None:
        if apply_checkpoint_effect(self.store, effect):
            if isinstance(effect, CheckpointAgent):
                # Executors were told this port: after a restart they look for it again.
                self.store.write_executor_port(self._executor_port())
            return
        match effect:
            case SetTimer(key, at):
                self._set_timer(key, at)
            case CancelTimer(key):
                handle = self.timers.pop(key, None)
                if handle is not None:
                    handle.cancel()
            case ForwardUpdate(framework_id, executor_id, status, latest):
                self.link.send(status_update_message(framework_id, executor_id, status, latest))
            case SendToMaster(message):
                self.link.send(message)
            case SendToExecutor(framework_id, executor_id, event):
                self.hub.send((framework_id, executor_id), event)
            case CloseExecutorStream(framework_id, executor_id):
                self.hub.close((framework_id, executor_id))
            case LaunchContainer():
                self._launch(effect)
            case SignalContainer(container_id, signum):
                self.containers.signal(container_id, signum)
            case DestroyContainer(container_id):
                self.containers.destroy(container_id)
            case UpdateContainer(container_id, resources):
                self.containers.update(container_id, resources)
            case StartHealthCheck():
                self._start_health_check(effect)
            case StopHealthCheck(framework_id, task_id):
                checker = self.health.pop((framework_id, task_id), None)
                if checker is not None:
                    self.spawn(checker.stop(), "health-stop")
            case ScheduleSandboxGC(framework_id, executor_id, container_id):
                path = self.store.sandbox_path(framework_id, executor_id, container_id)
                self.gc.schedule(path, self._now())
                self._on_gc_scheduled()
            case LookForContainer(container_id, state):
                exit = self.containers.recover(container_id, state)
                self.recovered.append((container_id, exit))
            case StopAgent(message):
                self._on_stop(message)
            case _:
                raise TypeError(f"unknown effect {type(effect).__name__}")

    # -- containers --

    def _launch(self, effect: LaunchContainer) -> None:
        """Queue a container's launch; it is prepared when its turn comes, so one cancelled
        while queued creates nothing, not even its sandbox. A failure to prepare it fails the
        launch (the container manager reports it, naming the cause)."""
        self.containers.enqueue(
            effect.container_id, effect.framework_id, lambda: self._prepare(effect)
        )

    def _prepare(self, effect: LaunchContainer) -> PreparedLaunch:
        """The sandbox, argv and environment of a container (what can fail before its launch)."""
        if effect.parent_container_id is not None and effect.task_id is not None:
            # A default executor's task: its sandbox is tasks/<task_id> in the executor's run.
            self.store.make_sandbox(
                effect.framework_id, effect.executor_id, effect.parent_container_id
            )
            sandbox = self.store.task_sandbox_path(
                effect.framework_id, effect.executor_id, effect.parent_container_id, effect.task_id
            )
            sandbox.mkdir(parents=True, exist_ok=True)
        else:
            sandbox = self.store.make_sandbox(
                effect.framework_id, effect.executor_id, effect.container_id
            )
        argv, shell = command_argv(effect.command)
        endpoint = None
        if effect.task_id is None:
            endpoint = ExecutorEndpoint(
                f"127.0.0.1:{self._executor_port()}",
                effect.shutdown_grace_period,
                self._recovery_timeout,
                http_address=self._http_endpoint(),
            )
        env = process_environment(
            effect.command,
            sandbox=sandbox,
            agent_id=self._agent_id() or "",
            framework_id=effect.framework_id,
            executor_id=effect.executor_id,
            container_id=effect.container_id,
            task_id=effect.task_id,
            checkpoint=effect.checkpoint,
            executor=endpoint,
        )
        user = effect.user
        if user is not None and os.geteuid() != 0 and user == getpass.getuser():
            user = None  # Already that user: nothing to switch.
        self.envs[effect.container_id] = env
        return PreparedLaunch(
            effect.container_id,
            argv,
            shell,
            env,
            sandbox,
            effect.resources,
            user,
            list(effect.command.uris),
            framework_id=effect.framework_id,
        )

    # -- timers --

    def _set_timer(self, key: TimerKey, at: float) -> None:
        handle = self.timers.pop(key, None)
        if handle is not None:
            handle.cancel()
        delay = max(0.0, at - self._now())
        self.timers[key] = asyncio.get_running_loop().call_later(delay, self._fire, key)

    def _fire(self, key: TimerKey) -> None:
        self.timers.pop(key, None)
        self._feed(TimerFired(key))

    def cancel_timers(self) -> None:
        """Cancel every timer (the agent is stopping)."""
        for handle in self.timers.values():
            handle.cancel()
        self.timers.clear()

    # -- health checks --

    def _start_health_check(self, effect: StartHealthCheck) -> None:
        key = (effect.framework_id, effect.task_id)
        if key in self.health:
            return
        sandbox: Path
        if effect.executor_id is not None and effect.parent_container_id is not None:
            sandbox = self.store.task_sandbox_path(
                effect.framework_id, effect.executor_id, effect.parent_container_id, effect.task_id
            )
        else:  # A command task: its executor id is its task id.
            sandbox = self.store.sandbox_path(
                effect.framework_id, effect.task_id, effect.container_id
            )
        env = self.envs.get(effect.container_id, {"PATH": os.environ.get("PATH", "")})

        def changed(healthy: bool) -> None:
            self._feed(HealthChanged(*key, healthy))

        def kill(reason: str) -> None:
            log.warning("Task %s failed its health checks: %s", effect.task_id, reason)
            self._feed(HealthFailed(*key))

        try:
            checker = HealthChecker(effect.check, env, sandbox, changed, kill)
        except ValueError as error:
            log.warning("Task %s: health check not started: %s", effect.task_id, error)
            return
        self.health[key] = checker
        checker.start()

    async def stop_health_checks(self) -> None:
        """Stop every health checker (the agent is stopping)."""
        for checker in list(self.health.values()):
            await checker.stop()
        self.health.clear()

    # -- background work --

    def spawn(self, coro: Any, name: str) -> None:
        """Run ``coro`` in the background, kept until it ends (cancelled at stop)."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
