"""A deterministic simulator of a whole Emporion cluster, driving the real cores.

The master's core (with its real allocator and the registry's in-memory twin), N agent cores
(with the checkpoint's in-memory twin) and framework schedulers on the SDK's sans-I/O session
run over simulated time and a simulated network, with crashes, failovers, broken connections,
partitions and random workloads; invariants are checked after every step, and at the end every
launched task must have ended with its framework knowing, and no resource may be leaked or
double-counted. A run is its seed: ``python -m bench.simulation --seed N --replay`` plays it
again. FoundationDB's simulation, TigerBeetle's VOPR and dask's ``handle_stimulus`` are the
models. See ``docs/simulation.md``.

Modules: ``loop`` (simulated time), ``network``, ``world`` (what a run shares),
``master_node``, ``agent_node``, ``framework_node``, ``workload`` (scenarios from seeds),
``checker``, ``runner`` (one run), ``shrinker`` (the shortest failing trace).
"""

from emporion.testing.simulation.runner import Outcome, Simulation, run_seed
from emporion.testing.simulation.workload import Action, Scenario, make_scenario
from emporion.testing.simulation.world import Violation

__all__ = ["Action", "Outcome", "Scenario", "Simulation", "Violation", "make_scenario", "run_seed"]
