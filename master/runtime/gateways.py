"""The master's agent gateway processes (``--agent-gateways N``; :mod:`master.gateway`).

:class:`GatewayPool` serves the relay on a Unix socket in a private directory (mode 0700:
only the master's user can connect, so a relay needs no other proof), reserves the agent port
(``SO_REUSEPORT``: the gateways bind it too, and the kernel spreads agents' connections over
them), starts the gateways, restarts one that exits, and stops them with the master.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

from grpc import aio

from master.config import MasterConfig
from master.runtime.relay import (
    RELAY_KEEPALIVE_OPTIONS,
    RELAY_MESSAGE_OPTIONS,
    AgentRelayService,
)
from master.runtime.services import Gate
from protos.v1 import agent_internal_pb2_grpc

__all__ = ["GatewayPool"]

log = logging.getLogger("master.runtime")

_READY = "gateway ready on "
_START_TIMEOUT_S = 60.0
_RESTART_DELAY_S = 1.0
_PASSED_FLAGS = (
    "host",
    "agent_ping_timeout",
    "tls_cert",
    "tls_key",
    "tls_ca",
    "tls_require_client_cert",
    "authenticate_agents",
    "credentials",
    "log_level",
    "agent_gateways",
)
"""The master's flags a gateway needs: what it serves on, and how it authenticates agents."""


def _flags(config: MasterConfig) -> list[str]:
    argv: list[str] = []
    for name in _PASSED_FLAGS:
        value = getattr(config, name)
        if value is None or value is False:
            continue
        argv += ["--" + name.replace("_", "-"), str(value).lower() if value is True else str(value)]
    return argv


def _reserve(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` with ``SO_REUSEPORT`` (not listening: the gateways
    listen), after checking that nobody holds the port, not even with ``SO_REUSEPORT`` (another
    master's gateways would otherwise share its agents). Raises OSError naming the flag."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    reserved = socket.socket(family, socket.SOCK_STREAM)
    try:
        if port != 0:
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind((host, port))
        reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        reserved.bind((host, port))
    except OSError as error:
        reserved.close()
        raise OSError(
            f"cannot serve agents on {host}:{port} (--agent-port): {error.strerror or error}"
        ) from None
    return reserved


class GatewayPool:
    """``config.agent_gateways`` gateway processes relaying to the master behind ``gate``."""

    def __init__(self, config: MasterConfig, gate: Gate) -> None:
        self.config = config
        self.gate = gate
        self.port = 0
        self.processes: list[asyncio.subprocess.Process | None] = []
        self._dir: Path | None = None
        self._server: aio.Server | None = None
        self._reserved: socket.socket | None = None
        self._supervisors: list[asyncio.Task[None]] = []
        self._stopping = False

    async def start(self) -> int:
        """Serve the relay, start every gateway and wait until each listens; the agent port.

        Raises OSError if the port cannot be reserved or a gateway does not start.
        """
        config = self.config
        self._reserved = _reserve(config.host, config.agent_port)
        self.port = self._reserved.getsockname()[1]
        try:
            self._dir = Path(tempfile.mkdtemp(prefix="emporion-relay-"))  # mode 0700
            path = self._dir / "relay.sock"
            self._server = aio.server(options=[*RELAY_MESSAGE_OPTIONS, *RELAY_KEEPALIVE_OPTIONS])
            agent_internal_pb2_grpc.add_AgentRelayServicer_to_server(
                AgentRelayService(self.gate), self._server
            )
            self._server.add_insecure_port(f"unix:{path}")
            await self._server.start()
            self.processes = [None] * config.agent_gateways
            loop = asyncio.get_running_loop()
            started = [loop.create_future() for _ in self.processes]
            for index in range(config.agent_gateways):
                self._supervisors.append(
                    loop.create_task(
                        self._supervise(index, str(path), started[index]), name=f"gateway {index}"
                    )
                )
            try:
                await asyncio.wait_for(asyncio.gather(*started), _START_TIMEOUT_S)
            except TimeoutError:
                raise OSError(
                    f"the agent gateways did not start within {_START_TIMEOUT_S:.0f} s"
                ) from None
        except BaseException:
            await self.stop()
            raise
        return self.port

    async def _supervise(self, index: int, relay: str, started: asyncio.Future[None]) -> None:
        """Run gateway ``index``; restart it when it exits, until the pool stops."""
        argv = [sys.executable, "-m", "master.gateway", *_flags(self.config)]
        argv += ["--relay", f"unix:{relay}", "--agent-port", str(self.port)]
        argv += ["--parent", str(os.getpid())]
        while not self.stopping():
            process = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
            self.processes[index] = process
            assert process.stdout is not None
            line = (await process.stdout.readline()).decode()
            if line.startswith(_READY):
                log.info(
                    "agent gateway %d (pid %d) on %s",
                    index,
                    process.pid,
                    line[len(_READY) :].strip(),
                )
                if not started.done():
                    started.set_result(None)
            code = await process.wait()
            self.processes[index] = None
            if self.stopping():
                return
            log.warning(
                "agent gateway %d (pid %d) exited with %s; restarting", index, process.pid, code
            )
            if not started.done():
                started.set_exception(OSError(f"agent gateway {index} exited with {code} at start"))
                return
            await asyncio.sleep(_RESTART_DELAY_S)

    def stopping(self) -> bool:
        """Whether :meth:`stop` began."""
        return self._stopping

    async def stop(self) -> None:
        """Stop every gateway (their agents' streams end), then the relay; remove the socket."""
        self._stopping = True
        for process in self.processes:
            if process is not None and process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
        for process in self.processes:
            if process is not None:
                try:
                    await asyncio.wait_for(process.wait(), 5.0)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                    await process.wait()
        for task in self._supervisors:
            task.cancel()
        await asyncio.gather(*self._supervisors, return_exceptions=True)
        self._supervisors = []
        if self._server is not None:
            await self._server.stop(0.5)
            self._server = None
        if self._reserved is not None:
            self._reserved.close()
            self._reserved = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
