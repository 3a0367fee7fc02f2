"""Framework and agent life cycles, bad input, incrementality, and validate() itself."""

from __future__ import annotations

import pytest

import master.allocator as allocator_package
from master.allocator import InvariantViolation, RefuseFilter

from .helpers import R, agents_of, allocator, considered, decline_all, with_agents

# -- life cycles ---------------------------------------------------------------------------------


def test_removing_a_framework_frees_what_it_held() -> None:
    alloc = allocator()
    alloc.add_framework("f1", ["*"])
    with_agents(alloc, 2)
    decline_all(alloc, alloc.allocate(1.0), 1.0, refuse=100.0)
    alloc.allocate(2.0)
    alloc.remove_framework("f1")
    assert alloc.framework_ids() == []
    alloc.add_framework("f2", ["*"])
    assert agents_of(alloc.allocate(3.0), "f2") == {"a0", "a1"}
    alloc.validate()


def test_removing_an_agent_takes_its_allocations_and_filters() -> None:
    alloc = allocator()
    alloc.add_framework("f", ["*"])
    with_agents(alloc, 2)
    offers = alloc.allocate(1.0)
    alloc.recover_resources("f", "a1", offers["f"]["*"]["a1"], 100.0, 1.0)
    alloc.remove_agent("a0")
    alloc.remove_agent("a1")
    assert alloc.allocation_of("f") == {}
    assert alloc.filters_of("f") == []
    assert alloc.framework_share("f") == {"*": 0.0}
    assert alloc.agent_ids() == []
    alloc.validate()


def test_deactivated_agents_are_not_offered_until_activated() -> None:
    alloc = allocator()
    alloc.add_framework("f", ["*"])
    with_agents(alloc, 1)
    alloc.deactivate_agent("a0")
    assert alloc.allocate(1.0) == {}
    alloc.validate()
    alloc.activate_agent("a0")
    assert agents_of(alloc.allocate(2.0), "f") == {"a0"}


def test_agents_added_inactive() -> None:
    alloc = allocator()
    alloc.add_framework("f", ["*"])
    alloc.add_agent("a0", R("cpus:1;mem:64"), active=False)
    assert alloc.allocate(1.0) == {}
    alloc.activate_agent("a0")
    assert agents_of(alloc.allocate(2.0), "f") == {"a0"}


def test_used_resources_of_a_framework_not_yet_added() -> None:
    alloc = allocator()
    alloc.add_agent("a0", R("cpus:4;mem:1024"), used={"late": {"r": R("cpus:1;mem:64")}})
    alloc.validate()
    assert alloc.framework_ids() == []
    alloc.add_framework("late", ["r"])
    assert alloc.allocation_of("late") == {"r": {"a0": R("cpus:1;mem:64")}}
    assert agents_of(alloc.allocate(1.0), "late") == {"a0"}
    alloc.validate()


def test_a_placeholder_framework_vanishes_when_its_resources_come_back() -> None:
    alloc = allocator()
    alloc.add_agent("a0", R("cpus:4;mem:1024"), used={"gone": {"r": R("cpus:1")}})
    alloc.recover_resources("gone", "a0", R("cpus:1"), None, 1.0)
    alloc.validate()
    assert alloc.agent_free("a0") == R("cpus:4;mem:1024")


def test_update_agent_changes_the_total() -> None:
    alloc = allocator()
    alloc.add_framework("f", ["*"])
    with_agents(alloc, 1)
    offers = alloc.allocate(1.0)
    with pytest.raises(ValueError, match="new total lacks"):
        alloc.update_agent("a0", R("cpus:2;mem:4096"))
    alloc.update_agent("a0", R("cpus:8;mem:4096"))
    assert alloc.agent_free("a0") == R("cpus:4")
    assert offers["f"]["*"]["a0"] + R("cpus:4") == alloc.agent_total("a0")
    assert agents_of(alloc.allocate(2.0), "f") == {"a0"}
    alloc.validate()


