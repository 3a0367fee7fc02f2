"""Quota guarantees, headroom and limits; static and dynamic reservations."""

from __future__ import annotations

import pytest

from master.allocator import Quota
from protos.resources import Reservation, Resources

from .helpers import R, agents_of, allocator, decline_all, total_offered, with_agents

# -- guarantees and headroom ---------------------------------------------------------------------


def test_guarantees_are_served_before_drf() -> None:
    # fq already holds 4 cpus, so DRF alone would favour fr; q's guarantee of 12 cpus wins.
    alloc = allocator()
    alloc.add_framework("fq", ["q"])
    alloc.add_framework("fr", ["r"])
    alloc.add_agent("held", R("cpus:4;mem:1024"), used={"fq": {"q": R("cpus:4;mem:1024")}})
    with_agents(alloc, 4, "cpus:4;mem:1024")
    alloc.update_quota("q", guarantees=R("cpus:12"))
    offers = alloc.allocate(1.0)
    assert total_offered(offers, "fq", "cpus") == 8
    assert total_offered(offers, "fr", "cpus") == 8
    assert alloc.quota_consumed("q") == {"cpus": 12.0, "mem": 3072.0}
    alloc.validate()


def test_headroom_is_held_back_for_an_unmet_guarantee() -> None:
    # q has a guarantee but no framework yet: others may not take what q is owed.
    alloc = allocator()
    alloc.add_framework("fr", ["r"])
    with_agents(alloc, 4, "cpus:4;mem:1024")
    alloc.update_quota("q", guarantees=R("cpus:8"))
    offers = alloc.allocate(1.0)
    assert total_offered(offers, "fr", "cpus") == 8
    assert total_offered(offers, "fr", "mem") == 4096  # chopped: memory is not owed to anyone
    alloc.validate()
    alloc.add_framework("fq", ["q"])
    offers = alloc.allocate(2.0)
    assert total_offered(offers, "fq", "cpus") == 8
    alloc.validate()


def test_a_guarantee_larger_than_the_cluster_holds_everything_back() -> None:
    alloc = allocator()
    alloc.add_framework("fr", ["r"])
    with_agents(alloc, 2, "cpus:4")
    alloc.update_quota("q", guarantees=R("cpus:100"))
    assert alloc.allocate(1.0) == {}
    alloc.validate()


# -- limits --------------------------------------------------------------------------------------


def test_limits_chop_an_agent_to_fit() -> None:
    alloc = allocator()
    alloc.add_framework("fq", ["q"])
    with_agents(alloc, 2, "cpus:4;mem:1024")
    alloc.update_quota("q", limits=R("cpus:6"))
    offers = alloc.allocate(1.0)
    assert total_offered(offers, "fq", "cpus") == 6
    assert total_offered(offers, "fq", "mem") == 2048
    alloc.validate()
    assert alloc.allocate(2.0) == {}  # nothing more while at the limit


def test_limits_cover_subroles_of_the_limited_role() -> None:
    alloc = allocator()
    alloc.add_framework("web", ["q/web"])
    alloc.add_framework("db", ["q/db"])
    with_agents(alloc, 4, "cpus:4;mem:1024")
    alloc.update_quota("q", limits=R("cpus:5"))
    offers = alloc.allocate(1.0)
    assert total_offered(offers, "web", "cpus") + total_offered(offers, "db", "cpus") == 5
    alloc.validate()


def test_recovery_below_a_limit_lets_the_role_have_more() -> None:
    alloc = allocator()
    alloc.add_framework("fq", ["q"])
    with_agents(alloc, 2, "cpus:4;mem:1024")
    alloc.update_quota("q", limits=R("cpus:4"))
    offers = alloc.allocate(1.0)
    assert total_offered(offers, "fq", "cpus") == 4
    decline_all(alloc, offers, 1.0)
    offers = alloc.allocate(2.0)
    assert total_offered(offers, "fq", "cpus") == 4
    alloc.validate()


def test_quota_is_validated_precisely() -> None:
    alloc = allocator()
    with pytest.raises(ValueError, match="only be set on top-level roles, not on 'a/b'"):
        alloc.update_quota("a/b", limits=R("cpus:1"))
    with pytest.raises(ValueError, match="cannot be set on role"):
        alloc.update_quota("*", limits=R("cpus:1"))
    with pytest.raises(ValueError, match="must be unreserved"):
        alloc.update_quota("a", limits=R("cpus(a):1"))
    with pytest.raises(ValueError, match="must be scalars only"):
        alloc.update_quota("a", limits=R("ports:[1-2]"))
    with pytest.raises(ValueError, match="guarantee cpus:2 exceeds limit cpus:1"):
        alloc.update_quota("a", guarantees=R("cpus:2"), limits=R("cpus:1"))
    with pytest.raises(ValueError, match="invalid role"):
        alloc.update_quota("a b", limits=R("cpus:1"))
    assert alloc.quota_of("a") is None
    alloc.update_quota("a", guarantees=R("cpus:1"), limits=R("cpus:2;mem:10"))
    assert alloc.quota_of("a") == Quota({"cpus": 1000}, {"cpus": 2000, "mem": 10_000})
    alloc.update_quota("a")
    assert alloc.quota_of("a") is None


