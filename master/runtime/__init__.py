"""The master's runtime: one asyncio loop around the state machine, serving gRPC.

:class:`MasterServer` wires the registry, the state machine (:mod:`master.core`), the
:class:`~master.runtime.outbox.Outbox` that carries effects out, and the gRPC servicers
(:mod:`master.runtime.services`). The runtime decides *when* things happen (timer ticks,
allocation batching, registry write batching) and never *what* happens: that is the core's.
"""

from master.runtime.driver import TICK_SECONDS, MasterRuntime
from master.runtime.outbox import AgentChannel, EventChannel, Outbox
from master.runtime.server import GRPC_OPTIONS, MasterServer, run, serve
from master.runtime.services import STREAM_ID_KEY, AgentGatewayService, SchedulerService

__all__ = [
    "GRPC_OPTIONS",
    "STREAM_ID_KEY",
    "TICK_SECONDS",
    "AgentChannel",
    "AgentGatewayService",
    "EventChannel",
    "MasterRuntime",
    "MasterServer",
    "Outbox",
    "SchedulerService",
    "run",
    "serve",
]