def test_update_framework_capabilities_open_gpu_agents() -> None:
    alloc = allocator()
    alloc.add_framework("f", ["*"])
    alloc.add_agent("gpu", R("cpus:1;mem:64;gpus:1"))
    assert alloc.allocate(1.0) == {}
    alloc.update_framework("f", ["*"], ["GPU_RESOURCES"])
    assert agents_of(alloc.allocate(2.0), "f") == {"gpu"}


# -- bad input changes nothing -------------------------------------------------------------------


def test_bad_framework_input() -> None:
    alloc = allocator()
    alloc.add_framework("f", ["*"])
    with pytest.raises(ValueError, match="already added"):
        alloc.add_framework("f", ["*"])
    with pytest.raises(ValueError, match="at least one role"):
        alloc.add_framework("g", [])
    with pytest.raises(ValueError, match="invalid role"):
        alloc.add_framework("g", ["a//b"])
    with pytest.raises(ValueError, match="suppressed role"):
        alloc.add_framework("g", ["a"], suppressed_roles=["b"])
    with pytest.raises(ValueError, match="must not be empty"):
        alloc.add_framework("", ["a"])
    with pytest.raises(ValueError, match="not the string 'GPU_RESOURCES'"):
        alloc.add_framework("g", ["a"], "GPU_RESOURCES")
    assert alloc.framework_ids() == ["f"]
    with pytest.raises(KeyError, match="unknown framework 'g'"):
        alloc.suppress("g")
    with pytest.raises(KeyError, match="unknown framework"):
        alloc.remove_framework("g")
    alloc.validate()


def test_bad_agent_input() -> None:
    alloc = allocator()
    with_agents(alloc, 1)
    with pytest.raises(ValueError, match="already added"):
        alloc.add_agent("a0", R("cpus:1"))
    with pytest.raises(ValueError, match="is beyond its total"):
        alloc.add_agent("a1", R("cpus:1"), used={"f": {"*": R("cpus:2")}})
    with pytest.raises(ValueError, match="reserved to 'eng' in role 'ops'"):
        alloc.add_agent("a1", R("cpus(eng):1"), used={"f": {"ops": R("cpus(eng):1")}})
    with pytest.raises(KeyError, match="unknown agent 'zz'"):
        alloc.remove_agent("zz")
    assert alloc.agent_ids() == ["a0"]
    alloc.validate()


def test_recovering_what_is_not_held_is_refused_and_unknown_ids_are_ignored() -> None:
    alloc = allocator()
    alloc.add_framework("f", ["*"])
    with_agents(alloc, 1)
    alloc.allocate(1.0)
    with pytest.raises(ValueError, match="does not hold cpus:9"):
        alloc.recover_resources("f", "a0", R("cpus:9"), 0, 1.0)
    with pytest.raises(ValueError, match="in role 'x'"):
        alloc.recover_resources("f", "a0", R("cpus:1"), 0, 1.0, role="x")
    alloc.recover_resources("ghost", "a0", R("cpus:1"), 0, 1.0)
    alloc.recover_resources("f", "ghost", R("cpus:1"), 0, 1.0)
    alloc.recover_resources("f", "a0", R(""), 0, 1.0)
    alloc.validate()


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="allocation interval must be positive"):
        allocator(allocation_interval=0)


# -- incrementality ------------------------------------------------------------------------------


def test_a_quiet_cycle_looks_at_no_agent() -> None:
    alloc = allocator()
    alloc.add_framework("f", ["*"])
    with_agents(alloc, 100)
    alloc.allocate(1.0)
    assert considered(alloc) == 100
    alloc.allocate(2.0)
    assert considered(alloc) == 0
    alloc.recover_resources("f", "a7", R("cpus:1"), 0, 2.0)
    assert alloc.allocate(3.0) == {"f": {"*": {"a7": R("cpus:1")}}}
    assert considered(alloc) == 1


