"""Small builders shared by the allocator tests."""

from __future__ import annotations

import random
from collections.abc import Iterable

from master.allocator import HierarchicalAllocator, Offers
from protos.resources import Resources


def R(text: str) -> Resources:
    """Resources from their text form."""
    return Resources.parse(text)


AGENT = "cpus:4;mem:4096"


def allocator(seed: int = 0, **options: object) -> HierarchicalAllocator:
    """An allocator with a seeded RNG (options as keyword arguments)."""
    return HierarchicalAllocator(random.Random(seed), **options)  # type: ignore[arg-type]


def with_agents(
    alloc: HierarchicalAllocator, count: int, resources: str = AGENT, prefix: str = "a"
) -> list[str]:
    """Add ``count`` identical agents; returns their ids."""
    ids = [f"{prefix}{i}" for i in range(count)]
    for agent_id in ids:
        alloc.add_agent(agent_id, R(resources))
    return ids


def agents_of(offers: Offers, framework_id: str, role: str | None = None) -> set[str]:
    """The agents offered to a framework (in one role, or in any)."""
    by_role = offers.get(framework_id, {})
    roles: Iterable[str] = by_role if role is None else [role]
    return {agent for r in roles for agent in by_role.get(r, {})}


def total_offered(offers: Offers, framework_id: str, name: str) -> float:
    """The sum of scalar ``name`` over everything offered to a framework."""
    return sum(
        resources.get(name)
        for by_agent in offers.get(framework_id, {}).values()
        for resources in by_agent.values()
    )


def decline_all(
    alloc: HierarchicalAllocator, offers: Offers, now: float, refuse: float | None = 0.0
) -> None:
    """Recover every offer (a decline with ``refuse`` seconds)."""
    for framework_id, by_role in offers.items():
        for role, by_agent in by_role.items():
            for agent_id, resources in by_agent.items():
                alloc.recover_resources(framework_id, agent_id, resources, refuse, now, role=role)


def considered(alloc: HierarchicalAllocator) -> int:
    """How many agents the last cycle looked at."""
    record = alloc.last_cycle
    assert record is not None
    return record.considered
