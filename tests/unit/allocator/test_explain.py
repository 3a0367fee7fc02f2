"""Explanations: one test per reason code, plus their JSON form."""

from __future__ import annotations

import json

import pytest

from master.allocator import (
    Explanation,
    Filtered,
    GpuGated,
    Inactive,
    NoActiveAgents,
    NoAgentLargeEnough,
    OutrankedByDRF,
    QuotaHeadroom,
    QuotaLimit,
    ReasonCode,
    Suppressed,
)

from .helpers import R, allocator, decline_all, with_agents


def only(explanations: list[Explanation], kind: type[Explanation]) -> Explanation:
    found = [e for e in explanations if isinstance(e, kind)]
    assert len(found) == 1, explanations
    return found[0]


def test_inactive() -> None:
    alloc = allocator()
    alloc.add_framework("f", ["*"])
    with_agents(alloc, 1)
    alloc.deactivate_framework("f")
    assert alloc.allocate(1.0) == {}
    (reason,) = alloc.explain("f")
    assert isinstance(reason, Inactive)
    assert reason.code is ReasonCode.INACTIVE
    assert "inactive" in reason.message
    alloc.activate_framework("f")
    assert alloc.allocate(2.0)


def test_no_active_agents() -> None:
    alloc = allocator()
    alloc.add_framework("f", ["*"])
    alloc.allocate(1.0)
    assert [type(e) for e in alloc.explain("f")] == [NoActiveAgents]
    with_agents(alloc, 1)
    alloc.deactivate_agent("a0")
    alloc.allocate(2.0)
    assert [e.code for e in alloc.explain("f")] == [ReasonCode.NO_ACTIVE_AGENTS]


def test_suppressed_names_the_roles() -> None:
    alloc = allocator()
    alloc.add_framework("f", ["a", "b"], suppressed_roles=["b"])
    alloc.allocate(1.0)
    with_agents(alloc, 1)
    alloc.allocate(2.0)
    reason = only(alloc.explain("f"), Suppressed)
    assert isinstance(reason, Suppressed)
    assert reason.roles == ("b",)
    assert "REVIVE" in reason.message


def test_filtered_counts_every_candidate_and_the_first_expiry() -> None:
    alloc = allocator()
    alloc.add_framework("f", ["*"])
    with_agents(alloc, 2)
    offers = alloc.allocate(1.0)
    alloc.recover_resources("f", "a0", offers["f"]["*"]["a0"], 10.0, 1.0)
    alloc.recover_resources("f", "a1", offers["f"]["*"]["a1"], 20.0, 1.0)
    assert alloc.allocate(2.0) == {}
    reason = only(alloc.explain("f"), Filtered)
    assert isinstance(reason, Filtered)
    assert (reason.agents, reason.candidates, reason.earliest_expiry) == (2, 2, 11.0)
    assert reason.message.startswith("all 2 agent(s)")


def test_filtered_counts_agents_that_went_to_others() -> None:
    alloc = allocator()
    alloc.add_framework("f1", ["*"])
    alloc.add_framework("f2", ["*"])
    with_agents(alloc, 1)
    offers = alloc.allocate(1.0)
    decline_all(alloc, offers, 1.0, refuse=30.0)
    offers = alloc.allocate(2.0)
    assert "f2" in offers
    reason = only(alloc.explain("f1"), Filtered)
    assert isinstance(reason, Filtered)
    assert reason.earliest_expiry == 31.0


def test_quota_limit() -> None:
    alloc = allocator()
    alloc.add_framework("f", ["q/x"])
    with_agents(alloc, 2)
    alloc.update_quota("q", limits=R("cpus:4"))
    alloc.allocate(1.0)
    alloc.allocate(2.0)
    reason = only(alloc.explain("f"), QuotaLimit)
    assert isinstance(reason, QuotaLimit)
    assert reason.quota_role == "q"
    assert reason.limits == {"cpus": 4.0}
    assert reason.consumed == {"cpus": 4.0, "mem": 8192.0}  # memory is not limited
    assert "cpus 4/4" in reason.message


