"""Fair sharing: DRF between frameworks, weights, hierarchical roles, the sorters themselves."""

from __future__ import annotations

import random

import pytest

from master.allocator import DRFSorter, RandomSorter, ShareTotals, make_sorter

from .helpers import R, agents_of, allocator, total_offered, with_agents


def test_free_agent_goes_to_the_framework_with_the_lower_share() -> None:
    alloc = allocator()
    alloc.add_framework("f1", ["*"])
    alloc.add_framework("f2", ["*"])
    alloc.add_agent("a0", R("cpus:8;mem:8192"), used={"f1": {"*": R("cpus:4;mem:4096")}})
    offers = alloc.allocate(1.0)
    assert agents_of(offers, "f2") == {"a0"}
    assert "f1" not in offers
    assert alloc.framework_share("f1") == alloc.framework_share("f2") == {"*": 0.5}
    alloc.validate()


def test_identical_frameworks_split_identical_agents_evenly() -> None:
    alloc = allocator()
    for f in ("f1", "f2"):
        alloc.add_framework(f, ["*"])
    with_agents(alloc, 4)
    offers = alloc.allocate(1.0)
    assert len(agents_of(offers, "f1")) == len(agents_of(offers, "f2")) == 2


def test_dominant_resource_decides_the_order() -> None:
    # f1 holds 60% of the cpus (dominant share 0.6); f2 holds half the memory (0.5).
    alloc = allocator()
    for f in ("f1", "f2"):
        alloc.add_framework(f, ["*"])
    alloc.add_agent("cpu-heavy", R("cpus:6;mem:10"), used={"f1": {"*": R("cpus:6;mem:10")}})
    alloc.add_agent("mem-heavy", R("cpus:1;mem:50"), used={"f2": {"*": R("cpus:0.5;mem:50")}})
    alloc.add_agent("free", R("cpus:3;mem:40"))
    offers = alloc.allocate(1.0)
    assert alloc.framework_share("f1")["*"] == pytest.approx(0.6)
    assert agents_of(offers, "f2") >= {"free"}


def test_ties_break_on_allocation_count_then_name() -> None:
    alloc = allocator()
    for f in ("fb", "fa"):
        alloc.add_framework(f, ["*"])
    with_agents(alloc, 1)
    assert agents_of(alloc.allocate(1.0), "fa") == {"a0"}


def test_weights_give_a_heavier_role_proportionally_more() -> None:
    alloc = allocator()
    alloc.update_weights({"a": 2.0})
    alloc.add_framework("fa", ["a"])
    alloc.add_framework("fb", ["b"])
    with_agents(alloc, 6)
    offers = alloc.allocate(1.0)
    assert len(agents_of(offers, "fa")) == 4
    assert len(agents_of(offers, "fb")) == 2
    assert alloc.role_share("a") == pytest.approx(4 / 6 / 2)
    assert alloc.weights() == {"a": 2.0}
    alloc.validate()


@pytest.mark.parametrize("weight", [0, -1, float("nan"), float("inf")])
def test_bad_weights_are_refused(weight: float) -> None:
    alloc = allocator()
    with pytest.raises(ValueError, match="weight of role 'a' must be a positive number"):
        alloc.update_weights({"a": weight})
    assert alloc.weights() == {}


def test_hierarchical_roles_share_their_parent() -> None:
    # eng/prod and eng/dev together get what ops alone gets.
    alloc = allocator()
    alloc.add_framework("prod", ["eng/prod"])
    alloc.add_framework("dev", ["eng/dev"])
    alloc.add_framework("ops", ["ops"])
    with_agents(alloc, 4)
    offers = alloc.allocate(1.0)
    assert len(agents_of(offers, "ops")) == 2
    assert len(agents_of(offers, "prod")) == len(agents_of(offers, "dev")) == 1
    assert alloc.role_share("eng") == pytest.approx(0.5)
    assert alloc.role_share("eng/prod") == pytest.approx(0.25)
    alloc.validate()


def test_a_role_with_frameworks_and_subroles() -> None:
    alloc = allocator()
    alloc.add_framework("top", ["eng"])
    alloc.add_framework("sub", ["eng/web"])
    alloc.add_framework("other", ["ops"])
    with_agents(alloc, 4)
    offers = alloc.allocate(1.0)
    assert len(agents_of(offers, "other")) == 2
    assert len(agents_of(offers, "top")) == len(agents_of(offers, "sub")) == 1
    alloc.validate()


def test_fair_sharing_excluded_resources_do_not_count() -> None:
    alloc = allocator(fair_sharing_excluded_resource_names=["gpus"])
    alloc.add_framework("f1", ["*"], ["GPU_RESOURCES"])
    alloc.add_agent("gpu", R("cpus:1;mem:100;gpus:4"), used={"f1": {"*": R("gpus:4")}})
    alloc.add_agent("cpu", R("cpus:1;mem:100"))
    assert alloc.framework_share("f1") == {"*": 0.0}


