"""AgentRuntime: the asyncio shell around the agent's core — the only code that mutates its state.

Everything that happens (a master message, a container exit, an executor call, a timer) is
turned into a call on :class:`agent.core.AgentState`, and the effects it returns are carried
out here, in order: checkpoint writes before the messages that depend on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grpc import aio

from agent.checkpoint import CheckpointStore, paths, read_host_boot_id
from agent.config import AgentConfig, ZkMaster
from agent.core import (
    AgentState,
    ContainerExit,
    CoreSettings,
    RecoveryPlan,
    RegistrationBackoff,
    RetrySchedule,
    plan_recovery,
)
from agent.core.effects import (
    AppendUpdateRecord,
    CancelTimer,
    CheckpointExecutor,
    CheckpointFramework,
    CheckpointTask,
    CloseExecutorStream,
    DestroyContainer,
    Effect,
    ForwardUpdate,
    LaunchContainer,
    RemoveExecutorCheckpoint,
    RemoveFrameworkCheckpoint,
    ScheduleSandboxGC,
    SendToExecutor,
    SendToMaster,
    SetTimer,
    SignalContainer,
    StartHealthCheck,
    StopHealthCheck,
    TimerKey,
    UpdateContainer,
)
from agent.core.messages import status_update_message
from agent.gc import SandboxGC, remove_sandbox
from agent.health import HealthChecker
from agent.isolation import Container, Isolation
from agent.resources_detect import detect_resources, merge_resources
from agent.runtime.containers import ContainerManager, PreparedLaunch
from agent.runtime.environment import ExecutorEndpoint, command_argv, process_environment
from agent.runtime.executor_api import ExecutorHub, ExecutorService, start_executor_server
from agent.runtime.http import AgentHttpServer, sandbox_roots
from agent.runtime.master_link import MasterDetector, MasterLink, Session, fixed_master
from agent.runtime.state_view import state_json
from protos.v1 import agent_internal_pb2, executor_pb2, mesos_pb2

__all__ = ["VERSION", "AgentRuntime"]

log = logging.getLogger(__name__)

VERSION = "0.1.0"
_SHUTDOWN_SLACK = 5.0  # Beyond the longest grace period, before everything is destroyed.


class AgentRuntime:
    """AgentRuntime runs one agent: recovery, servers, the master session, and the effects."""

    def __init__(
        self, config: AgentConfig, isolation: Isolation, boot_id: str | None = None
    ) -> None:
        self.config = config
        self.isolation = isolation
        self.boot_id = boot_id or read_host_boot_id()
        self.store = CheckpointStore(config.work_dir)
        config.work_dir.mkdir(parents=True, exist_ok=True)
        total = merge_resources(config.resources, detect_resources(config.work_dir))
        info = mesos_pb2.AgentInfo(hostname=config.agent_hostname())
        info.resources.extend(total.to_protos())
        info.attributes.extend(a.to_proto() for a in config.attributes)
        settings = CoreSettings(
            executor_registration_timeout=config.executor_registration_timeout,
            executor_reregistration_timeout=config.executor_reregistration_timeout,
            executor_shutdown_grace_period=config.executor_shutdown_grace_period,
            status_update_retry=RetrySchedule(
                config.status_update_retry_min, config.status_update_retry_max
            ),
        )
        self.state = AgentState(total, info, settings)
        self.containers = ContainerManager(
            isolation,
            paths.fetch_cache_dir(config.work_dir),
            self._container_launched,
            self._container_launch_failed,
            self._container_exited,
        )
        self.hub = ExecutorHub()
        self.gc = SandboxGC(config.gc_delay)
        self._zk_detector: Any = None  # A ZooKeeperMasterDetector under --master zk://.
        detector: MasterDetector
        if isinstance(config.master, ZkMaster):
            # Imported here: kazoo is only needed (and loaded) when following a leader.
            from agent.master_detector import ZooKeeperMasterDetector

            self._zk_detector = detector = ZooKeeperMasterDetector(
                config.master.url, session_timeout=config.zk_session_timeout
            )
        else:
            detector = fixed_master(config.master.target)
        self.link = MasterLink(
            detector,
            hello=self._hello,
            on_session=self._on_session,
            on_message=self._on_message,
            on_lost=self._on_lost,
            backoff=RegistrationBackoff(
                config.registration_backoff_factor, config.registration_backoff_max
            ),
            default_ping_timeout=config.default_ping_timeout,
        )
        self.http: AgentHttpServer | None = None
        self.executor_server: aio.Server | None = None
        self.executor_port = 0
        self.stopped = asyncio.Event()
        self.recovery_plan: RecoveryPlan | None = None
        self._timers: dict[TimerKey, asyncio.TimerHandle] = {}
        self._health: dict[tuple[str, str], HealthChecker] = {}
        self._envs: dict[str, dict[str, str]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._gc_timer: asyncio.TimerHandle | None = None
        self._stopping = False

    @staticmethod
    def now() -> float:
        """Wall-clock seconds (task status timestamps are epoch seconds, as in Mesos)."""
        return time.time()

    # -- start and stop --

    async def start(self) -> None:
        """Recover, start the executor API and HTTP servers, then connect to the master."""
        recovered = self._recover()
        ports = [self.config.executor_port]
        if self.config.executor_port == 0 and self.recovery_plan is RecoveryPlan.RECOVER:
            # Executors were told this port: they can only come back if it is the same.
            previous = self.store.read_executor_port()
            ports = [previous, 0] if previous else [0]
        service = ExecutorService(self, self.hub)
        self.executor_server, self.executor_port = await start_executor_server(service, ports)
        self.http = AgentHttpServer(
            self.config.ip,
            self.config.port,
            lambda: sandbox_roots(self._agent_sandboxes()),
            lambda: state_json(self.state, self.executor_port, self.link.connected),
        )
        self.http.start()
        self.state.agent_info.port = self.http.port
        now = self.now()
        for container_id, exit in recovered:
            if exit is None:
                self._apply(self.state.container_recovered(container_id, now))
            else:
                self._apply(self.state.container_exited(container_id, exit, now))
        self._apply(self.state.recovery_done(now))
        self._schedule_old_sandboxes()
        self._spawn(self._watch_disk(), "disk-watch")
        self.link.start()

    def _recover(self) -> list[tuple[str, ContainerExit | None]]:
        checkpoint = self.store.read()
        plan = plan_recovery(
            checkpoint.boot_id, self.boot_id, checkpoint.agent is not None, self.config.recover
        )
        self.recovery_plan = plan
        log.info("Recovery: %s", plan.value)
        recovered: list[tuple[str, ContainerExit | None]] = []
        if plan is RecoveryPlan.RECOVER:
            assert checkpoint.agent is not None
            for container_id, state in self.state.recover(checkpoint.agent):
                recovered.append((container_id, self.containers.recover(container_id, state)))
            # Only containers found running are kept: one the agent died before recording (or
            # could not reattach to) is an orphan, and is destroyed with the others.
            known = {container_id for container_id, exit in recovered if exit is None}
        else:
            if plan is not RecoveryPlan.FRESH:
                self.store.clear_agents()
            known = set()
        orphans = self.containers.cleanup_orphans(known)
        if orphans:
            log.info("Destroyed %d containers left by an earlier agent", len(orphans))
        self.store.write_boot_id(self.boot_id)
        return recovered

    def request_stop(self, kill_all: bool) -> None:
        """Stop in the background (from a signal handler or a ShutdownAgent)."""
        if not self._stopping:
            self._stopping = True
            asyncio.get_running_loop().create_task(self.stop(kill_all), name="agent-stop")

    async def stop(self, kill_all: bool = False) -> None:
        """Stop the agent.

        ``kill_all``: shut every executor down, tell the master the agent is gone and forget
        the checkpoint. Otherwise the agent may restart and recover: the containers of
        checkpointing frameworks keep running, and only the others (which could not be
        recovered) are destroyed.
        """
        self._stopping = True
        if kill_all:
            await self._shutdown_everything()
        else:
            self._apply(self.state.stop_unrecoverable(self.now()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_SHUTDOWN_SLACK):
                    await self.containers.wait_idle()
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        if self._gc_timer is not None:
            self._gc_timer.cancel()
        for checker in list(self._health.values()):
            await checker.stop()
        self._health.clear()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.link.stop()
        if self._zk_detector is not None:
            await self._zk_detector.close()
        self.hub.close_all()
        if self.executor_server is not None:
            await self.executor_server.stop(0.5)
        if self.http is not None:
            await self.http.stop()
        await self.containers.close()
        self.stopped.set()

    async def _shutdown_everything(self) -> None:
        self._apply(self.state.shutdown_all(self.now()))
        grace = max([3.0, *(self.state.shutdown_grace(e) for e in self.state.executors())])
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace + _SHUTDOWN_SLACK):
                while self.containers.containers:
                    await asyncio.sleep(0.05)
        await self.containers.destroy_all()
        if self.link.connected:
            message = agent_internal_pb2.AgentMessage()
            message.unregister_agent.message = "the agent was shut down"
            self.link.send(message)
            await self.link.flush(2.0)
        self.store.clear_agents()

    # -- the master session --

    def _hello(self) -> agent_internal_pb2.AgentMessage:
        if self.state.agent_id is None:
            return self.state.register_message(self.boot_id, VERSION)
        return self.state.reregister_message(self.boot_id, VERSION)

    def _on_session(self, session: Session) -> None:
        reply = session.reply
        now = self.now()
        if reply.HasField("agent_registered"):
            agent_id = reply.agent_registered.agent_id.value
            if self.state.agent_id not in (None, agent_id):
                log.error("The master registered this agent anew as %s", agent_id)
            effects = self.state.registered(agent_id, now)
            log.info("Registered with the master as agent %s (%s)", agent_id, self._protocol())
        else:
            effects = self.state.reregistered(now, reply.agent_reregistered.reconciliations)
            log.info(
                "Reregistered with the master as agent %s (%s)",
                self.state.agent_id,
                self._protocol(),
            )
        self.store.write_agent(self.state.agent_info)
        self.store.write_executor_port(self.executor_port)
        self._apply(effects)

    def _protocol(self) -> str:
        return "ConnectBatched" if self.link.batched else "Connect"

    def _on_lost(self) -> None:
        log.warning("Lost the master; holding status updates until reregistered")
        self._apply(self.state.disconnected())

    def _on_message(self, message: agent_internal_pb2.MasterMessage) -> None:
        kind = message.WhichOneof("payload")
        now = self.now()
        state = self.state
        if kind == "run_task":
            self._apply(state.run_task(message.run_task, now))
        elif kind == "run_task_group":
            self._apply(state.run_task_group(message.run_task_group, now))
        elif kind == "kill_task":
            kill = message.kill_task
            policy = kill.kill_policy if kill.HasField("kill_policy") else None
            self._apply(state.kill_task(kill.framework_id.value, kill.task_id.value, policy, now))
        elif kind == "status_update_acknowledgement":
            ack = message.status_update_acknowledgement
            _, effects = state.acknowledge(ack.framework_id.value, ack.task_id.value, ack.uuid, now)
            self._apply(effects)
        elif kind == "framework_to_executor":
            relay = message.framework_to_executor
            self._apply(
                state.framework_message(
                    relay.framework_id.value, relay.executor_id.value, relay.data
                )
            )
        elif kind == "shutdown_framework":
            self._apply(
                state.shutdown_framework(message.shutdown_framework.framework_id.value, now)
            )
        elif kind == "shutdown_executor":
            down = message.shutdown_executor
            self._apply(
                state.shutdown_executor(down.framework_id.value, down.executor_id.value, now)
            )
        elif kind == "reconcile_tasks":
            reconcile = message.reconcile_tasks
            self._apply(state.reconcile(reconcile.framework_id.value, reconcile.statuses, now))
        elif kind == "update_framework":
            update = message.update_framework
            self._apply(state.update_framework(update.framework_id.value, update.framework_info))
        elif kind == "shutdown_agent":
            log.warning("The master shut this agent down: %s", message.shutdown_agent.message)
            self.request_stop(kill_all=True)
        elif kind == "error":
            log.warning("The master reported an error: %s", message.error.message)
        else:
            log.info("Ignoring a %s message from the master", kind)

    # -- executor API calls (see executor_api.ExecutorCalls) --

    def executor_subscribe(
        self, framework_id: str, executor_id: str, subscribe: executor_pb2.Call.Subscribe
    ) -> None:
        """An executor subscribed."""
        log.info("Executor %s of framework %s subscribed", executor_id, framework_id)
        updates = [u.status for u in subscribe.unacknowledged_updates]
        self._apply(
            self.state.executor_subscribe(
                framework_id, executor_id, list(subscribe.unacknowledged_tasks), updates, self.now()
            )
        )

    def executor_update(
        self, framework_id: str, executor_id: str, status: mesos_pb2.TaskStatus
    ) -> None:
        """An executor sent a status update."""
        self._apply(self.state.executor_update(framework_id, executor_id, status, self.now()))

    def executor_message(self, framework_id: str, executor_id: str, data: bytes) -> None:
        """An executor sent a framework message."""
        self._apply(self.state.executor_message(framework_id, executor_id, data))

    def executor_disconnected(self, framework_id: str, executor_id: str) -> None:
        """An executor's event stream ended."""
        log.info("Executor %s of framework %s disconnected", executor_id, framework_id)
        self._apply(self.state.executor_disconnected(framework_id, executor_id))

    # -- containers --

    def _container_launched(self, container_id: str, container: Container) -> None:
        owner = self.state.container_owner(container_id)
        if owner is not None and owner[0].checkpoint:
            executor, task = owner
            state = container.state().to_dict()
            if task is None:
                self.store.write_container_state(*executor.key, container_id, state)
            else:  # A default executor's task: its container is recorded with the task.
                self.store.write_task_container_state(
                    *executor.key, executor.container_id, task.task_id, state
                )
        self._apply(self.state.container_launched(container_id, self.now()))

    def _container_launch_failed(self, container_id: str, message: str) -> None:
        log.warning("Container %s failed to launch: %s", container_id, message)
        self._envs.pop(container_id, None)
        self._apply(self.state.container_launch_failed(container_id, message, self.now()))

    def _container_exited(self, container_id: str, exit: ContainerExit) -> None:
        self._envs.pop(container_id, None)
        self._apply(self.state.container_exited(container_id, exit, self.now()))

    def _launch(self, effect: LaunchContainer) -> None:
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
                f"127.0.0.1:{self.executor_port}",
                effect.shutdown_grace_period,
                self.config.recovery_timeout,
            )
        env = process_environment(
            effect.command,
            sandbox=sandbox,
            agent_id=self.state.agent_id or "",
            framework_id=effect.framework_id,
            executor_id=effect.executor_id,
            container_id=effect.container_id,
            task_id=effect.task_id,
            checkpoint=effect.checkpoint,
            executor=endpoint,
        )
        self._envs[effect.container_id] = env
        user = effect.user
        if user is not None and os.geteuid() != 0 and user == getpass.getuser():
            user = None  # Already that user: nothing to switch.
        self.containers.launch(
            PreparedLaunch(
                effect.container_id,
                argv,
                shell,
                env,
                sandbox,
                effect.resources,
                user,
                list(effect.command.uris),
            )
        )

    # -- effects --

    def _apply(self, effects: Sequence[Effect]) -> None:
        for effect in effects:
            try:
                self._apply_one(effect)
            except Exception:
                log.exception("Carrying out %s failed", type(effect).__name__)

    def _apply_one(self, effect: Effect) -> None:
        match effect:
            case SetTimer(key, at):
                self._set_timer(key, at)
            case CancelTimer(key):
                handle = self._timers.pop(key, None)
                if handle is not None:
                    handle.cancel()
            case ForwardUpdate(framework_id, executor_id, status, latest):
                self.link.send(status_update_message(framework_id, executor_id, status, latest))
            case AppendUpdateRecord(framework_id, executor_id, container_id, task_id):
                if executor_id is not None and container_id is not None:
                    self.store.append_update(
                        framework_id, executor_id, container_id, task_id, effect.record
                    )
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
                checker = self._health.pop((framework_id, task_id), None)
                if checker is not None:
                    self._spawn(checker.stop(), "health-stop")
            case CheckpointFramework(framework_id, info):
                self.store.write_framework(framework_id, info)
            case CheckpointExecutor(framework_id, executor_id, container_id, info):
                self.store.write_executor(framework_id, executor_id, container_id, info)
            case CheckpointTask(framework_id, executor_id, container_id, info, nested, group):
                self.store.write_task(
                    framework_id,
                    executor_id,
                    container_id,
                    info,
                    nested_container_id=nested,
                    group=group,
                )
            case RemoveExecutorCheckpoint(framework_id, executor_id):
                self.store.remove_executor(framework_id, executor_id)
            case RemoveFrameworkCheckpoint(framework_id):
                self.store.remove_framework(framework_id)
            case ScheduleSandboxGC(framework_id, executor_id, container_id):
                path = self.store.sandbox_path(framework_id, executor_id, container_id)
                self.gc.schedule(path, self.now())
                self._arm_gc()

    def _set_timer(self, key: TimerKey, at: float) -> None:
        handle = self._timers.pop(key, None)
        if handle is not None:
            handle.cancel()
        delay = max(0.0, at - self.now())
        self._timers[key] = asyncio.get_running_loop().call_later(delay, self._fire, key)

    def _fire(self, key: TimerKey) -> None:
        self._timers.pop(key, None)
        self._apply(self.state.on_timer(key, self.now()))

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- health checks --

    def _start_health_check(self, effect: StartHealthCheck) -> None:
        key = (effect.framework_id, effect.task_id)
        if key in self._health:
            return
        if effect.executor_id is not None and effect.parent_container_id is not None:
            sandbox = self.store.task_sandbox_path(
                effect.framework_id, effect.executor_id, effect.parent_container_id, effect.task_id
            )
        else:  # A command task: its executor id is its task id.
            sandbox = self.store.sandbox_path(
                effect.framework_id, effect.task_id, effect.container_id
            )
        env = self._envs.get(effect.container_id, {"PATH": os.environ.get("PATH", "")})

        def changed(healthy: bool) -> None:
            self._apply(self.state.health_changed(*key, healthy, self.now()))

        def kill(reason: str) -> None:
            log.warning("Task %s failed its health checks: %s", effect.task_id, reason)
            self._apply(self.state.health_failed(*key, self.now()))

        try:
            checker = HealthChecker(effect.check, env, sandbox, changed, kill)
        except ValueError as error:
            log.warning("Task %s: health check not started: %s", effect.task_id, error)
            return
        self._health[key] = checker
        checker.start()

    # -- sandbox garbage collection --

    def _agent_sandboxes(self) -> Path | None:
        agent_id = self.state.agent_id
        return paths.sandbox_root(self.config.work_dir) / agent_id if agent_id else None

    def _arm_gc(self) -> None:
        if self._gc_timer is not None:
            self._gc_timer.cancel()
            self._gc_timer = None
        due = self.gc.next_due_at()
        if due is not None and not self._stopping:
            delay = max(0.0, due - self.now())
            self._gc_timer = asyncio.get_running_loop().call_later(delay, self._collect)

    def _collect(self) -> None:
        self._gc_timer = None
        for path in self.gc.due(self.now()):
            self._spawn(self._remove_sandbox(path), "sandbox-gc")
        self._arm_gc()

    async def _remove_sandbox(self, path: Path) -> None:
        try:
            await remove_sandbox(path, self.config.work_dir)
        except (OSError, ValueError) as error:
            log.warning("Could not remove sandbox %s: %s", path, error)

    def _schedule_old_sandboxes(self) -> None:
        """Schedule the sandboxes of runs that are over (from before a restart) for removal."""
        live = {e.container_id for e in self.state.executors()}
        root = paths.sandbox_root(self.config.work_dir)
        for run in root.glob("*/frameworks/*/executors/*/runs/*"):
            if run.name == paths.LATEST or run.is_symlink() or run.name in live:
                continue
            with contextlib.suppress(OSError):
                self.gc.schedule(run, run.stat().st_mtime)
        self._arm_gc()

    async def _watch_disk(self) -> None:
        while True:
            try:
                usage = shutil.disk_usage(self.config.work_dir)
                self.gc.prune_for_disk(usage.used / usage.total, self.config.gc_disk_headroom)
                self._collect()
            except (OSError, ValueError) as error:
                log.warning("Disk usage of %s unknown: %s", self.config.work_dir, error)
            await asyncio.sleep(self.config.disk_watch_interval)
