"""Allocator benchmark: how long one allocation cycle takes, full and steady.

``python -m bench.allocator --agents A --frameworks F [--roles R] [--repeats N]`` prints one JSON
object; with no ``--agents``/``--frameworks`` it runs the grid agents in {1k, 10k, 50k} x
frameworks in {10, 100, 1000} and prints one object per line.

* ``full_cycle_s``: median time of ``allocate()`` with every agent free and every framework
  wanting more (frameworks never suppress, so all of them do). Between repeats everything is
  recovered with ``refuse_seconds=0``.
* ``steady_cycle_s``: median time of ``allocate()`` after 10% of the agents' offers were declined
  (recovered with the default 5 s filter), one simulated second apart, as in Mesos's
  ``DeclineOffers`` benchmark. The cycle looks only at those agents.
* ``baseline_s``: a bare Python loop that reads every agent's resources once (``r.get("cpus")``),
  the floor for touching each agent on this machine.

Agents look like Mesos's benchmark agents (``cpus:24;mem:4096;disk:4096;ports:[31000-32000]``);
frameworks are spread round-robin over ``R`` roles (default 1, Mesos's ``DeclineOffers`` setup).
``--quota limit`` caps the first role at 5% of the cluster's cpus; ``--quota guarantee``
guarantees it 20% (both need ``--roles`` of 2 or more to mean anything).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Sequence

from master.allocator import HierarchicalAllocator
from protos.resources import Resources

AGENT = Resources.parse("cpus:24;mem:4096;disk:4096;ports:[31000-32000]")
GRID_AGENTS = (1_000, 10_000, 50_000)
GRID_FRAMEWORKS = (10, 100, 1_000)


def _role_names(roles: int) -> list[str]:
    return ["*"] if roles <= 1 else [f"role{i}" for i in range(roles)]


def build(
    agents: int, frameworks: int, roles: int, seed: int = 0, quota: str = "none"
) -> HierarchicalAllocator:
    """An allocator with ``frameworks`` frameworks over ``roles`` roles and ``agents`` agents."""
    allocator = HierarchicalAllocator(random.Random(seed))
    names = _role_names(roles)
    for i in range(frameworks):
        allocator.add_framework(f"framework-{i:05d}", [names[i % len(names)]], (), 0.0)
    for i in range(agents):
        allocator.add_agent(f"agent-{i:06d}", AGENT)
    cpus = AGENT.get("cpus") * agents
    if quota == "limit":
        allocator.update_quota(names[0], limits={"cpus": cpus * 0.05})
    elif quota == "guarantee":
        allocator.update_quota(names[0], guarantees={"cpus": cpus * 0.2})
    elif quota != "none":
        raise ValueError(f"unknown quota scenario {quota!r}")
    return allocator


def _recover_all(
    allocator: HierarchicalAllocator,
    offers: dict[str, dict[str, dict[str, Resources]]],
    now: float,
    refuse: float | None,
) -> None:
    for framework_id, by_role in offers.items():
        for role, by_agent in by_role.items():
            for agent_id, resources in by_agent.items():
                allocator.recover_resources(
                    framework_id, agent_id, resources, refuse, now, role=role
                )


def baseline(allocator: HierarchicalAllocator) -> float:
    """Seconds for a bare loop that reads every agent's resources once."""
    resources = [allocator.agent_total(a) for a in allocator.agent_ids()]
    start = time.perf_counter()
    total = 0.0
    for r in resources:
        total += r.get("cpus")
    return time.perf_counter() - start


def run(
    agents: int,
    frameworks: int,
    roles: int = 1,
    repeats: int = 3,
    *,
    seed: int = 0,
    quota: str = "none",
) -> dict[str, object]:
    """Measure one cell; returns the JSON-ready figures."""
    started = time.perf_counter()
    allocator = build(agents, frameworks, roles, seed, quota)
    setup_s = time.perf_counter() - started
    rng = random.Random(seed + 1)
    now = 1.0

    full: list[float] = []
    offers_made = 0
    offers: dict[str, dict[str, dict[str, Resources]]] = {}
    for repeat in range(repeats):
        if repeat:
            _recover_all(allocator, offers, now, 0.0)
            now += 1.0
        start = time.perf_counter()
        offers = allocator.allocate(now)
        full.append(time.perf_counter() - start)
        offers_made = sum(len(a) for by_role in offers.values() for a in by_role.values())

    # Steady state: every agent is offered; each round 10% of the offers are declined.
    outstanding = [
        (framework_id, role, agent_id, resources)
        for framework_id, by_role in offers.items()
        for role, by_agent in by_role.items()
        for agent_id, resources in by_agent.items()
    ]
    changed = max(1, agents // 10)
    steady: list[float] = []
    steady_offers = 0
    for _ in range(max(repeats, 3)):
        now += 1.0
        rng.shuffle(outstanding)
        declined, kept = outstanding[:changed], outstanding[changed:]
        for framework_id, role, agent_id, resources in declined:
            allocator.recover_resources(framework_id, agent_id, resources, None, now, role=role)
        now += 1.0
        start = time.perf_counter()
        again = allocator.allocate(now)
        steady.append(time.perf_counter() - start)
        new = [
            (framework_id, role, agent_id, resources)
            for framework_id, by_role in again.items()
            for role, by_agent in by_role.items()
            for agent_id, resources in by_agent.items()
        ]
        steady_offers = len(new)
        outstanding = kept + new

    floor = statistics.median(baseline(allocator) for _ in range(max(repeats, 3)))
    full_s = statistics.median(full)
    steady_s = statistics.median(steady)
    return {
        "agents": agents,
        "frameworks": frameworks,
        "roles": roles,
        "quota": quota,
        "repeats": repeats,
        "seed": seed,
        "full_cycle_s": round(full_s, 4),
        "steady_cycle_s": round(steady_s, 4),
        "baseline_s": round(floor, 5),
        "full_offers": offers_made,
        "steady_changed_agents": changed,
        "steady_offers": steady_offers,
        "full_us_per_agent": round(full_s / agents * 1e6, 2),
        "steady_us_per_changed_agent": round(steady_s / changed * 1e6, 2),
        "setup_s": round(setup_s, 2),
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--agents", type=int)
    parser.add_argument("--frameworks", type=int)
    parser.add_argument("--roles", type=int, default=1)
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quota", choices=("none", "limit", "guarantee"), default="none")
    args = parser.parse_args(argv)
    if args.agents is not None or args.frameworks is not None:
        agents = args.agents if args.agents is not None else 10_000
        frameworks = args.frameworks if args.frameworks is not None else 1_000
        repeats = args.repeats if args.repeats is not None else 5
        print(
            json.dumps(
                run(agents, frameworks, args.roles, repeats, seed=args.seed, quota=args.quota)
            ),
            flush=True,
        )
        return
    for agents in GRID_AGENTS:
        for frameworks in GRID_FRAMEWORKS:
            default = 5 if agents <= 1_000 else 3
            repeats = args.repeats if args.repeats is not None else default
            print(
                json.dumps(
                    run(agents, frameworks, args.roles, repeats, seed=args.seed, quota=args.quota)
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
