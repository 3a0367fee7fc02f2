"""Refuse filters, suppress/revive, GPU gating, minimum offer size, multi-role frameworks."""

from __future__ import annotations

import pytest

from master.allocator import (
    DEFAULT_REFUSE_SECONDS,
    MAX_REFUSE_SECONDS,
    parse_min_allocatable,
    refuse_timeout,
)

from .helpers import R, agents_of, allocator, considered, decline_all, with_agents

# -- refuse filters ------------------------------------------------------------------------------


def test_a_declined_agent_is_filtered_until_the_filter_expires() -> None:
    alloc = allocator()
    alloc.add_framework("f", ["*"])
    with_agents(alloc, 1)
    offers = alloc.allocate(1.0)
    decline_all(alloc, offers, 1.0, refuse=5.0)
    assert alloc.allocate(2.0) == {}
    assert alloc.allocate(6.0) == {}  # in force up to and including its expiry
    assert agents_of(alloc.allocate(6.5), "f") == {"a0"}
    alloc.validate()


def test_filter_expiry_alone_makes_the_agent_considered_again() -> None:
    alloc = allocator()
    alloc.add_framework("f", ["*"])
    with_agents(alloc, 1)
    decline_all(alloc, alloc.allocate(1.0), 1.0, refuse=2.0)
    alloc.allocate(2.0)
    assert considered(alloc) == 1
    alloc.allocate(3.0)
    assert considered(alloc) == 0  # idle: nothing changed
    assert agents_of(alloc.allocate(3.5), "f") == {"a0"}


def test_filters_last_at_least_one_allocation_interval() -> None:
    alloc = allocator(allocation_interval=10.0)
    alloc.add_framework("f", ["*"])
    with_agents(alloc, 1)
    decline_all(alloc, alloc.allocate(1.0), 1.0, refuse=0.5)
    (refused,) = alloc.filters_of("f")
    assert refused.expires_at == 11.0
    assert alloc.allocate(10.0) == {}
    assert agents_of(alloc.allocate(11.5), "f") == {"a0"}


def test_refuse_zero_creates_no_filter() -> None:
    alloc = allocator()
    alloc.add_framework("f", ["*"])
    with_agents(alloc, 1)
    decline_all(alloc, alloc.allocate(1.0), 1.0, refuse=0.0)
    assert alloc.filters_of("f") == []
    assert agents_of(alloc.allocate(2.0), "f") == {"a0"}


def test_refuse_seconds_defaults_and_caps() -> None:
    assert refuse_timeout(None, 1.0) == DEFAULT_REFUSE_SECONDS == 5.0
    assert refuse_timeout(-3, 1.0) == 5.0
    assert refuse_timeout(float("nan"), 1.0) == 5.0
    assert refuse_timeout(1e12, 1.0) == MAX_REFUSE_SECONDS == 365 * 86400
    assert refuse_timeout(0.2, 1.0) == 1.0
    assert refuse_timeout(0, 1.0) == 0.0
    assert refuse_timeout(30, 1.0) == 30


def test_filters_use_subset_semantics() -> None:
    alloc = allocator()
    alloc.add_framework("f", ["*"])
    with_agents(alloc, 1)
    alloc.allocate(1.0)
    # The framework keeps half (a task) and declines the other half for a long time.
    alloc.recover_resources("f", "a0", R("cpus:2;mem:2048"), 100.0, 1.0)
    assert alloc.allocate(2.0) == {}  # the same resources again: filtered
    # The task ends: now more is free than was refused, so the framework hears of it.
    alloc.recover_resources("f", "a0", R("cpus:2;mem:2048"), 0.0, 2.0)
    assert alloc.allocate(3.0) == {"f": {"*": {"a0": R("cpus:4;mem:4096")}}}
    alloc.validate()


def test_a_filter_holds_only_for_its_framework() -> None:
    alloc = allocator()
    alloc.add_framework("f1", ["*"])
    alloc.add_framework("f2", ["*"])
    with_agents(alloc, 1)
    offers = alloc.allocate(1.0)
    assert agents_of(offers, "f1") == {"a0"}
    decline_all(alloc, offers, 1.0, refuse=100.0)
    assert agents_of(alloc.allocate(2.0), "f2") == {"a0"}


def test_revive_clears_filters() -> None:
    alloc = allocator()
    alloc.add_framework("f", ["*"])
    with_agents(alloc, 1)
    decline_all(alloc, alloc.allocate(1.0), 1.0, refuse=100.0)
    assert alloc.allocate(2.0) == {}
    alloc.revive("f")
    assert alloc.filters_of("f") == []
    assert agents_of(alloc.allocate(3.0), "f") == {"a0"}
    alloc.validate()


def test_filters_are_per_role() -> None:
    alloc = allocator()
    alloc.add_framework("f", ["a", "b"])
    with_agents(alloc, 1)
    offers = alloc.allocate(1.0)
    assert agents_of(offers, "f", "a") == {"a0"}
    decline_all(alloc, offers, 1.0, refuse=100.0)
    assert agents_of(alloc.allocate(2.0), "f", "b") == {"a0"}
    alloc.revive("f", ["a"])
    assert [f.role for f in alloc.filters_of("f")] == []
    alloc.validate()


# -- suppress and revive -------------------------------------------------------------------------


def test_suppressed_framework_gets_nothing_until_revived() -> None:
    alloc = allocator()
    alloc.add_framework("f", ["*"])
    with_agents(alloc, 2)
    alloc.suppress("f")
    assert alloc.allocate(1.0) == {}
    alloc.revive("f")
    assert agents_of(alloc.allocate(2.0), "f") == {"a0", "a1"}
    alloc.validate()