def test_a_limit_below_consumption_needs_force() -> None:
    alloc = allocator()
    alloc.add_framework("fq", ["q"])
    with_agents(alloc, 1, "cpus:4;mem:1024")
    alloc.allocate(1.0)
    with pytest.raises(
        ValueError, match=r"already consumes more than the new limit \(cpus 4 > 2\)"
    ):
        alloc.update_quota("q", limits=R("cpus:2"))
    assert alloc.quota_of("q") is None
    alloc.update_quota("q", limits=R("cpus:2"), force=True)
    alloc.validate()  # tolerated: the allocator did not cause it


def test_reservations_count_towards_consumption() -> None:
    alloc = allocator()
    alloc.add_agent("a0", R("cpus(q):3;cpus:1;mem:100"))
    alloc.update_quota("q", guarantees=R("cpus:2"))
    assert alloc.quota_consumed("q") == {"cpus": 3.0}


# -- reservations --------------------------------------------------------------------------------


def test_static_reservations_go_only_to_their_role() -> None:
    # "alpha" sorts first on a tie, so it takes the unreserved part; "zeta" gets its own cpus.
    alloc = allocator()
    alloc.add_framework("fa", ["alpha"])
    alloc.add_framework("fz", ["zeta"])
    alloc.add_agent("a0", R("cpus(zeta):2;cpus:2;mem:1024"))
    offers = alloc.allocate(1.0)
    assert offers["fa"]["alpha"]["a0"] == R("cpus:2;mem:1024")
    assert offers["fz"]["zeta"]["a0"] == R("cpus(zeta):2")
    alloc.validate()


def test_reservations_reach_subroles_but_not_siblings() -> None:
    alloc = allocator()
    alloc.add_framework("web", ["eng/web"])
    alloc.add_framework("ops", ["ops"])
    alloc.add_agent("a0", R("cpus(eng):2;mem(eng):64"))
    offers = alloc.allocate(1.0)
    assert offers == {"web": {"eng/web": {"a0": R("cpus(eng):2;mem(eng):64")}}}
    alloc.validate()


def test_reserved_resources_nobody_can_use_stay_free() -> None:
    alloc = allocator()
    alloc.add_framework("ops", ["ops"])
    alloc.add_agent("a0", R("cpus(eng):2;mem(eng):64"))
    assert alloc.allocate(1.0) == {}
    assert alloc.agent_free("a0") == R("cpus(eng):2;mem(eng):64")
    alloc.validate()


def test_dynamic_reservation_through_update_allocation() -> None:
    alloc = allocator()
    alloc.add_framework("f", ["eng"])
    alloc.add_framework("g", ["ops"])
    alloc.add_agent("a0", R("cpus:4;mem:1024"))
    offers = alloc.allocate(1.0)
    assert agents_of(offers, "f") == {"a0"}
    old = R("cpus:2")
    new = old.push_reservation(Reservation("eng", "dynamic", "alice"))
    alloc.update_allocation("f", "a0", "eng", old, new)
    assert alloc.agent_total("a0") == R("cpus(eng[dynamic:alice]):2;cpus:2;mem:1024")
    alloc.recover_resources("f", "a0", alloc.allocation_of("f")["eng"]["a0"], 0, 1.0)
    alloc.validate()
    offers = alloc.allocate(2.0)
    # g has the lower share now but may only have the unreserved part.
    assert offers["g"]["ops"]["a0"] == R("cpus:2;mem:1024")
    assert offers["f"]["eng"]["a0"] == new
    alloc.validate()


def test_update_allocation_rejects_a_change_of_quantities() -> None:
    alloc = allocator()
    alloc.add_framework("f", ["eng"])
    alloc.add_agent("a0", R("cpus:4;mem:1024"))
    alloc.allocate(1.0)
    with pytest.raises(ValueError, match="not the same quantities"):
        alloc.update_allocation("f", "a0", "eng", R("cpus:2"), R("cpus(eng):3"))
    with pytest.raises(ValueError, match="reserved outside role 'eng'"):
        alloc.update_allocation("f", "a0", "eng", R("cpus:2"), R("cpus(ops):2"))
    with pytest.raises(ValueError, match="does not hold"):
        alloc.update_allocation("f", "a0", "eng", R("cpus:9"), R("cpus(eng):9"))
    alloc.validate()


def test_dynamic_reservation_made_on_the_agent_total() -> None:
    alloc = allocator()
    alloc.add_framework("f", ["eng"])
    alloc.add_agent("a0", R("cpus:4"))
    reserved = R("cpus:2").push_reservation(Reservation("ops", "dynamic")) + R("cpus:2")
    alloc.update_agent("a0", reserved)
    offers = alloc.allocate(1.0)
    assert offers["f"]["eng"]["a0"] == Resources.scalars(cpus=2)
    alloc.validate()
