"""Deadlines: the heap of timers behind ``tick``."""

from __future__ import annotations

from master.core.timers import Deadlines


def test_due_in_order_and_forgotten() -> None:
    timers: Deadlines[str] = Deadlines()
    timers.set("b", 2.0)
    timers.set("a", 1.0)
    timers.set("c", 3.0)
    assert timers.next_due() == 1.0
    assert timers.pop_due(2.0) == ["a", "b"]
    assert timers.pop_due(2.5) == []
    assert "c" in timers
    assert len(timers) == 1


def test_reset_and_cancel() -> None:
    timers: Deadlines[str] = Deadlines()
    timers.set("a", 1.0)
    timers.set("a", 5.0)  # Replaces the first deadline.
    timers.set("b", 2.0)
    timers.cancel("b")
    assert timers.pop_due(3.0) == []
    assert timers.get("a") == 5.0
    assert timers.pop_due(5.0) == ["a"]
    assert timers.next_due() is None


def test_stale_entries_are_compacted() -> None:
    timers: Deadlines[int] = Deadlines()
    for round_ in range(100):
        for key in range(10):
            timers.set(key, float(round_))
    assert len(timers) == 10
    assert len(timers._heap) <= 64 + 4 * 10
    assert sorted(timers.pop_due(1000.0)) == list(range(10))