def test_suppress_is_per_role() -> None:
    alloc = allocator()
    alloc.add_framework("f", ["a", "b"], suppressed_roles=["a"])
    with_agents(alloc, 2)
    offers = alloc.allocate(1.0)
    assert agents_of(offers, "f", "b") == {"a0", "a1"}
    assert agents_of(offers, "f", "a") == set()
    with pytest.raises(ValueError, match="not subscribed to role"):
        alloc.suppress("f", ["c"])
    with pytest.raises(ValueError, match="collection of role names"):
        alloc.suppress("f", "a")


def test_a_suppressed_framework_leaves_resources_to_others() -> None:
    alloc = allocator()
    alloc.add_framework("f1", ["*"])
    alloc.add_framework("f2", ["*"])
    alloc.suppress("f1")
    with_agents(alloc, 2)
    assert agents_of(alloc.allocate(1.0), "f2") == {"a0", "a1"}


# -- GPU gating ----------------------------------------------------------------------------------


def test_gpu_agents_go_only_to_gpu_capable_frameworks() -> None:
    alloc = allocator()
    alloc.add_framework("plain", ["*"])
    alloc.add_agent("gpu", R("cpus:4;mem:4096;gpus:1"))
    assert alloc.allocate(1.0) == {}
    alloc.add_framework("cuda", ["*"], ["GPU_RESOURCES"])
    assert agents_of(alloc.allocate(2.0), "cuda") == {"gpu"}
    alloc.add_agent("cpu", R("cpus:4;mem:4096"))
    alloc.suppress("cuda")
    assert agents_of(alloc.allocate(3.0), "plain") == {"cpu"}
    alloc.validate()


# -- minimum allocatable resources ---------------------------------------------------------------


def test_offers_below_the_default_minimum_are_not_made() -> None:
    alloc = allocator()
    alloc.add_framework("f", ["*"])
    alloc.add_agent("tiny", R("cpus:0.005;mem:16;disk:100"))
    alloc.add_agent("mem-only", R("mem:32"))
    assert agents_of(alloc.allocate(1.0), "f") == {"mem-only"}
    alloc.validate()


def test_the_minimum_is_configurable_globally_and_per_framework_role() -> None:
    alloc = allocator(min_allocatable_resources="cpus:1;mem:128")
    alloc.add_framework("big", ["*"], min_allocatable={"*": ["cpus:2"]})
    alloc.add_framework("small", ["*"])
    alloc.add_agent("a0", R("cpus:1;mem:4096"))
    alloc.add_agent("a1", R("cpus:0.5;mem:4096"))
    offers = alloc.allocate(1.0)
    assert offers == {"small": {"*": {"a0": R("cpus:1;mem:4096")}}}
    with pytest.raises(ValueError, match="not a framework role"):
        alloc.update_framework("big", ["*"], min_allocatable={"x": [{"cpus": 1.0}]})


def test_min_allocatable_parsing() -> None:
    assert parse_min_allocatable("cpus:0.01|mem:32") == ({"cpus": 10}, {"mem": 32_000})
    assert parse_min_allocatable("cpus:1;mem:2") == ({"cpus": 1000, "mem": 2000},)
    with pytest.raises(ValueError, match="only unreserved scalars"):
        parse_min_allocatable("cpus(a):1")


# -- multi-role frameworks -----------------------------------------------------------------------


def test_a_multi_role_framework_gets_one_offer_per_role_on_an_agent() -> None:
    alloc = allocator()
    alloc.add_framework("f", ["a", "b"])
    alloc.add_agent("a0", R("cpus(a):1;cpus(b):1;cpus:2;mem:1024"))
    offers = alloc.allocate(1.0)
    assert offers == {
        "f": {"a": {"a0": R("cpus(a):1;cpus:2;mem:1024")}, "b": {"a0": R("cpus(b):1")}}
    }
    assert set(alloc.framework_share("f")) == {"a", "b"}
    alloc.validate()


def test_recovering_needs_the_role_when_it_is_ambiguous() -> None:
    alloc = allocator()
    alloc.add_framework("f", ["a", "b"])
    alloc.add_agent("a0", R("cpus:2;mem:64"), used={"f": {"a": R("cpus:1"), "b": R("cpus:1")}})
    with pytest.raises(ValueError, match="could be held in role"):
        alloc.recover_resources("f", "a0", R("cpus:1"), 0, 1.0)
    alloc.recover_resources("f", "a0", R("cpus:1"), 0, 1.0, role="b")
    alloc.recover_resources("f", "a0", R("cpus:1"), 0, 1.0)  # only role a holds it now
    assert alloc.allocation_of("f") == {}
    alloc.validate()


def test_roles_left_by_update_framework_keep_their_allocation_until_recovered() -> None:
    alloc = allocator()
    alloc.add_framework("f", ["a", "b"])
    with_agents(alloc, 1)
    offers = alloc.allocate(1.0)
    assert agents_of(offers, "f", "a") == {"a0"}
    alloc.update_framework("f", ["b"])
    assert set(alloc.framework_share("f")) == {"a", "b"}
    alloc.validate()
    decline_all(alloc, offers, 1.0, refuse=100.0)
    assert alloc.filters_of("f") == []  # no filter for a role it no longer has
    assert set(alloc.framework_share("f")) == {"b"}
    assert agents_of(alloc.allocate(2.0), "f", "b") == {"a0"}
    alloc.validate()
