"""MasterServer: a running master (registry, state machine, gRPC server), and ``run``.

``await MasterServer(config).start()`` binds the port, loads the registry, recovers the state
machine from it and starts serving; ``address`` is then ``host:port``. ``await stop()`` closes
every stream, stops the server gracefully and waits for pending registry writes. ``run(config)``
is what ``python -m master`` and ``emporion master`` execute: it prints one line with the address
(``Emporion master <id> listening on HOST:PORT``) and serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import cProfile
import logging
import signal
import sys
import time

from grpc import aio

from master.config import MasterConfig
from master.core import IdGenerator, Master, make_master_info
from master.registry import FileRegistry, MemoryRegistry, Registry, RegistryError
from master.runtime.driver import MasterRuntime
from master.runtime.outbox import Outbox
from master.runtime.services import AgentGatewayService, SchedulerService
from protos.v1 import agent_internal_pb2_grpc, scheduler_pb2_grpc

__all__ = ["GRPC_OPTIONS", "MasterServer", "run", "serve"]

log = logging.getLogger("master")

GRPC_OPTIONS = [
    ("grpc.max_send_message_length", 256 * 1024 * 1024),
    ("grpc.max_receive_message_length", 256 * 1024 * 1024),
    ("grpc.so_reuseport", 0),
]
"""Large messages are fine (an OFFERS event to a big framework); ports are never shared."""


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("emporion")
    except metadata.PackageNotFoundError:
        return "0+unknown"


class MasterServer:
    """MasterServer is one master process's machinery (see the module docstring)."""

    def __init__(self, config: MasterConfig, registry: Registry | None = None) -> None:
        self.config = config
        if registry is None:
            if config.registry == "file":
                assert config.work_dir is not None  # MasterConfig checks it.
                registry = FileRegistry(config.work_dir)
            else:
                registry = MemoryRegistry()
        self.registry = registry
        self.ids = IdGenerator()
        self.address = ""
        self.port = 0
        self.failed: BaseException | None = None
        self._server: aio.Server | None = None
        self._stopped = asyncio.Event()
        self.core: Master | None = None
        self.runtime: MasterRuntime | None = None
        self.outbox: Outbox | None = None

    @property
    def master_id(self) -> str:
        """This master's id."""
        return self.ids.master_id

    async def start(self) -> str:
        """Load the registry, bind, recover and serve; returns ``host:port``.

        Raises RegistryError if the registry cannot be read, OSError if the port cannot be bound.
        """
        config = self.config
        loop = asyncio.get_running_loop()
        recovered = await loop.run_in_executor(None, self.registry.load)
        server = aio.server(options=GRPC_OPTIONS)
        host = config.host
        bind_host = f"[{host}]" if ":" in host else host
        port = server.add_insecure_port(f"{bind_host}:{config.port}")
        if port == 0:
            raise OSError(f"cannot bind {host}:{config.port}")
        self.port = port
        self.address = f"{bind_host}:{port}"
        info = make_master_info(
            self.ids.master_id, config.hostname or config.host, port, _version()
        )
        self.core = Master(config, ids=self.ids, master_info=info)
        self.outbox = Outbox(self.registry, self._fatal)
        self.runtime = MasterRuntime(
            self.core,
            self.outbox,
            allocation_interval=config.allocation_interval,
            allocation_delay=config.allocation_delay,
        )
        self.runtime.apply(self.core.recover(recovered, time.time()))
        scheduler_pb2_grpc.add_SchedulerServicer_to_server(SchedulerService(self.runtime), server)
        agent_internal_pb2_grpc.add_AgentGatewayServicer_to_server(
            AgentGatewayService(self.runtime), server
        )
        await server.start()
        self._server = server
        self.runtime.start()
        log.info("master %s serving on %s", self.ids.master_id, self.address)
        return self.address

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
        """Close every stream, stop serving (within ``grace`` seconds), flush the registry."""
        if self.runtime is not None:
            self.runtime.stop()
        if self.outbox is not None:
            self.outbox.close_all()
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
        if self.outbox is not None and self.failed is None:
            await self.outbox.flush()
        self._stopped.set()


async def serve(config: MasterConfig) -> int:
    """Run a master until SIGINT/SIGTERM; print its address first. Exit status."""
    server = MasterServer(config)
    try:
        address = await server.start()
    except (RegistryError, OSError) as error:
        print(f"emporion master: {error}", file=sys.stderr)
        return 1
    print(f"Emporion master {server.master_id} listening on {address}", flush=True)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, server.request_stop)
    try:
        await server.wait()
    finally:
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
