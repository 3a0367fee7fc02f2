"""AgentRuntime: the asyncio shell around the agent's core — the only code that mutates its state.

Everything that happens (a master message, a container's launch or exit, an executor call, a
timer, a health check) becomes a typed event (:mod:`agent.core.events`) handed to
:func:`agent.core.handle`, one at a time; the effects it returns are carried out, in order, by
the :class:`~agent.runtime.outbox.Outbox`. Events that carrying out effects produces (a timer
set to fire at once, a container that could not be prepared) are queued and handled after.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections import deque
from pathlib import Path
from typing import Any

from grpc import aio

from agent.checkpoint import CheckpointStore, paths, read_host_boot_id
from agent.config import AgentConfig, ZkMaster
from agent.core import (
    AgentState,
    ContainerExit,
    CoreSettings,
    InvalidCall,
    RecoveryPlan,
    RegistrationBackoff,
    RetrySchedule,
    UnknownTarget,
    handle,
    hello_message,
    plan_recovery,
)
from agent.core.events import (
    AgentStopping,
    ContainerExited,
    ContainerLaunched,
    ContainerLaunchFailed,
    ContainerNeverStarted,
    ContainerRecovered,
    Disconnected,
    Event,
    ExecutorDisconnected,
    ExecutorMessage,
    ExecutorSubscribed,
    ExecutorUpdate,
    MasterMessageReceived,
    RecoverFromCheckpoint,
    RecoveryDone,
)
from agent.gc import SandboxGC, remove_sandbox
from agent.isolation import Container, Isolation
from agent.isolation.users import UserPolicy
from agent.resources_detect import detect_resources, merge_resources
from agent.runtime.containers import CANCELLED_LAUNCH, ContainerManager, NeverStarted
from agent.runtime.executor_api import (
    HEARTBEAT_INTERVAL,
    ExecutorHub,
    ExecutorService,
    Subscription,
    start_executor_server,
)
from agent.runtime.executor_http import executor_http_router
from agent.runtime.http import AgentHttpSecurity, AgentHttpServer, sandbox_roots
from agent.runtime.master_link import MasterDetector, MasterLink, Session, fixed_master
from agent.runtime.metrics_snapshot import metrics_snapshot_router
from agent.runtime.outbox import Outbox
from agent.runtime.prometheus import agent_metrics_router
from agent.runtime.state_view import AgentIdentity, state_json
from protos.mesos_json import flags_json
from protos.security import TlsConfig, load_credential
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
            max_concurrent=config.max_concurrent_launches or None,
            users=UserPolicy(config.switch_user, config.allow_root_tasks),
            readonly_dirs=(config.work_dir,),
            disk_watch_interval=(
                config.container_disk_watch_interval
                if config.enforce_container_disk_quota
                else None
            ),
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
            tls=(
                TlsConfig(config.tls_cert, config.tls_key, config.tls_ca)
                if config.tls_ca is not None
                else None
            ),
            credential=(
                load_credential(config.credential) if config.credential is not None else None
            ),
        )
        self.http: AgentHttpServer | None = None
        self.executor_server: aio.Server | None = None
        self.executor_port = 0
        self.stopped = asyncio.Event()
        self.recovery_plan: RecoveryPlan | None = None
        self.outbox = Outbox(
            store=self.store,
            link=self.link,
            hub=self.hub,
            containers=self.containers,
            gc=self.gc,
            feed=self.feed,
            now=self.now,
            agent_id=lambda: self.state.agent_id,
            executor_port=lambda: self.executor_port,
            recovery_timeout=config.recovery_timeout,
            http_endpoint=self._http_endpoint,
            on_gc_scheduled=self._arm_gc,
            on_stop=lambda message: self.request_stop(kill_all=True),
        )
        self._inbox: deque[Event] = deque()
        self._feeding = False
        self._gc_timer: asyncio.TimerHandle | None = None
        self._stopping = False

    def _http_endpoint(self) -> str | None:
        """host:port where an executor on this host reaches the HTTP API (executor API)."""
        if self.http is None:
            return None
        host = self.config.ip
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        return f"[{host}]:{self.http.port}" if ":" in host else f"{host}:{self.http.port}"

    @staticmethod
    def now() -> float:
        """Wall-clock seconds (task status timestamps are epoch seconds, as in Mesos)."""
        return time.time()

    # -- events --

    def feed(self, event: Event) -> None:
        """Hand ``event`` to the core and carry out its effects.

        Raises the core's refusal of an executor call (InvalidCall, UnknownTarget) to the
        caller, which answers that executor. Events produced while effects are carried out
        are queued and handled, in order, once those effects are done.
        """
        if self._feeding:
            self._inbox.append(event)
            return
        self._feeding = True
        try:
            self.outbox.apply(handle(self.state, event, self.now()))
            while self._inbox:
                queued = self._inbox.popleft()
                try:
                    self.outbox.apply(handle(self.state, queued, self.now()))
                except (InvalidCall, UnknownTarget) as error:
                    log.warning("The core refused %s: %s", type(queued).__name__, error)
        finally:
            self._feeding = False

    # -- start and stop --

    async def start(self) -> None:
        """Recover, start the executor API and HTTP servers, then connect to the master."""
        recovered = self._recover()
        ports = [self.config.executor_port]
        if self.config.executor_port == 0 and self.recovery_plan is RecoveryPlan.RECOVER:
            # Executors were told this port: they can only come back if it is the same.
            previous = self.store.read_executor_port()
            ports = [previous, 0] if previous else [0]
        identity = AgentIdentity(
            version=VERSION,
            start_time=self.now(),
            flags=flags_json(self.config),
            sandbox=self.store.sandbox_path,
        )
        service = ExecutorService(self, self.hub)
        self.executor_server, self.executor_port = await start_executor_server(service, ports)
        self.http = AgentHttpServer(
            self.config.ip,
            self.config.port,
            lambda: sandbox_roots(self._agent_sandboxes()),
            lambda: state_json(self.state, self.executor_port, self.link.connected, identity),
            [
                agent_metrics_router(lambda: self.containers.containers, self.state.containers.get),
                metrics_snapshot_router(
                    lambda: self.state, lambda: self.link.connected, identity.start_time
                ),
                executor_http_router(self, Subscription(self, self.hub, HEARTBEAT_INTERVAL)),
            ],
            tls=(
                (self.config.tls_cert, self.config.tls_key)
                if self.config.tls_cert is not None and self.config.tls_key is not None
                else None
            ),
            client_ca=self.config.tls_ca if self.config.tls_require_client_cert else None,
            security=AgentHttpSecurity.from_config(self.config, self.state.framework_user),
        )
        self.http.start()
        self.state.agent_info.port = self.http.port
        for container_id, exit in recovered:
            if exit is None:
                self.feed(ContainerRecovered(container_id))
                self._limit_recovered_disk(container_id)
            elif isinstance(exit, NeverStarted):
                log.info("Container %s: %s", container_id, exit.message)
                self.feed(ContainerNeverStarted(container_id, exit.message))
            else:
                self.feed(ContainerExited(container_id, exit))
        self.feed(RecoveryDone())
        self._schedule_old_sandboxes()
        self.outbox.spawn(self._watch_disk(), "disk-watch")
        self.link.start()

    def _limit_recovered_disk(self, container_id: str) -> None:
        """Measure a recovered container's sandbox against its ``disk`` again (the core has
        its resources: a nested container's task's, else the executor's with its tasks)."""
        owner = self.state.container_owner(container_id)
        if owner is not None:
            executor, task = owner
            resources = task.resources if task is not None else executor.container_resources()
            self.containers.limit_disk(container_id, resources)

    def _recover(self) -> list[tuple[str, ContainerExit | NeverStarted | None]]:
        checkpoint = self.store.read()
        plan = plan_recovery(
            checkpoint.boot_id, self.boot_id, checkpoint.agent is not None, self.config.recover
        )
        self.recovery_plan = plan
        log.info("Recovery: %s", plan.value)
        recovered: list[tuple[str, ContainerExit | NeverStarted | None]] = []
        if plan is RecoveryPlan.RECOVER:
            assert checkpoint.agent is not None
            # Each LookForContainer effect reattaches to one container (see Outbox).
            self.feed(RecoverFromCheckpoint(checkpoint.agent))
            recovered, self.outbox.recovered = self.outbox.recovered, []
            # Only containers found running are kept (those the agent died before recording
            # were adopted if their launch helper had been spawned); any other is an orphan,
            # and is destroyed with the others.
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
            self.feed(AgentStopping(kill_all=False))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_SHUTDOWN_SLACK):
                    await self.containers.wait_idle()
        self.outbox.cancel_timers()
        if self._gc_timer is not None:
            self._gc_timer.cancel()
        await self.outbox.stop_health_checks()
        for task in list(self.outbox.background):
            task.cancel()
        await asyncio.gather(*self.outbox.background, return_exceptions=True)
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
        self.feed(AgentStopping(kill_all=True))
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
        return hello_message(self.state, self.boot_id, VERSION)

    def _on_session(self, session: Session) -> None:
        self.feed(MasterMessageReceived(session.reply))
        verb = "Registered" if session.reply.HasField("agent_registered") else "Reregistered"
        log.info("%s with the master as agent %s (%s)", verb, self.state.agent_id, self._protocol())

    def _protocol(self) -> str:
        return "ConnectBatched" if self.link.batched else "Connect"

    def _on_lost(self) -> None:
        log.warning("Lost the master; holding status updates until reregistered")
        self.feed(Disconnected())

    def _on_message(self, message: agent_internal_pb2.MasterMessage) -> None:
        self.feed(MasterMessageReceived(message))

    # -- executor API calls (see executor_api.ExecutorCalls) --

    def executor_subscribe(
        self, framework_id: str, executor_id: str, subscribe: executor_pb2.Call.Subscribe
    ) -> None:
        """An executor subscribed."""
        log.info("Executor %s of framework %s subscribed", executor_id, framework_id)
        self.feed(ExecutorSubscribed(framework_id, executor_id, subscribe))

    def executor_update(
        self, framework_id: str, executor_id: str, status: mesos_pb2.TaskStatus
    ) -> None:
        """An executor sent a status update."""
        self.feed(ExecutorUpdate(framework_id, executor_id, status))

    def executor_message(self, framework_id: str, executor_id: str, data: bytes) -> None:
        """An executor sent a framework message."""
        self.feed(ExecutorMessage(framework_id, executor_id, data))

    def executor_disconnected(self, framework_id: str, executor_id: str) -> None:
        """An executor's event stream ended."""
        log.info("Executor %s of framework %s disconnected", executor_id, framework_id)
        self.feed(ExecutorDisconnected(framework_id, executor_id))

    # -- containers --

    def _container_launched(self, container_id: str, container: Container) -> None:
        self.feed(ContainerLaunched(container_id, container.state().to_dict()))

    def _container_launch_failed(self, container_id: str, message: str) -> None:
        if message == CANCELLED_LAUNCH:  # Killed while queued: thousands at a teardown.
            log.debug("Container %s: %s", container_id, message)
        else:
            log.warning("Container %s failed to launch: %s", container_id, message)
        self.outbox.envs.pop(container_id, None)
        self.feed(ContainerLaunchFailed(container_id, message))

    def _container_exited(self, container_id: str, exit: ContainerExit) -> None:
        self.outbox.envs.pop(container_id, None)
        self.feed(ContainerExited(container_id, exit))

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
            self.outbox.spawn(self._remove_sandbox(path), "sandbox-gc")
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