def test_quota_headroom() -> None:
    alloc = allocator()
    alloc.add_framework("f", ["r"])
    with_agents(alloc, 2, "cpus:4;mem:1024")
    alloc.update_quota("q", guarantees=R("cpus:4"))
    alloc.allocate(1.0)
    reason = only(alloc.explain("f"), QuotaHeadroom)
    assert isinstance(reason, QuotaHeadroom)
    assert reason.agents == 1


def test_no_agent_large_enough() -> None:
    alloc = allocator()
    alloc.add_framework("f", ["*"], min_allocatable={"*": ["cpus:8"]})
    with_agents(alloc, 2)
    alloc.allocate(1.0)
    reason = only(alloc.explain("f"), NoAgentLargeEnough)
    assert isinstance(reason, NoAgentLargeEnough)
    assert reason.candidates == 2
    assert reason.min_allocatable == ({"cpus": 8.0},)
    assert reason.largest_free == {"cpus": 4.0, "mem": 4096.0}
    assert "minimum cpus:8" in reason.message


def test_a_full_cluster_reads_as_no_free_resources() -> None:
    alloc = allocator()
    alloc.add_framework("f", ["*"])
    alloc.add_agent("a0", R("cpus:1;mem:64"), used={"g": {"*": R("cpus:1;mem:64")}})
    alloc.allocate(1.0)
    reason = only(alloc.explain("f"), NoAgentLargeEnough)
    assert isinstance(reason, NoAgentLargeEnough)
    assert reason.candidates == 0
    assert reason.message == "no active agent has free resources for role *"


def test_outranked_by_drf_names_the_winners_and_their_shares() -> None:
    alloc = allocator()
    alloc.add_framework("rich", ["*"])
    alloc.add_framework("poor", ["*"])
    alloc.add_agent("held", R("cpus:4;mem:4096"), used={"rich": {"*": R("cpus:4;mem:4096")}})
    alloc.add_agent("a0", R("cpus:4;mem:4096"))
    offers = alloc.allocate(1.0)
    assert "poor" in offers
    assert alloc.explain("poor") == []
    reason = only(alloc.explain("rich"), OutrankedByDRF)
    assert isinstance(reason, OutrankedByDRF)
    assert reason.share == pytest.approx(0.5)
    assert [(w.framework_id, w.share, w.agents) for w in reason.winners] == [("poor", 0.0, 1)]
    assert "poor (role *, share 0" in reason.message


def test_gpu_gated() -> None:
    alloc = allocator()
    alloc.add_framework("f", ["*"])
    alloc.add_agent("gpu", R("cpus:4;mem:4096;gpus:2"))
    alloc.allocate(1.0)
    reason = only(alloc.explain("f"), GpuGated)
    assert isinstance(reason, GpuGated)
    assert reason.agents == 1
    assert "GPU_RESOURCES" in reason.message


def test_explanations_serialise_to_json() -> None:
    alloc = allocator()
    alloc.add_framework("rich", ["*"], suppressed_roles=())
    alloc.add_framework("poor", ["*", "x"], suppressed_roles=["x"])
    alloc.add_agent("held", R("cpus:4;mem:4096"), used={"poor": {"*": R("cpus:4;mem:4096")}})
    alloc.add_agent("a0", R("cpus:4;mem:4096"))
    alloc.allocate(1.0)
    for framework_id in ("rich", "poor"):
        for reason in alloc.explain(framework_id):
            data = json.loads(json.dumps(reason.to_dict()))
            assert data["code"] == reason.code.value
            assert data["message"] == reason.message
            assert data["framework_id"] == framework_id
            assert data["cycle"] == 1


def test_unknown_framework_cannot_be_explained() -> None:
    with pytest.raises(KeyError, match="unknown framework 'nope'"):
        allocator().explain("nope")
