"""recover_resources_many: one batch gives the same allocator as recovering its parts in order.

Two allocators built alike are driven through the same cycles; after each cycle one recovers
what the frameworks give back offer by offer (``recover_resources``), the other one batch per
framework (``recover_resources_many``). Their books, filters, shares and every later cycle must
be the same, with quota, reservations, several roles and parts on one agent twice in a batch.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from master.allocator import HierarchicalAllocator, Offers, Recovered
from protos.resources import Resources

from .helpers import R, allocator

ROLES = ("a", "b", "a/x")


def _view(alloc: HierarchicalAllocator) -> dict[str, object]:
    """Everything observable of the allocator's books."""
    frameworks = sorted(alloc.framework_ids())
    return {
        "free": {a: alloc.agent_free(a) for a in alloc.agent_ids()},
        "allocated": {a: alloc.agent_allocation(a) for a in alloc.agent_ids()},
        "held": {f: alloc.allocation_of(f) for f in frameworks},
        "shares": {f: alloc.framework_share(f) for f in frameworks},
        "role_shares": {r: alloc.role_share(r) for r in (*ROLES, "*")},
        "filters": {
            f: [
                (x.role, x.agent_id, x.resources, x.created_at, x.expires_at)
                for x in alloc.filters_of(f)
            ]
            for f in frameworks
        },
        "consumed": {r: alloc.quota_consumed(r) for r in ("a", "b")},
    }


def _build(
    seed: int, agents: list[str], frameworks: list[tuple[str, tuple[str, ...]]], quota: bool
) -> HierarchicalAllocator:
    alloc = HierarchicalAllocator(random.Random(seed), allocation_interval=1.0)
    for index, text in enumerate(agents):
        alloc.add_agent(f"agent{index}", Resources.parse(text))
    for framework_id, roles in frameworks:
        alloc.add_framework(framework_id, roles)
    if quota:
        alloc.update_quota("a", {"cpus": 2}, {"cpus": 12})
        alloc.update_weights({"b": 2.0})
    return alloc


def _parts(
    alloc: HierarchicalAllocator, offers: Offers, draw: st.DataObject
) -> dict[str, list[Recovered]]:
    """What each framework gives back: whole offers, halves of offers (two parts on one agent),
    or nothing (it keeps the offer, as if it launched a task with all of it). The role is left
    out, at random, where the framework holds resources on the agent in that role only."""
    out: dict[str, list[Recovered]] = {}
    for framework_id, by_role in offers.items():
        for role, by_agent in by_role.items():
            for agent_id, resources in by_agent.items():
                held_in = {r for f, r in alloc.agent_allocation(agent_id) if f == framework_id}
                how = draw.draw(st.sampled_from(["whole", "split", "keep"]))
                if how == "keep":
                    continue
                parts = [resources]
                if how == "split":
                    cpus = resources.filter(lambda key: key.name == "cpus")
                    parts = [p for p in (cpus, resources - cpus) if p]
                for part in parts:
                    named = draw.draw(st.booleans())
                    out.setdefault(framework_id, []).append(
                        Recovered(agent_id, part, role if named or len(held_in) > 1 else None)
                    )
    return out