def test_random_sorters_are_selectable_and_reproducible() -> None:
    def run(seed: int) -> dict[str, set[str]]:
        alloc = allocator(seed, role_sorter="random", framework_sorter="random")
        for f in ("f1", "f2", "f3"):
            alloc.add_framework(f, ["r1" if f != "f3" else "r2/x"])
        with_agents(alloc, 9)
        offers = alloc.allocate(1.0)
        alloc.validate()
        return {f: agents_of(offers, f) for f in ("f1", "f2", "f3")}

    first = run(7)
    assert sum(len(v) for v in first.values()) == 9
    assert run(7) == first


def test_unknown_sorter_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown sorter 'fifo': expected one of drf, random"):
        allocator(role_sorter="fifo")
    with pytest.raises(ValueError, match="unknown sorter"):
        allocator(framework_sorter="fifo")


def test_shares_follow_recovered_resources() -> None:
    alloc = allocator()
    alloc.add_framework("f1", ["*"])
    with_agents(alloc, 2)
    offers = alloc.allocate(1.0)
    assert total_offered(offers, "f1", "cpus") == 8
    alloc.recover_resources("f1", "a0", offers["f1"]["*"]["a0"], 0, 1.0)
    assert alloc.framework_share("f1") == {"*": 0.5}
    alloc.validate()


# -- the sorters on their own --------------------------------------------------------------------


def _totals() -> ShareTotals:
    totals = ShareTotals()
    totals.add({"cpus": 10_000, "mem": 100_000})
    return totals


def test_drf_sorter_orders_by_share_count_and_name() -> None:
    sorter = DRFSorter(_totals())
    for client in ("c", "b", "a"):
        sorter.add(client)
        sorter.activate(client)
    sorter.allocated("a", {"cpus": 5_000})
    sorter.allocated("b", {"mem": 10_000})
    assert list(sorter.ordered()) == ["c", "b", "a"]
    assert sorter.share("a") == 0.5
    sorter.deactivate("c")
    assert list(sorter.ordered()) == ["b", "a"]
    sorter.unallocated("a", {"cpus": 5_000})
    assert list(sorter.ordered()) == ["a", "b"]
    assert sorter.count("a") == 1
    assert sorter.check() == []


def test_drf_sorter_rebuilds_when_totals_change() -> None:
    totals = _totals()
    sorter = DRFSorter(totals)
    for client in ("a", "b"):
        sorter.add(client)
        sorter.activate(client)
    sorter.allocated("a", {"cpus": 2_000})
    sorter.allocated("b", {"mem": 30_000})
    assert list(sorter.ordered()) == ["a", "b"]
    totals.add({"mem": 200_000})  # b's share falls from 0.3 to 0.1
    assert list(sorter.ordered()) == ["b", "a"]
    assert sorter.check() == []


def test_hierarchical_drf_sorter_moves_a_client_under_its_new_subtree() -> None:
    sorter = DRFSorter(_totals(), hierarchical=True)
    sorter.add("eng")
    sorter.activate("eng")
    sorter.allocated("eng", {"cpus": 3_000})
    sorter.add("ops")
    sorter.activate("ops")
    list(sorter.ordered())
    sorter.add("eng/web")
    sorter.activate("eng/web")
    assert list(sorter.ordered()) == ["ops", "eng/web", "eng"]
    assert sorter.share("eng") == pytest.approx(0.3)
    assert sorter.allocation("eng") == {"cpus": 3_000}
    sorter.remove("eng/web")
    sorter.allocated("ops", {"cpus": 2_000})
    assert list(sorter.ordered()) == ["ops", "eng"]
    sorter.update_weight("eng", 3.0)
    assert list(sorter.ordered()) == ["eng", "ops"]
    assert sorter.share("eng") == pytest.approx(0.1)
    assert sorter.check() == []
    with pytest.raises(ValueError, match="already in the sorter"):
        sorter.add("eng")


def test_random_sorter_keeps_allocations_and_activity() -> None:
    sorter = make_sorter("random", _totals(), random.Random(1), hierarchical=True)
    assert isinstance(sorter, RandomSorter)
    for client in ("a", "a/b", "c"):
        sorter.add(client)
        sorter.activate(client)
    sorter.allocated("a/b", {"cpus": 1_000})
    assert sorted(sorter.ordered()) == ["a", "a/b", "c"]
    assert sorter.allocation("a") == {"cpus": 1_000}
    assert sorter.share("a") == pytest.approx(0.1)
    sorter.deactivate("c")
    assert "c" not in list(sorter.ordered())
    sorter.unallocated("a/b", {"cpus": 1_000})
    sorter.remove("a/b")
    assert sorter.clients() == ["a", "c"]
    assert sorter.check() == []
