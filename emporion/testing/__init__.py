"""Test and benchmark tooling that speaks Emporion's protocols.

* :class:`AgentEmulator` emulates thousands of agents in one process against a real master (a
  fixed address, several, or the leader under a ``zk://`` URL), for integration tests and the
  benchmarks; :class:`EmulatedAgent` is one agent's sans-I/O core.
* :mod:`emporion.testing.zookeeper` runs real ZooKeeper servers (``ZooKeeperCluster``).
* :mod:`emporion.testing.master_processes` runs ``python -m master --zk`` processes
  (``ZkMaster``) and asks them whether they lead (``probe``).
* :mod:`emporion.testing.failover_job` is a job of frameworks across a master failover
  (``FailoverFramework``), for the HA tests and ``bench.failover``.

Importing the package loads no gRPC or ZooKeeper client: :class:`AgentEmulator` is imported
on first use, and the other modules are imported by name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emporion.testing.emulated_agent import EmulatedAgent, EmulatorCounters, Link, Mode
from emporion.testing.emulator_config import DEFAULT_RESOURCES, EmulatorConfig

if TYPE_CHECKING:
    from emporion.testing.agent_emulator import AgentEmulator

__all__ = [
    "DEFAULT_RESOURCES",
    "AgentEmulator",
    "EmulatedAgent",
    "EmulatorConfig",
    "EmulatorCounters",
    "Link",
    "Mode",
]


def __getattr__(name: str) -> Any:
    # AgentEmulator brings grpc (and kazoo, for zk:// masters) with it: only when asked for.
    if name == "AgentEmulator":
        from emporion.testing.agent_emulator import AgentEmulator

        return AgentEmulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
