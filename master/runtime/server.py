"""MasterServer: a running master (registry, state machine, gRPC server), and ``run``.

``await MasterServer(config).start()`` binds the port, loads the registry, recovers the state
machine from it and starts serving; ``address`` is then ``host:port``. With ``http_port`` set it
also serves the HTTP API (:mod:`master.http`) on the same host, in the same loop, at
``http_address``; the API sees the master only through a read-only
:class:`~master.http.MasterView`. ``await stop()`` closes every stream, stops the servers
gracefully and waits for pending registry writes. ``run(config)`` is what ``python -m master``
and ``emporion master`` execute: it prints one line with the addresses (``Emporion master <id>
listening on HOST:PORT (http HOST:HTTPPORT)``, without the parenthesis when HTTP is off) and
serves until SIGINT or SIGTERM.

With ``--zk`` the master serves from the start but leads only once elected
(:mod:`master.runtime.election`): until then, and whenever it loses the lead, its
:class:`~master.runtime.services.Gate` holds no runtime and every call is refused with
``UNAVAILABLE`` naming the leader, and its HTTP API redirects leader-only requests to the
leader's ``http_address`` (published in the candidate znode). Each election (each *term*)
loads the ZooKeeper registry and builds a fresh state machine that recovers from it, as a
restarted master does. Losing the lead (ZooKeeper connection suspended or session lost) or a
failed registry write (deposed: the fence refused it) stops it acting at once: timers stop,
every stream closes (clients reconnect to the new leader), the state machine is dropped. After
a failed write it gives up its candidacy and contends again from the back of the line. Stopping
withdraws the candidacy, so the next master leads within a ZooKeeper round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import logging
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from grpc import aio

from master.auth import MasterSecurity, PermissionDeniedError
from master.auth.http import CURRENT_PRINCIPAL, BasicAuthMiddleware
from master.auth.view import ViewAcls
from master.config import MasterConfig
from master.core import Effect, IdGenerator, Master, make_master_info
from master.http import MasterHttpServer, NotLeadingError, create_app
from master.http.operator import config_flags
from master.http.operator.parse import OperatorCallError
from master.http.scheduler_api.codec import ApiError
from master.registry import (
    FileRegistry,
    MemoryRegistry,
    Registry,
    RegistryError,
    RegistryState,
)
from master.runtime.discovery import add_discovery
from master.runtime.driver import MasterRuntime
from master.runtime.election import ZooKeeperElection
from master.runtime.gateways import GatewayPool
from master.runtime.heap import keep_heap_frozen
from master.runtime.outbox import Outbox
from master.runtime.registration import add_tolerant, check_port_free, keepalive_options
from master.runtime.services import AgentGatewayService, Gate, SchedulerService
from protos.leader_info import Leadership, format_address, master_info_json
from protos.limits import GRPC_MESSAGE_OPTIONS
from protos.security import SecurityConfigError
from protos.v1 import agent_internal_pb2_grpc, mesos_pb2, scheduler_pb2, scheduler_pb2_grpc

__all__ = ["GRPC_OPTIONS", "MasterServer", "run", "serve"]

log = logging.getLogger("master")

GRPC_OPTIONS = [*GRPC_MESSAGE_OPTIONS, ("grpc.so_reuseport", 0)]
"""The one message limit of every Emporion process (:mod:`protos.limits`); ports are never
shared."""

_RECONTEND_PAUSE = 0.5
"""Seconds between a failed registry write and contending again (no hot loop if it persists)."""

_WARM_INTERVAL = 5.0
"""Seconds between a standby's loads of the registry (each one ZooKeeper read while the
registry is unchanged; a decode of the new document when it changed), so that once elected its
load answers from what it already decoded. Rare enough that a standby following a busy
registry spends little CPU on it."""

_ElectionEvent = Leadership | BaseException


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("emporion")
    except metadata.PackageNotFoundError:
        return "0+unknown"


class _HttpView:
    """The read-only face of a MasterServer that its HTTP API sees (a MasterView)."""

    def __init__(self, server: MasterServer) -> None:
        self._server = server

    @property
    def master_id(self) -> str:
        return self._server.master_id

    @property
    def version(self) -> str:
        return self._server.version

    @property
    def start_time(self) -> float:
        return self._server.start_time

    @property
    def elected_time(self) -> float | None:
        return self._server.elected_time

    def leading_master(self) -> Master | None:
        return self._server.core if self._server.leading else None

    def leader_http_address(self) -> str | None:
        return self._server.leader_http_address()


class MasterServer:
    """MasterServer is one master process's machinery (see the module docstring)."""

    def __init__(self, config: MasterConfig, registry: Registry | None = None) -> None:
        self.config = config
        if registry is None and config.zk is None:
            if config.registry == "file":
                assert config.work_dir is not None  # MasterConfig checks it.
                registry = FileRegistry(config.work_dir)
            elif config.registry == "memory":
                registry = MemoryRegistry()
        self._registry = registry
        self.ids = IdGenerator()
        self.address = ""
        self.port = 0
        self.version = _version()
        self.start_time = time.time()
        """When this master was created (seconds since the epoch)."""
        self.elected_time: float | None = None
        """When this master last took the lead."""
        self.http: MasterHttpServer | None = None
        self.http_address: str | None = None
        """``host:port`` the HTTP API is bound to (None while it serves none)."""
        self.advertised_http_address: str | None = None
        """The HTTP API's address as others should reach it (``--hostname`` or the host)."""
        self.gateways: GatewayPool | None = None
        self.agent_address: str | None = None
        """Where agents connect through the gateways (``--agent-gateways``), or None."""
        self.failed: BaseException | None = None
        self.election: ZooKeeperElection | None = None
        self.gate = Gate()
        self.security = MasterSecurity(config)
        """TLS, credentials and ACLs (files read now: a bad one fails the construction)."""
        self.gate.security = self.security
        self.terms = 0
        """How many times this master took the lead (1 for a standalone master)."""
        self._server: aio.Server | None = None
        self._stopped = asyncio.Event()
        self._info: mesos_pb2.MasterInfo | None = None
        self._events: asyncio.Queue[_ElectionEvent] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._pump_task: asyncio.Task[None] | None = None
        self.core: Master | None = None
        self.runtime: MasterRuntime | None = None
        self.outbox: Outbox | None = None

    @property
    def master_id(self) -> str:
        """This master's id."""
        return self.ids.master_id

    @property
    def registry(self) -> Registry:
        """The registry this master reads at election and writes while leading."""
        if self.election is not None and self._registry is None:
            return self.election.registry
        assert self._registry is not None, "start() first"
        return self._registry

    @property
    def leading(self) -> bool:
        """Whether this master serves as the leader right now."""
        return self.runtime is not None

    async def start(self) -> str:
        """Bind and serve; returns ``host:port``. A standalone master loads the registry and
        recovers first; one under ``--zk`` serves refusals until elected.

        Raises RegistryError if the registry cannot be read, OSError if a port (gRPC or HTTP)
        cannot be bound.
        """
        config = self.config
        loop = asyncio.get_running_loop()
        recovered = None
        if config.zk is None:
            recovered = await loop.run_in_executor(None, self.registry.load)
            self.gate.taking_lead()  # A standalone master leads once started: its gateways wait.
        keepalive = keepalive_options(config.agent_ping_timeout)
        server = aio.server(options=[*GRPC_OPTIONS, *keepalive])
        host = config.host
        bind_host = f"[{host}]" if ":" in host else host
        check_port_free(host, config.port)
        try:
            tls = self.security.tls
            port = (
                server.add_secure_port(f"{bind_host}:{config.port}", tls.server_credentials())
                if tls is not None
                else server.add_insecure_port(f"{bind_host}:{config.port}")
            )
        except RuntimeError:  # grpcio >= 1.60 raises where older ones returned 0
            port = 0
        if port == 0:
            raise OSError(
                f"cannot serve gRPC on {host}:{config.port} (--port): the port is in use,"
                " or the address is not one of this host's"
            )
        self.port = port
        self.address = f"{bind_host}:{port}"
        self._info = make_master_info(
            self.ids.master_id, config.hostname or config.host, port, self.version
        )
        if config.http_port is not None:
            app = create_app(
                _HttpView(self),
                operate=self._operate,
                flags=config_flags(config),
                scheduler=lambda: self.gate.runtime,
                views=ViewAcls(self.security.acls),
            )
            if config.acls is not None:
                app.state.operator.authorize = self._authorize_operator
            app.state.scheduler_guard = self._guard_scheduler_call
            self.http = MasterHttpServer(
                host,
                config.http_port,
                BasicAuthMiddleware(
                    app, self.security, lambda: self.core if self.leading else None
                ),
                tls=self.security.tls,
            )
            self.http_address = f"{bind_host}:{self.http.port}"
            self.advertised_http_address = format_address(
                config.hostname or config.host, self.http.port
            )
        add_tolerant(
            scheduler_pb2_grpc.add_SchedulerServicer_to_server, SchedulerService(self.gate), server
        )
        add_tolerant(
            agent_internal_pb2_grpc.add_AgentGatewayServicer_to_server,
            AgentGatewayService(self.gate),
            server,
        )
        if config.agent_gateways:
            self.gateways = GatewayPool(config, self.gate)
            agent_port = await self.gateways.start()
            self.agent_address = format_address(config.hostname or config.host, agent_port)
        add_discovery(
            server,
            master_info_json(
                self._published_info(),
                grpc_address=format_address(config.hostname or config.host, port),
                http_address=self.advertised_http_address,
                scheme=self.security.scheme,
                agent_address=self.agent_address,
            ),
        )
        if recovered is not None:
            self._lead(recovered)
            self.gate.settled()
        await server.start()
        self._server = server
        if self.http is not None:
            self.http.start()
        if config.zk is not None:
            grpc_address = format_address(config.hostname or config.host, port)
            self.election = ZooKeeperElection(
                config.zk,
                master_info_json(
                    self._published_info(),
                    grpc_address=grpc_address,
                    http_address=self.advertised_http_address,
                    scheme=self.security.scheme,
                    agent_address=self.agent_address,
                ),
                grpc_address=grpc_address,
                session_timeout=config.zk_session_timeout,
            )
            self.gate.leader = self.election.leader_address
            self.election.start()
            self._pump_task = loop.create_task(self._pump(), name="leadership pump")
            self._tasks = [
                loop.create_task(self._follow(), name="leadership"),
                loop.create_task(self._keep_registry_warm(), name="registry warming"),
            ]
            log.info("master %s on %s contending under %s", self.master_id, self.address, config.zk)
        else:
            log.info("master %s serving on %s", self.ids.master_id, self.address)
        return self.address

    def _published_info(self) -> mesos_pb2.MasterInfo:
        """The MasterInfo this master publishes (candidate znode, discovery): with HTTP served,
        ``port``, ``address`` (with ``ip``) and ``pid`` name the HTTP port, as a Mesos master's
        name its only port, so Mesos clients given ``zk://`` (pymesos reads ``address.ip`` and
        ``address.port``) talk HTTP to it; Emporion's SDK and agents read ``grpc_address``."""
        assert self._info is not None
        http = self.http
        if http is None:
            return self._info
        info = mesos_pb2.MasterInfo()
        info.CopyFrom(self._info)
        host = info.hostname
        info.port = info.address.port = http.port
        info.pid = f"master@{host}:{http.port}"
        if not info.address.ip:
            try:
                packed = socket.inet_aton(socket.gethostbyname(host))
            except OSError:
                return info  # Unresolvable here: Mesos clients get the hostname only.
            info.address.ip = socket.inet_ntoa(packed)
            info.ip = int.from_bytes(packed, "little")  # Network order read natively (Mesos).
        return info

    # -- leading --------------------------------------------------------------------------------

    def _lead(self, recovered: RegistryState) -> None:
        """Build a fresh state machine from ``recovered`` and serve with it."""
        config = self.config
        assert self._info is not None
        core = Master(config, ids=self.ids, master_info=self._info)
        outbox = Outbox(self.registry, lambda error: self._write_failed(outbox, error))
        runtime = MasterRuntime(
            core,
            outbox,
            allocation_interval=config.allocation_interval,
            allocation_delay=config.allocation_delay,
        )
        runtime.apply(core.recover(recovered, time.time()))
        runtime.start()
        self.core, self.outbox, self.runtime = core, outbox, runtime
        self.gate.runtime = runtime
        self.terms += 1
        self.elected_time = time.time()

    def _authorize_operator(self, kind: str, payload: Mapping[str, Any], master: Master) -> None:
        """The ACL check of an operator call, for the principal of the HTTP request."""
        try:
            self.security.check_operator(CURRENT_PRINCIPAL.get(), kind, payload, master)
        except PermissionDeniedError as denied:
            raise OperatorCallError(403, str(denied)) from None

    def _guard_scheduler_call(self, call: scheduler_pb2.Call, master: Master) -> None:
        """The checks of the gRPC edge (:mod:`master.auth`) for a scheduler HTTP API call, by
        the principal of the HTTP request (basic authentication, see the middleware)."""
        principal = CURRENT_PRINCIPAL.get()
        try:
            if call.type == scheduler_pb2.Call.SUBSCRIBE:
                framework_id = call.framework_id.value or call.subscribe.framework_info.id.value
                known = master.framework(framework_id) if framework_id else None
                self.security.check_subscribe(
                    principal, call, None if known is None else known.info
                )
                if principal is not None:
                    call.subscribe.framework_info.principal = principal
            else:
                known = master.framework(call.framework_id.value)
                self.security.check_call(principal, call, None if known is None else known.info)
        except PermissionDeniedError as denied:
            raise ApiError(403, str(denied)) from None

    def _operate(self, action: Callable[[Master, float], list[Effect]]) -> None:
        """Run an operator's steering input on the runtime (NotLeadingError if not leading, or
        stopping)."""
        if self.runtime is None or self.gate.runtime is None:
            raise NotLeadingError
        self.runtime.operate(action)

    def leader_http_address(self) -> str | None:
        """The leading master's HTTP address: this one's while leading, the leader's (as the
        election last saw it) while following; None if none is known or it serves no HTTP."""
        if self.leading:
            return self.advertised_http_address
        election = self.election
        leader = election.detector.leader if election is not None else None
        if leader is None or election is None or leader.grpc_address == election.grpc_address:
            return None  # None known, or ourselves while not serving (between terms).
        return leader.http_address

    def _step_down(self, reason: str) -> None:
        """Stop acting at once: no new calls, timers stopped, every stream closed, the state
        machine dropped (its state is soft: the registry is the truth)."""
        if self.election is not None:
            self.election.unpin_fence()
        runtime, outbox = self.runtime, self.outbox
        self.gate.runtime = None
        self.core = self.runtime = self.outbox = None
        if runtime is None:
            return
        log.warning("master %s stepped down: %s", self.master_id, reason)
        runtime.stop()
        if outbox is not None:
            outbox.close_all()

    async def _pump(self) -> None:
        """Copy the current contender's changes of role into the event queue (restarted with
        each new candidacy)."""
        assert self.election is not None
        leadership = self.election.leadership
        while True:
            self._events.put_nowait(await leadership.next())

    async def _recontend(self) -> None:
        """Give up the candidacy and contend again with a new one."""
        assert self.election is not None
        if self._pump_task is not None:
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump_task
        # Changes of the old candidacy still queued are stale: the new one starts not leading.
        while not self._events.empty():
            self._events.get_nowait()
        await self.election.recontend()
        self._pump_task = asyncio.get_running_loop().create_task(
            self._pump(), name="leadership pump"
        )

    async def _follow(self) -> None:
        """Follow the election: lead when elected, step down when not, one change at a time."""
        election = self.election
        assert election is not None
        loop = asyncio.get_running_loop()
        while True:
            event = await self._events.get()
            if isinstance(event, BaseException):
                # A registry write failed: deposed, or the write's outcome is unknown. Give up
                # the candidacy, so another master (or this one, from a fresh load) leads.
                self._step_down(f"registry write failed: {event}")
                await asyncio.sleep(_RECONTEND_PAUSE)
                await self._recontend()
                continue
            if not event.leading:
                self._step_down(event.reason)
                continue
            self._step_down(f"new term {event.term}")  # A new term is a fresh election.
            election.pin_fence()
            self.gate.taking_lead()
            try:
                try:
                    recovered = await loop.run_in_executor(None, election.registry.load)
                except RegistryError as error:
                    log.error("elected, but the registry cannot be read: %s", error)
                    self._events.put_nowait(error)
                    continue
                if not election.contender.leading:
                    continue  # Lost meanwhile: its change is queued.
                log.info("master %s elected (term %d): leading", self.master_id, event.term)
                self._lead(recovered)
            finally:
                self.gate.settled()

    async def _keep_registry_warm(self) -> None:
        """While following, load the registry now and then, so that an election's load finds
        the document already decoded (see :mod:`master.registry.zookeeper`, warm loads)."""
        election = self.election
        assert election is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self.leading and not election.contender.leading:
                try:
                    await loop.run_in_executor(None, election.registry.load)
                except RegistryError as error:
                    log.debug("standby registry load failed (ZooKeeper unreachable?): %s", error)
            await asyncio.sleep(_WARM_INTERVAL)

    def _write_failed(self, outbox: Outbox, error: BaseException) -> None:
        """A registry write of ``outbox`` failed: a standalone master stops; one under
        ``--zk`` steps down at once (if that outbox is still its own) and contends again."""
        if self.config.zk is None:
            self._fatal(error)
            return
        if outbox is not self.outbox:
            log.info("a write of an earlier term failed, as it should: %s", error)
            return
        self._step_down(f"registry write failed: {error}")
        self._events.put_nowait(error)

    def _fatal(self, error: BaseException) -> None:
        self.failed = error
        self._stopped.set()

    def request_stop(self) -> None:
        """Ask :meth:`wait` to return (signal handlers call this)."""
        self._stopped.set()

    async def wait(self) -> None:
        """Until a stop is requested or the master failed."""
        await self._stopped.wait()

    async def stop(self, grace: float = 1.0) -> None:
        """Close every stream, stop serving (within ``grace`` seconds), flush the registry;
        under ``--zk``, then withdraw the candidacy so the next master leads at once."""
        tasks = [*self._tasks, *([self._pump_task] if self._pump_task is not None else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks, self._pump_task = [], None
        outbox = self.outbox
        if self.runtime is not None:
            self.runtime.stop()
        self.gate.runtime = None
        if outbox is not None:
            # Before the HTTP server stops: the scheduler API's event streams end with their
            # channels, instead of being cancelled by uvicorn after its grace period.
            outbox.close_all()
        if self.gateways is not None:
            await self.gateways.stop()
            self.gateways = None
        if self.http is not None:
            await self.http.stop()
            self.http = None
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
        if outbox is not None and self.failed is None:
            with contextlib.suppress(RegistryError):
                await outbox.flush()
        if self.election is not None:
            await self.election.close()
            self.election = None
        self._stopped.set()


async def serve(config: MasterConfig) -> int:
    """Run a master until SIGINT/SIGTERM; print its address first. Exit status."""
    try:
        server = MasterServer(config)
    except SecurityConfigError as error:  # A credentials, ACL or TLS file it cannot use.
        print(f"emporion master: {error}", file=sys.stderr)
        return 2
    try:
        address = await server.start()
    except (RegistryError, OSError) as error:
        # Something a person must fix (a port in use, a work dir it may not write): one line,
        # exit status 2, as for a bad flag.
        print(f"emporion master: {error}", file=sys.stderr)
        return 2
    loop = asyncio.get_running_loop()
    # Handlers first: whoever reads the line below may stop the master at once, and cleanly.
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, server.request_stop)
    http = f" (http {server.http_address})" if server.http_address is not None else ""
    if server.agent_address is not None:
        http += f" (agents {server.agent_address})"
    print(f"Emporion master {server.master_id} listening on {address}{http}", flush=True)
    heap = loop.create_task(keep_heap_frozen(), name="heap")
    try:
        await server.wait()
    finally:
        heap.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await server.stop()
    if server.failed is not None:
        print(f"emporion master: stopped: {server.failed}", file=sys.stderr)
        return 1
    return 0


def run(config: MasterConfig) -> int:
    """Set up logging (and profiling if asked), then :func:`serve`; the exit status."""
    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    profiler = cProfile.Profile() if config.profile is not None else None
    if profiler is not None:
        profiler.enable()
    try:
        return asyncio.run(serve(config))
    finally:
        if profiler is not None and config.profile is not None:
            profiler.disable()
            profiler.dump_stats(config.profile)
            log.info("profile written to %s", config.profile)
