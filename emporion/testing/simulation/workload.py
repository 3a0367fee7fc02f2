"""Scenarios: the cluster a seed builds and the actions it plays, drawn from the seed alone.

A :class:`Scenario` is a topology (agents with their resources, frameworks with their
settings, timing) and a list of timed :class:`Action` values: workload (launch tasks or task
groups, kill, suppress, revive, reconcile, change the decline filter, reserve, unreserve,
teardown) and faults (crash and restart an agent, the master or a scheduler; break a
connection; partition a node; slow the network). Actions are plain data drawn up front, so the
shrinker can drop some and replay the rest under the same seed; what they lead to (offers,
updates, delays) is decided while the run plays.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, replace

from emporion.testing.simulation.framework_node import FrameworkSpec

__all__ = ["FAULT_KINDS", "Action", "AgentSpec", "Scenario", "make_scenario"]

FAULT_KINDS = frozenset(
    {"agent_crash", "master_crash", "framework_failover", "break", "partition", "slow"}
)
"""Action kinds that are faults (the rest is workload)."""


@dataclass(frozen=True)
class AgentSpec:
    """AgentSpec: an agent's hostname and ``--resources``."""

    hostname: str
    cpus: float
    mem: float


@dataclass(frozen=True)
class Action:
    """Action is one thing that happens at simulated second ``at``.

    ``kind`` names it; ``node`` is the agent or framework it concerns (for ``partition`` and
    ``break``: agents are 0..n-1, frameworks n..); ``amount`` a duration, a size or a pick.
    """

    at: float
    kind: str
    node: int = 0
    amount: float = 0.0
    count: int = 0
    flag: bool = False

    def __str__(self) -> str:
        parts = [f"t={self.at:.2f}", self.kind, f"node={self.node}"]
        if self.amount:
            parts.append(f"amount={self.amount:.3g}")
        if self.count:
            parts.append(f"count={self.count}")
        if self.flag:
            parts.append("flag")
        return " ".join(parts)


@dataclass(frozen=True)
class Scenario:
    """Scenario is one seed's cluster and actions (see the module docstring)."""

    seed: int
    agents: tuple[AgentSpec, ...]
    frameworks: tuple[FrameworkSpec, ...]
    actions: tuple[Action, ...]
    chaos_seconds: float
    """Faults and new work happen before this; then the run winds down."""
    follow_leader: bool = True
    """Agents and schedulers follow the leader (ZooKeeper): told of each new one. Otherwise
    they find a restarted master by retrying with their backoff (a standalone master)."""

    def keep(self, indexes: frozenset[int] | None) -> Scenario:
        """The same scenario with only the actions at ``indexes`` (None: all)."""
        if indexes is None:
            return self
        kept = tuple(a for i, a in enumerate(self.actions) if i in indexes)
        return replace(self, actions=kept)


_WORKLOAD_WEIGHTS = {
    "launch": 10,
    "group": 4,
    "kill": 4,
    "suppress": 1,
    "revive": 2,
    "reconcile": 2,
    "refuse": 2,
    "reserve": 2,
    "unreserve": 1,
    "teardown": 0.05,
}
_FAULT_WEIGHTS = {
    "agent_crash": 3,
    "master_crash": 2,
    "framework_failover": 2,
    "break": 3,
    "partition": 2,
    "slow": 1,
}


def _pick(rng: random.Random, weights: Mapping[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def make_scenario(seed: int) -> Scenario:
    """The scenario of ``seed``."""
    rng = random.Random(f"{seed}:scenario")
    n_agents = rng.randint(1, 4)
    n_frameworks = rng.randint(1, 3)
    agents = tuple(
        AgentSpec(f"host{i}", float(rng.choice((2, 4, 8))), float(rng.choice((1024, 4096))))
        for i in range(n_agents)
    )
    frameworks = tuple(
        FrameworkSpec(
            name=f"framework{j}",
            role=rng.choice(("web", "batch", "web/a")),
            checkpoint=rng.random() < 0.8,
            partition_aware=rng.random() < 0.5,
            failover_timeout=3600.0 if rng.random() < 0.85 else rng.uniform(2.0, 30.0),
        )
        for j in range(n_frameworks)
    )
    chaos = rng.uniform(10.0, 40.0)
    fault_rate = rng.choice((0.0, 0.1, 0.3, 0.6))  # Faults per simulated second.
    work_rate = rng.uniform(0.3, 1.5)
    actions: list[Action] = []
    t = 0.5
    while True:
        t += rng.expovariate(work_rate)
        if t >= chaos:
            break
        actions.append(_workload(rng, t, n_frameworks))
    if fault_rate:
        t = 1.0
        while True:
            t += rng.expovariate(fault_rate)
            if t >= chaos:
                break
            actions.append(_fault(rng, t, n_agents, n_frameworks))
    actions.sort(key=lambda a: a.at)
    follow = rng.random() < 0.8
    return Scenario(seed, agents, frameworks, tuple(actions), chaos, follow)


def _workload(rng: random.Random, t: float, n_frameworks: int) -> Action:
    kind = _pick(rng, _WORKLOAD_WEIGHTS)
    node = rng.randrange(n_frameworks)
    if kind in ("launch", "group", "reserve"):
        count = rng.randint(1, 3) if kind != "launch" else rng.randint(1, 4)
        # amount: how long the tasks run (0: until killed).
        amount = 0.0 if rng.random() < 0.2 else round(rng.uniform(0.2, 15.0), 3)
        return Action(t, kind, node, amount, count, flag=rng.random() < 0.2)  # flag: they fail
    if kind == "kill":
        return Action(t, kind, node, count=rng.randrange(1000))
    if kind == "refuse":
        # Not 0 (no filter at all): the master offers the same resources again within a few
        # milliseconds, and a scheduler declining them at once spins it (see the docs).
        return Action(t, kind, node, amount=rng.choice((1.0, 5.0, 30.0)))
    if kind == "reconcile":
        return Action(t, kind, node, flag=rng.random() < 0.5)  # flag: explicit
    return Action(t, kind, node)


def _fault(rng: random.Random, t: float, n_agents: int, n_frameworks: int) -> Action:
    kind = _pick(rng, _FAULT_WEIGHTS)
    if kind == "agent_crash":
        return Action(t, kind, rng.randrange(n_agents), amount=round(rng.uniform(0.1, 20.0), 3))
    if kind == "master_crash":
        return Action(t, kind, amount=round(rng.uniform(0.1, 12.0), 3))
    if kind == "framework_failover":
        return Action(t, kind, rng.randrange(n_frameworks), amount=round(rng.uniform(0.1, 10.0), 3))
    if kind == "break":
        return Action(t, kind, rng.randrange(n_agents + n_frameworks))
    if kind == "partition":
        return Action(
            t, kind, rng.randrange(n_agents + n_frameworks), amount=round(rng.uniform(0.5, 40.0), 3)
        )
    return Action(t, kind, amount=round(rng.uniform(1.0, 10.0), 3))
