"""The simulator over many seeds, and the seeds that found the reregistration accounting fault.

Every seed is played by ``python -m bench.simulation`` in its own process, which pins
``PYTHONHASHSEED`` (0), so each seed plays exactly the run it played when it was recorded.

The seeds below were found by running the simulator against the master core of a7cce21 (before
the fix) with ``--no-validate``, which shows the fault as the runtime saw it: the ValueError.
With the invariants checked after every step (the default) the same seeds fail one step
earlier, right after the reregistration: ``Master.validate()`` reports the ended tasks as
"allocated while terminal" and the agent's allocation out of step with the allocator's.
"""

from __future__ import annotations

import pytest

from emporion.testing.simulation import make_scenario
from tests.simulation.helpers import simulate

FAILOVER_SEED = 21
"""Before the fix (a7cce21), seed 21 found fault (1) of issue 10: the master crashes and a new
one takes over from the registry; an agent reregisters reporting tasks that ended meanwhile,
and its next batch makes the new master raise ``ValueError: framework 'm1-0001' does not hold
cpus:1;mem:512 on agent 'm1-S2' in role 'batch'`` from ``HierarchicalAllocator.
recover_resources`` (via ``MasterState.flush_releases`` in ``Master.agent_messages``). Shrunk
to two actions: a launch, the master crash (``--keep 34,40``). Seed 46 found it too, with a
scheduler failover and a broken agent connection before the master crash
(``--keep 3,4,10,11,12,15``)."""

AGENT_CRASH_SEED = 1416
"""Before the fix, seed 1416 found fault (2): an agent crashes under load and stays down long
enough to be marked unreachable (its tasks LOST and forgotten); restarted from its checkpoint,
it reregisters reporting tasks that ended meanwhile, and the same ValueError follows
(``framework 'm1-0000' does not hold cpus:0.5;mem:384 on agent 'm1-S1' in role 'batch'``). No
master failover, no partition. Shrunk to three actions: a reserve-and-launch, a task group, the
agent crash (``--keep 21,24,27``)."""

UNREACHABLE_SEED = 29
"""Before the fix, seed 29 found the same fault through a partition: the agent is cut off long
enough to be marked unreachable, then reregisters with tasks that ended meanwhile
(``--keep 3,7,8,12``: task groups, a launch, the partition)."""

TEARDOWN_SEEDS = [(1361, "12,19,33,41"), (41066, None)]
"""Before torn-down framework ids were kept in the registry (27b820a), these seeds found a
TEARDOWN forgotten across master failovers: the next leader adopted the framework from the
agents' reports and its tasks ran on until its failover timeout (liveness)."""

REPLAYS = [
    *((seed, keep, "teardown") for seed, keep in TEARDOWN_SEEDS),
    (FAILOVER_SEED, None, "master_crash"),
    (FAILOVER_SEED, "34,40", "master_crash"),
    (46, "3,4,10,11,12,15", "master_crash"),
    (AGENT_CRASH_SEED, None, "agent_crash"),
    (AGENT_CRASH_SEED, "21,24,27", "agent_crash"),
    (UNREACHABLE_SEED, None, "partition"),
    (UNREACHABLE_SEED, "3,7,8,12", "partition"),
]


@pytest.mark.parametrize(("seed", "keep", "fault"), REPLAYS)
def test_seeds_that_found_a_fault_pass(seed: int, keep: str | None, fault: str) -> None:
    # The seed must still play the fault that found the bug: a change of the scenario
    # generator would make this test pass vacuously.
    scenario = make_scenario(seed)
    kept = scenario.actions if keep is None else [scenario.actions[int(i)] for i in keep.split(",")]
    assert fault in {action.kind for action in kept}, f"seed {seed} no longer plays a {fault}"
    args = ["--seed", str(seed), "--replay", *(["--keep", keep] if keep else [])]
    for checks in ([], ["--no-validate"]):  # With invariants, and as the runtime would see it.
        status, figures, trace = simulate(*args, *checks)
        assert figures["violation"] is None, f"{figures['violation']}\n{trace[-4000:]}"
        assert status == 0
        assert figures["counts"].get(f"action_{fault}", 0) >= 1


def test_500_seeds_find_nothing() -> None:
    status, figures, trace = simulate("--seeds", "500", "--jobs", "2", "--shrink-budget", "20")
    assert figures["seeds"] == 500
    assert figures["violations"] == 0, f"{figures['failures']}\n{figures.get('shrunk')}\n{trace}"
    assert status == 0
    # The runs did what they are for: work, and every kind of fault.
    assert figures["tasks_launched"] > 5_000
    assert all(count > 0 for count in figures["faults"].values()), figures["faults"]


@pytest.mark.slow
def test_soak_5000_seeds_find_nothing() -> None:
    status, figures, trace = simulate(
        "--seeds", "5000", "--start", "500", "--jobs", "2", timeout=3600
    )
    assert figures["violations"] == 0, f"{figures['failures']}\n{figures.get('shrunk')}\n{trace}"
    assert status == 0
