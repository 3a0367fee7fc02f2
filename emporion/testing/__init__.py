"""Test and benchmark tooling that speaks Emporion's protocols: the agent emulator.

:class:`AgentEmulator` emulates thousands of agents in one process against a real master, for
integration tests and for ``bench.launch_throughput``.
"""

from emporion.testing.agent_emulator import AgentEmulator
from emporion.testing.emulated_agent import EmulatedAgent, EmulatorCounters, Link, Mode
from emporion.testing.emulator_config import DEFAULT_RESOURCES, EmulatorConfig

__all__ = [
    "DEFAULT_RESOURCES",
    "AgentEmulator",
    "EmulatedAgent",
    "EmulatorConfig",
    "EmulatorCounters",
    "Link",
    "Mode",
]
