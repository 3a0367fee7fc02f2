"""The recovery pause: no offers until the expected agents are back, or 80 % of them and their
burst is over, or a deadline."""

from __future__ import annotations

import logging

import pytest

from master.allocator import AGENT_RECOVERY_FACTOR, HierarchicalAllocator, RecoveryPaused

from .helpers import AGENT, R, agents_of, allocator, with_agents


def _paused(expected: int = 10, timeout: float = 600.0) -> HierarchicalAllocator:
    alloc = allocator(allocation_interval=1.0)
    alloc.add_framework("f", ["r"])
    alloc.pause_for_recovery(expected, 100.0, timeout)
    return alloc


def _is_paused(alloc: HierarchicalAllocator) -> bool:
    return alloc.recovery_pause is not None


def _add(alloc: HierarchicalAllocator, names: range | list[int], now: float) -> None:
    for index in names:
        alloc.add_agent(f"a{index}", R(AGENT), now=now)


def test_the_factor_is_mesos_s() -> None:
    assert AGENT_RECOVERY_FACTOR == 0.8


def test_nothing_is_offered_until_every_expected_agent_is_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="master.allocator")
    alloc = _paused()
    assert "waiting for 10 expected agents to reregister (at least 8" in caplog.text
    pause = alloc.recovery_pause
    assert pause is not None
    assert pause.to_dict() == {
        "expected_agents": 10,
        "wanted_agents": 8,
        "started_at": 100.0,
        "deadline": 700.0,
        "last_added": 100.0,
        "wanted_at": None,
    }
    for index in range(9):
        _add(alloc, [index], 100.5 + index / 10)
        assert alloc.allocate(100.5 + index / 10) == {}
        alloc.validate()
    assert alloc.last_cycle is None  # No cycle ran at all.
    _add(alloc, [9], 101.5)
    assert not _is_paused(alloc)
    assert "resumes 1.500 s after recovery, every expected agent is back" in caplog.text
    assert agents_of(alloc.allocate(101.5), "f") == {f"a{i}" for i in range(10)}
    alloc.validate()


def test_eighty_percent_and_a_quiet_interval_end_the_pause(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="master.allocator")
    alloc = _paused()
    _add(alloc, range(7), 101.0)
    assert alloc.allocate(103.0) == {}  # Quiet, but 7 is less than 80 %.
    _add(alloc, [7], 104.0)
    pause = alloc.recovery_pause
    assert pause is not None
    assert pause.wanted_at == 104.0
    assert alloc.allocate(104.9) == {}  # Agents still came within the interval.
    alloc.validate()
    assert agents_of(alloc.allocate(105.0), "f") == {f"a{i}" for i in range(8)}
    assert not _is_paused(alloc)
    assert "no agent came back for 1.000 s: 8 agents added (10 expected, 8 wanted)" in caplog.text


def test_agents_that_keep_coming_hold_the_pause_no_longer_than_the_first_did() -> None:
    alloc = _paused(expected=10)
    _add(alloc, range(8), 104.0)  # 80 % after 4 s
    for step in range(7):  # One agent removed and added again every half second.
        now = 104.5 + step / 2
        alloc.remove_agent("a0")
        _add(alloc, [0], now)
        assert alloc.allocate(now) == {}
    assert agents_of(alloc.allocate(108.0), "f") == {f"a{i}" for i in range(8)}


def test_the_deadline_ends_the_pause(caplog: pytest.LogCaptureFixture) -> None:
    alloc = _paused(timeout=30.0)
    with_agents(alloc, 3)
    assert alloc.allocate(129.9) == {}
    assert _is_paused(alloc)
    assert agents_of(alloc.allocate(130.0), "f") == {"a0", "a1", "a2"}
    assert not _is_paused(alloc)
    assert "resumes 30.000 s after recovery, the recovery timeout passed" in caplog.text
    assert caplog.records[-1].levelno == logging.WARNING


@pytest.mark.parametrize("expected", [0, 1])
def test_no_pause_when_no_agent_is_awaited(expected: int) -> None:
    alloc = _paused(expected)
    assert alloc.recovery_pause is None
    with_agents(alloc, 1)
    assert agents_of(alloc.allocate(100.0), "f") == {"a0"}


def test_no_pause_when_every_agent_is_already_added() -> None:
    alloc = allocator()
    with_agents(alloc, 5)
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
    assert "5 of 20 expected agents are back; offers resume once all are, once 16" in (
        reason.message
    )


def test_agents_removed_during_the_pause_count_no_more() -> None:
    alloc = _paused(expected=3)
    _add(alloc, range(2), 101.0)
    alloc.remove_agent("a0")
    _add(alloc, [2], 101.0)
    assert _is_paused(alloc)  # 2 of the 3 expected
    _add(alloc, [3], 101.0)
    assert not _is_paused(alloc)
    assert agents_of(alloc.allocate(101.0), "f") == {"a1", "a2", "a3"}


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
