"""Run one seed: build its cluster, play its actions, wind down, check, report.

:func:`run_seed` is the whole of a run: a :class:`World`, the master, agents and frameworks of
the seed's :class:`~emporion.testing.simulation.workload.Scenario`, its actions played at their
times, then the wind-down: faults stop (partitions heal, whatever is down restarts), frameworks
kill what still runs and reconcile, and time runs on until :func:`~emporion.testing.simulation.
checker.unsettled` finds nothing (or :data:`SETTLE_LIMIT` passes: a liveness violation). The
first violation stops the run. The :class:`Outcome` says what happened, with the trace's tail.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from functools import partial

from emporion.testing.simulation.agent_node import AgentNode
from emporion.testing.simulation.checker import CoreLogWatch, unsettled
from emporion.testing.simulation.framework_node import FrameworkNode
from emporion.testing.simulation.launch_plan import LaunchIntent
from emporion.testing.simulation.master_node import MasterNode
from emporion.testing.simulation.workload import Action, Scenario, make_scenario
from emporion.testing.simulation.world import Violation, World
from master.config import MasterConfig

__all__ = ["SETTLE_LIMIT", "Outcome", "Simulation", "run_seed"]

SETTLE_LIMIT = 900.0
"""Simulated seconds after the wind-down starts by which everything must have settled."""

SETTLE_CHECK = 5.0
"""Simulated seconds between checks of whether everything settled."""


@dataclass
class Outcome:
    """Outcome of one run."""

    seed: int
    violation: Violation | None
    actions: int
    simulated_seconds: float
    steps: int
    counts: Counter[str] = field(default_factory=Counter)
    trace: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether the run found nothing."""
        return self.violation is None


class Simulation:
    """Simulation is one run of a scenario (see the module docstring)."""

    def __init__(self, scenario: Scenario, *, validate_every_step: bool = True) -> None:
        self.scenario = scenario
        self.world = world = World(scenario.seed, validate_every_step=validate_every_step)
        config = MasterConfig(registry="memory", agent_reregister_timeout=60.0)
        self.master = MasterNode(world, config)
        self.agents = [AgentNode(world, self.master, i, s) for i, s in enumerate(scenario.agents)]
        self.frameworks = [
            FrameworkNode(world, self.master, j, s) for j, s in enumerate(scenario.frameworks)
        ]
        if scenario.follow_leader:
            self.master.followers = [
                *(a.leader_elected for a in self.agents),
                *(f.leader_elected for f in self.frameworks),
            ]
        self.winding_down = False
        self.settled_at: float | None = None

    # -- playing --------------------------------------------------------------------------------

    def run(self) -> Outcome:
        """Play the whole run."""
        world = self.world
        loop = world.loop
        started = time.perf_counter()
        with CoreLogWatch(world):
            self.master.start()
            rng = world.rng_for("starts")
            for agent in self.agents:
                loop.after(rng.uniform(0.0, 1.0), agent.start)
            for fw in self.frameworks:
                loop.after(rng.uniform(0.0, 2.0), fw.start)
            for action in self.scenario.actions:
                loop.at(loop.start + action.at, partial(self._play, action))
            loop.at(loop.start + self.scenario.chaos_seconds, self._wind_down)
            end = loop.start + self.scenario.chaos_seconds + SETTLE_LIMIT
            loop.run_until(end, lambda: world.failed or self.settled_at is not None)
            if not world.failed and self.settled_at is None:
                problems = unsettled(self.master, self.agents, self.frameworks)
                world.violation(
                    "liveness",
                    f"not settled {SETTLE_LIMIT:g} s after the faults stopped: "
                    + "; ".join(problems[:8]),
                )
        counts = world.counts
        counts["agent_crashes"] = sum(a.crashes for a in self.agents)
        counts["master_crashes"] = self.master.crashes
        counts["terminal_updates_repeated"] = sum(
            max(0, t.terminal_updates - 1)
            for fw in self.frameworks
            for t in fw.ledger.tasks.values()
        )
        return Outcome(
            seed=self.scenario.seed,
            violation=world.violations[0] if world.violations else None,
            actions=len(self.scenario.actions),
            simulated_seconds=loop.elapsed,
            steps=loop.steps,
            counts=counts,
            trace=world.trace(),
            wall_seconds=time.perf_counter() - started,
        )

    def _play(self, action: Action) -> None:
        world = self.world
        if self.winding_down:
            return
        world.note(f"action {action}")
        world.counts[f"action_{action.kind}"] += 1
        kind = action.kind
        loop = world.loop
        n_agents = len(self.agents)
        if kind in ("launch", "group", "reserve"):
            run_for = action.amount or None
            intent = LaunchIntent(
                count=action.count,
                cpus=0.25 * (1 + action.count % 2),
                mem=64.0 * (1 + action.count % 3),
                run_for=run_for,
                exit_code=1 if action.flag else 0,
                group=kind == "group",
                reserve=kind == "reserve",
            )
            self.frameworks[action.node].want(intent)
        elif kind == "kill":
            self.frameworks[action.node].kill_some(action.count)
        elif kind == "suppress":
            self.frameworks[action.node].suppress()
        elif kind == "revive":
            self.frameworks[action.node].revive()
        elif kind == "reconcile":
            self.frameworks[action.node].reconcile(explicit=action.flag)
        elif kind == "refuse":
            self.frameworks[action.node].set_refuse(action.amount)
        elif kind == "unreserve":
            self.frameworks[action.node].unreserve()
        elif kind == "teardown":
            self.frameworks[action.node].teardown()
        elif kind == "agent_crash":
            agent = self.agents[action.node]
            agent.crash()
            loop.after(action.amount, agent.start)
        elif kind == "master_crash":
            self.master.crash()
            loop.after(action.amount, self._master_back)
        elif kind == "framework_failover":
            fw = self.frameworks[action.node]
            fw.crash()
            loop.after(action.amount, fw.start)
        elif kind == "break":
            node = action.node
            if node < n_agents:
                self.agents[node].break_link()
            else:
                self.frameworks[node - n_agents].break_link()
        elif kind == "partition":
            node = action.node
            name = (
                self.agents[node].name if node < n_agents else self.frameworks[node - n_agents].name
            )
            world.net.partition(name, action.amount)
        elif kind == "slow":
            world.net.slow_until = max(world.net.slow_until, loop.now + action.amount)

    def _master_back(self) -> None:
        if not self.master.up:
            self.master.start()

    def _wind_down(self) -> None:
        """Faults stop; whatever is down comes back; frameworks finish their work."""
        world = self.world
        world.note("wind-down: faults stop")
        self.winding_down = True
        world.net.heal_all()
        world.net.slow_until = 0.0
        self._master_back()
        for agent in self.agents:
            agent.start()
        for fw in self.frameworks:
            fw.start()
            fw.wind_down()
        world.loop.after(SETTLE_CHECK, self._check_settled)

    def _check_settled(self) -> None:
        if unsettled(self.master, self.agents, self.frameworks):
            self.world.loop.after(SETTLE_CHECK, self._check_settled)
        else:
            self.settled_at = self.world.loop.elapsed
            self.world.note("settled")


def run_seed(
    seed: int, keep: frozenset[int] | None = None, *, validate_every_step: bool = True
) -> Outcome:
    """Run ``seed`` (with only the actions at ``keep``, if given)."""
    scenario = make_scenario(seed).keep(keep)
    return Simulation(scenario, validate_every_step=validate_every_step).run()