def test_idle_agents_wake_up_when_a_framework_arrives() -> None:
    alloc = allocator()
    with_agents(alloc, 3)
    assert alloc.allocate(1.0) == {}
    alloc.allocate(2.0)
    assert considered(alloc) == 0
    alloc.add_framework("f", ["*"])
    assert agents_of(alloc.allocate(3.0), "f") == {"a0", "a1", "a2"}


def test_the_package_exports_what_it_documents() -> None:
    for name in allocator_package.__all__:
        assert hasattr(allocator_package, name), name
    assert "HierarchicalAllocator" in allocator_package.__all__


# -- validate() catches corruption ---------------------------------------------------------------


def _busy() -> allocator_package.HierarchicalAllocator:
    alloc = allocator()
    alloc.add_framework("f", ["*"])
    alloc.add_framework("g", ["eng/web"])
    with_agents(alloc, 3)
    alloc.allocate(1.0)
    alloc.validate()
    return alloc


def test_validate_catches_an_over_allocated_agent() -> None:
    alloc = _busy()
    agent = alloc._core.agents["a0"]
    agent.allocated[("f", "*")] = agent.allocated.get(("f", "*"), R("")) + R("cpus:100")
    with pytest.raises(InvariantViolation, match="agent a0 is over-allocated"):
        alloc.validate()


def test_validate_catches_a_wrong_free_pool() -> None:
    alloc = _busy()
    alloc._core.agents["a1"].set_free(R("cpus:1"))
    with pytest.raises(InvariantViolation, match="agent a1: free is cpus:1"):
        alloc.validate()


def test_validate_catches_a_reservation_in_the_wrong_role() -> None:
    alloc = allocator()
    alloc.add_framework("f", ["ops"])
    alloc.add_agent("a0", R("cpus(eng):1;cpus:1;mem:64"))
    alloc.allocate(1.0)
    core = alloc._core
    fw = core.frameworks["f"]
    wrong = fw.allocated["ops"]["a0"] + R("cpus(eng):1")
    fw.allocated["ops"]["a0"] = wrong
    core.agents["a0"].allocated[("f", "ops")] = wrong
    with pytest.raises(InvariantViolation, match="reserved to eng are allocated to f in role ops"):
        alloc.validate()


def test_validate_catches_stale_sorter_shares() -> None:
    alloc = _busy()
    alloc._core.fw_sorters["*"].allocated("f", {"cpus": 1000})
    with pytest.raises(InvariantViolation, match="sorter has"):
        alloc.validate()


def test_validate_catches_a_quota_overrun() -> None:
    alloc = _busy()
    alloc.update_quota("eng", limits=R("cpus:100"))
    alloc._core.quota.quotas["eng"] = allocator_package.Quota({}, {"cpus": 1})
    with pytest.raises(InvariantViolation, match="over its limits"):
        alloc.validate()


def test_validate_catches_a_filter_for_an_unknown_agent() -> None:
    alloc = _busy()
    alloc._core.add_filter(RefuseFilter("f", "*", "nowhere", R("cpus:1"), 1.0, 10.0))
    with pytest.raises(InvariantViolation, match="names an unknown agent") as caught:
        alloc.validate()
    assert len(caught.value.problems) == 1


def test_validate_catches_a_lost_free_agent() -> None:
    alloc = _busy()
    alloc._core.agents["a0"].set_free(R(""))
    alloc._core.agents["a0"].allocated.clear()
    alloc._core.frameworks["f"].allocated.get("*", {}).pop("a0", None)
    alloc._core.frameworks["g"].allocated.get("eng/web", {}).pop("a0", None)
    alloc._core.agents["a0"].set_free(alloc.agent_total("a0"))
    alloc._core.idle.discard("a0")
    with pytest.raises(InvariantViolation, match="neither dirty nor idle"):
        alloc.validate()
