"""SandboxGC scheduling and disk pressure; remove_sandbox's confinement to the work dir."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from agent.gc import GC_DELAY_S, SandboxGC, remove_sandbox

DAY = 24 * 3600.0
A, B, C = Path("/w/a"), Path("/w/b"), Path("/w/c")


def test_paths_become_due_after_their_delay_soonest_first() -> None:
    gc = SandboxGC(default_delay=10)
    assert gc.schedule(A, now=0) == 10
    assert gc.schedule(B, now=1, delay=3) == 4
    gc.schedule(C, now=2)
    assert gc.next_due_at() == 4
    assert gc.due(3.9) == []
    assert gc.due(10) == [B, A]
    assert gc.due(100) == [C]
    assert gc.next_due_at() is None
    assert len(gc) == 0
    gc.validate()


def test_unschedule_keeps_a_sandbox_in_use_and_rescheduling_restarts_the_delay() -> None:
    gc = SandboxGC(default_delay=10)
    gc.schedule(A, now=0)
    gc.schedule(B, now=0)
    assert gc.unschedule(A)
    assert not gc.unschedule(A)
    gc.schedule(B, now=5)
    assert gc.due(10) == []
    assert gc.due(15) == [B]


def test_default_delay_is_a_week() -> None:
    gc = SandboxGC()
    assert gc.schedule(A, now=0) == GC_DELAY_S == 7 * DAY


@pytest.mark.parametrize(
    ("usage", "factor"), [(0.0, 0.9), (0.5, 0.4), (0.85, 0.05), (0.9, 0.0), (1.0, 0.0)]
)
def test_disk_pressure_factor_follows_mesos(usage: float, factor: float) -> None:
    gc = SandboxGC()
    assert gc.prune_for_disk(usage) == pytest.approx(factor)


def test_disk_pressure_shortens_and_relaxes_delays() -> None:
    gc = SandboxGC(default_delay=7 * DAY)
    gc.schedule(A, now=0)
    gc.schedule(B, now=3 * DAY)
    now = 4 * DAY
    assert gc.due(now) == []
    gc.prune_for_disk(0.5)  # delays become 2.8 days: A (4 days old) is due, B (1 day) not
    assert gc.due(now) == [A]
    gc.prune_for_disk(0.95)  # past the headroom: everything is due
    gc.schedule(C, now=now)
    assert gc.due(now) == [B, C]
    gc.schedule(A, now=now)
    gc.prune_for_disk(0.0, headroom=0.0)  # space came back: the full delay again
    assert gc.due(now + DAY) == []
    gc.validate()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda gc: gc.prune_for_disk(1.5), "usage_fraction"),
        (lambda gc: gc.prune_for_disk(-0.1), "usage_fraction"),
        (lambda gc: gc.prune_for_disk(0.5, headroom=2), "headroom"),
        (lambda gc: gc.prune_for_disk(float("nan")), "usage_fraction"),
        (lambda gc: gc.schedule(A, now=0, delay=-1), "delay"),
        (lambda gc: gc.schedule(A, now=float("inf")), "now"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(call: object, message: str) -> None:
    gc = SandboxGC(default_delay=10)
    with pytest.raises(ValueError, match=message):
        call(gc)  # type: ignore[operator]
    assert gc.factor == 1.0
    assert len(gc) == 0
    with pytest.raises(ValueError, match="default_delay"):
        SandboxGC(default_delay=-1)


def test_remove_sandbox_deletes_trees_tolerates_gone_paths(tmp_path: Path) -> None:
    work = tmp_path / "work"
    box = work / "slaves" / "s" / "runs" / "c1"
    (box / "sub").mkdir(parents=True)
    (box / "sub" / "f").write_text("x")
    os.chmod(box / "sub", 0o500)  # a task can leave read-only directories behind
    latest = box.parent / "latest"
    latest.symlink_to(box)
    assert asyncio.run(remove_sandbox(latest, work))
    assert box.exists(), "a link is removed, never what it points to"
    assert asyncio.run(remove_sandbox(box, work))
    assert not box.exists()
    assert not asyncio.run(remove_sandbox(box, work))


@pytest.mark.parametrize("where", ["/etc", "work", "work/../elsewhere", "elsewhere/x"])
def test_remove_sandbox_refuses_paths_outside_the_work_dir(tmp_path: Path, where: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "elsewhere" / "x").mkdir(parents=True)
    path = Path(where) if where.startswith("/") else tmp_path / where
    with pytest.raises(ValueError, match="refusing to remove"):
        asyncio.run(remove_sandbox(path, work))
    assert (tmp_path / "elsewhere" / "x").exists()


def test_remove_sandbox_refuses_a_path_reached_through_a_link_out(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    victim = tmp_path / "elsewhere" / "keep"
    victim.mkdir(parents=True)
    (work / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ValueError, match="resolves outside the work dir"):
        asyncio.run(remove_sandbox(work / "link" / "keep", work))
    assert victim.exists()
