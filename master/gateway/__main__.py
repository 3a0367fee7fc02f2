"""``python -m master.gateway``: one agent gateway process (started by the master, not by hand).

It takes the master's own flags for what it serves (``--host``, ``--agent-ping-timeout``, the
TLS and agent authentication flags) plus its relay's Unix socket and the agent port, dies with
the master (``PR_SET_PDEATHSIG``, and at once if the master is already gone), and prints
``gateway ready on HOST:PORT`` once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Sequence

from grpc import aio

from master.auth import MasterSecurity
from master.config import ConfigError, add_arguments, config_from_namespace
from master.gateway.link import RelayLink
from master.gateway.service import GatewayService
from master.runtime.registration import add_tolerant, keepalive_options
from protos.limits import GRPC_MESSAGE_OPTIONS
from protos.security import SecurityConfigError
from protos.v1 import agent_internal_pb2_grpc

log = logging.getLogger("master.gateway")

_PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> None:
    """Get SIGTERM when the master exits; exit now if it already has."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:
        sys.exit(f"emporion gateway: the master (pid {parent}) is gone")


async def serve(ns: argparse.Namespace) -> int:
    config = config_from_namespace(ns, {})
    security = MasterSecurity(config)
    link = RelayLink(ns.relay)
    options = [
        *GRPC_MESSAGE_OPTIONS,
        ("grpc.so_reuseport", 1),
        *keepalive_options(config.agent_ping_timeout),
    ]
    server = aio.server(options=options)
    add_tolerant(
        agent_internal_pb2_grpc.add_AgentGatewayServicer_to_server,
        GatewayService(link, security),
        server,
    )
    host = config.host
    bind = f"[{host}]:{config.agent_port}" if ":" in host else f"{host}:{config.agent_port}"
    if security.tls is not None:
        port = server.add_secure_port(bind, security.tls.server_credentials())
    else:
        port = server.add_insecure_port(bind)
    await server.start()
    relay = asyncio.get_running_loop().create_task(link.run(), name="relay")
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    print(f"gateway ready on {host}:{port}", flush=True)
    await stop.wait()
    link.stop()
    relay.cancel()
    await server.stop(0.5)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m master.gateway", description="An Emporion master's agent gateway."
    )
    add_arguments(parser)
    parser.add_argument("--relay", required=True, help="unix:PATH of the master's relay socket")
    parser.add_argument("--parent", type=int, required=True, help="the master's pid")
    ns = parser.parse_args(argv)
    ns.registry = "memory"  # A gateway keeps no state.
    logging.basicConfig(
        level=(ns.log_level or "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s[gateway %(process)d]: %(message)s",
        stream=sys.stderr,
    )
    _die_with(ns.parent)
    try:
        return asyncio.run(serve(ns))
    except (ConfigError, SecurityConfigError, RuntimeError) as error:
        print(f"emporion gateway: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
