"""The recovery pause: no offers until 80 % of the expected agents are added, or a deadline."""

from __future__ import annotations

import logging

import pytest

from master.allocator import AGENT_RECOVERY_FACTOR, HierarchicalAllocator, RecoveryPaused

from .helpers import AGENT, R, agents_of, allocator, with_agents


def _paused(expected: int = 10, timeout: float = 600.0) -> HierarchicalAllocator:
    alloc = allocator()
    alloc.add_framework("f", ["r"])
    alloc.pause_for_recovery(expected, 100.0, timeout)
    return alloc


def _is_paused(alloc: HierarchicalAllocator) -> bool:
    return alloc.recovery_pause is not None


def test_the_factor_is_mesos_s() -> None:
    assert AGENT_RECOVERY_FACTOR == 0.8


def test_nothing_is_offered_until_eight_of_ten_agents_are_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="master.allocator")
    alloc = _paused()
    assert "waiting for 8 of 10 expected agents" in caplog.text
    pause = alloc.recovery_pause
    assert pause is not None
    assert pause.to_dict() == {
        "expected_agents": 10,
        "wanted_agents": 8,
        "started_at": 100.0,
        "deadline": 700.0,
    }
    for index in range(7):
        alloc.add_agent(f"a{index}", R(AGENT), now=101.0)
        assert alloc.allocate(101.0) == {}
        alloc.validate()
    assert alloc.last_cycle is None  # No cycle ran at all.
    alloc.add_agent("a7", R(AGENT), now=102.5)
    assert not _is_paused(alloc)
    assert "allocation resumes: 8 agents added (8 wanted of 10 expected) 2.500 s" in caplog.text
    assert agents_of(alloc.allocate(103.0), "f") == {f"a{i}" for i in range(8)}
    alloc.validate()


def test_the_deadline_ends_the_pause(caplog: pytest.LogCaptureFixture) -> None:
    alloc = _paused(timeout=30.0)
    with_agents(alloc, 3)
    assert alloc.allocate(129.9) == {}
    assert _is_paused(alloc)
    assert agents_of(alloc.allocate(130.0), "f") == {"a0", "a1", "a2"}
    assert not _is_paused(alloc)
    assert "the recovery timeout passed with 3 agents added" in caplog.text


@pytest.mark.parametrize("expected", [0, 1])
def test_no_pause_when_no_agent_is_awaited(expected: int) -> None:
    alloc = _paused(expected)
    assert alloc.recovery_pause is None
    with_agents(alloc, 1)
    assert agents_of(alloc.allocate(100.0), "f") == {"a0"}


def test_no_pause_when_enough_agents_are_already_added() -> None:
    alloc = allocator()
    with_agents(alloc, 4)
    alloc.pause_for_recovery(5, 0.0, 60.0)
    assert alloc.recovery_pause is None


def test_a_framework_asking_why_hears_of_the_pause() -> None:
    alloc = _paused(expected=20, timeout=60.0)
    with_agents(alloc, 5)
    alloc.allocate(101.0)
    (reason,) = alloc.explain("f")
    assert isinstance(reason, RecoveryPaused)
    assert (reason.agents, reason.wanted, reason.expected, reason.until) == (5, 16, 20, 160.0)
    assert reason.to_dict()["code"] == "RECOVERY_PAUSED"
    assert "5 of the 16 it waits for are back (20 expected)" in reason.message


def test_agents_removed_during_the_pause_count_no_more() -> None:
    alloc = _paused(expected=5)
    ids = with_agents(alloc, 3)
    alloc.remove_agent(ids[0])
    alloc.add_agent("late", R(AGENT))
    assert _is_paused(alloc)  # 3 of the 4 wanted
    alloc.add_agent("later", R(AGENT))
    assert not _is_paused(alloc)
    assert agents_of(alloc.allocate(101.0), "f") == {"a1", "a2", "late", "later"}


@pytest.mark.parametrize(
    ("expected", "timeout", "factor", "message"),
    [
        (-1, 60.0, 0.8, "expected agents must be >= 0, got -1"),
        (True, 60.0, 0.8, "expected agents must be an integer, not True"),
        (2.5, 60.0, 0.8, "expected agents must be an integer, not 2.5"),
        (10, 0.0, 0.8, "recovery timeout must be a positive number of seconds, not 0.0"),
        (10, float("inf"), 0.8, "recovery timeout must be a positive number of seconds, not inf"),
        (10, 60.0, 0.0, r"agent recovery factor must be in \(0, 1\], not 0.0"),
        (10, 60.0, 1.5, r"agent recovery factor must be in \(0, 1\], not 1.5"),
    ],
)
def test_bad_arguments_are_refused_and_change_nothing(
    expected: int, timeout: float, factor: float, message: str
) -> None:
    alloc = allocator()
    alloc.add_framework("f", ["r"])
    with pytest.raises(ValueError, match=message):
        alloc.pause_for_recovery(expected, 0.0, timeout, factor)
    assert alloc.recovery_pause is None
    with_agents(alloc, 1)
    assert agents_of(alloc.allocate(0.0), "f") == {"a0"}


def test_a_second_pause_is_refused() -> None:
    alloc = _paused()
    with pytest.raises(ValueError, match="already paused"):
        alloc.pause_for_recovery(100, 100.0, 60.0)
    pause = alloc.recovery_pause
    assert pause is not None
    assert pause.expected == 10
