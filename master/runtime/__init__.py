"""The master's runtime: one asyncio loop around the state machine, serving gRPC.

:class:`MasterServer` wires the registry, the state machine (:mod:`master.core`), the
:class:`~master.runtime.outbox.Outbox` that carries effects out, and the gRPC servicers
(:mod:`master.runtime.services`). The runtime decides *when* things happen (timer ticks,
allocation batching, registry write batching) and never *what* happens: that is the core's.
Under ``--zk``, :class:`~master.runtime.election.ZooKeeperElection` decides *whether* this
master leads; the :class:`~master.runtime.services.Gate` refuses calls while it does not.
"""

from master.runtime.driver import TICK_SECONDS, MasterRuntime
from master.runtime.election import ZooKeeperElection
from master.runtime.outbox import AgentChannel, EventChannel, Outbox
from master.runtime.server import GRPC_OPTIONS, MasterServer, run, serve
from master.runtime.services import (
    LEADER_KEY,
    STREAM_ID_KEY,
    AgentGatewayService,
    Gate,
    SchedulerService,
)

__all__ = [
    "GRPC_OPTIONS",
    "LEADER_KEY",
    "STREAM_ID_KEY",
    "TICK_SECONDS",
    "AgentChannel",
    "AgentGatewayService",
    "EventChannel",
    "Gate",
    "MasterRuntime",
    "MasterServer",
    "Outbox",
    "SchedulerService",
    "run",
    "ZooKeeperElection",
    "serve",
]