AGENT_TEXTS = st.lists(
    st.sampled_from(
        [
            "cpus:4;mem:4096",
            "cpus:2;mem:1024;ports:[31000-31004]",
            "cpus:4;mem:2048;cpus(a):1;mem(a):256",
            "cpus:8;mem:8192;disk:100",
            "cpus:1;mem:512;cpus(b):2",
        ]
    ),
    min_size=1,
    max_size=8,
)
FRAMEWORKS = st.lists(
    st.sampled_from([("a",), ("b",), ("a/x",), ("a", "b"), ("b", "a/x")]), min_size=1, max_size=5
)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    agents=AGENT_TEXTS,
    roles=FRAMEWORKS,
    quota=st.booleans(),
    refuse=st.sampled_from([0.0, None, 3.0, 3600.0]),
    data=st.data(),
)
def test_a_batch_equals_its_parts_in_order(
    *,
    seed: int,
    agents: list[str],
    roles: list[tuple[str, ...]],
    quota: bool,
    refuse: float | None,
    data: st.DataObject,
) -> None:
    frameworks = [(f"f{i}", r) for i, r in enumerate(roles)]
    one = _build(seed, agents, frameworks, quota)
    many = _build(seed, agents, frameworks, quota)
    now = 0.0
    for _ in range(4):
        offers = one.allocate(now)
        assert many.allocate(now) == offers
        for framework_id, parts in _parts(one, offers, data).items():
            for part in parts:
                one.recover_resources(
                    framework_id, part.agent_id, part.resources, refuse, now, role=part.role
                )
            many.recover_resources_many(framework_id, parts, refuse, now)
        assert _view(many) == _view(one)
        one.validate()
        many.validate()
        now += data.draw(st.sampled_from([0.5, 1.0, 4.0, 10.0]))
    assert many.allocate(now) == one.allocate(now)


def _held_once() -> tuple[HierarchicalAllocator, Offers]:
    alloc = allocator()
    alloc.add_agent("a0", R("cpus:4;mem:4096"))
    alloc.add_agent("a1", R("cpus:4;mem:4096"))
    alloc.add_framework("f", ["r"])
    offers = alloc.allocate(0.0)
    assert set(offers["f"]["r"]) == {"a0", "a1"}
    return alloc, offers


def test_a_batch_with_a_part_not_held_recovers_nothing() -> None:
    alloc, _ = _held_once()
    before = (alloc.agent_free("a0"), alloc.allocation_of("f"), alloc.framework_share("f"))
    batch = [Recovered("a0", R("cpus:4;mem:4096"), "r"), Recovered("a1", R("cpus:5"), "r")]
    with pytest.raises(ValueError, match=r"does not hold cpus:5.* on agent 'a1' in role 'r'"):
        alloc.recover_resources_many("f", batch, 5.0, 1.0)
    after = (alloc.agent_free("a0"), alloc.allocation_of("f"), alloc.framework_share("f"))
    assert after == before
    assert alloc.filters_of("f") == []
    alloc.validate()


def test_a_batch_naming_the_same_resources_twice_recovers_nothing() -> None:
    alloc, _ = _held_once()
    batch = [Recovered("a0", R("cpus:3"), "r"), Recovered("a0", R("cpus:3"), "r")]
    with pytest.raises(ValueError, match="recovered more than once in one batch"):
        alloc.recover_resources_many("f", batch, 0.0, 1.0)
    assert alloc.agent_free("a0") == Resources.EMPTY
    alloc.validate()


def test_unknown_frameworks_and_agents_are_ignored() -> None:
    alloc, offers = _held_once()
    alloc.recover_resources_many("nobody", [Recovered("a0", R("cpus:1"), "r")], 0.0, 1.0)
    alloc.remove_agent("a1")
    batch = [Recovered("a1", offers["f"]["r"]["a1"], "r"), Recovered("a0", R("cpus:1"), "r")]
    alloc.recover_resources_many("f", batch, 0.0, 1.0)
    assert alloc.agent_free("a0") == R("cpus:1")
    alloc.validate()


def test_one_filter_per_part_and_each_agent_offered_again_after_it() -> None:
    alloc, offers = _held_once()
    batch = [Recovered(a, r, "r") for a, r in offers["f"]["r"].items()]
    alloc.recover_resources_many("f", batch, 2.0, 1.0)
    assert sorted((x.agent_id, x.expires_at) for x in alloc.filters_of("f")) == [
        ("a0", 3.0),
        ("a1", 3.0),
    ]
    assert alloc.allocate(2.0) == {}
    assert set(alloc.allocate(3.5)["f"]["r"]) == {"a0", "a1"}
