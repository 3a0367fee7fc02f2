"""The simulator finds what breaks: faults injected into the real cores are caught.

Each test breaks one promise of the master's core for the length of one run and checks that
the run reports it: a resource leak (the allocator never gets a finished task's resources back)
and a lost terminal update (the master swallows TASK_FINISHED).
"""

from __future__ import annotations

from typing import Any

import pytest

from emporion.testing.simulation import run_seed
from master.allocator import HierarchicalAllocator
from master.core import tasks
from protos.v1 import mesos_pb2

SEED = 0
"""A seed whose tasks finish, with no fault needed to show these bugs."""


def test_the_seed_passes_unbroken() -> None:
    outcome = run_seed(SEED)
    assert outcome.violation is None, outcome.violation
    assert outcome.counts["tasks_launched"] > 10


def test_a_leak_in_the_allocator_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    real = HierarchicalAllocator.recover_resources

    def leaky(self: HierarchicalAllocator, *args: Any, **kwargs: Any) -> None:
        refuse = args[3] if len(args) > 3 else kwargs.get("refuse_seconds")
        if refuse == 0:
            return  # A finished task's resources never come back.
        real(self, *args, **kwargs)

    monkeypatch.setattr(HierarchicalAllocator, "recover_resources", leaky)
    outcome = run_seed(SEED)
    assert outcome.violation is not None
    assert outcome.violation.kind in ("master-invariant", "liveness"), outcome.violation


def test_a_swallowed_terminal_update_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    real = tasks.status_update

    def forgetful(state: Any, agent: Any, update: Any, now: float) -> None:
        if update.status.state == mesos_pb2.TASK_FINISHED:
            return  # Never forwarded, never acknowledged.
        real(state, agent, update, now)

    monkeypatch.setattr(tasks, "status_update", forgetful)
    outcome = run_seed(SEED, validate_every_step=False)
    assert outcome.violation is not None
    assert outcome.violation.kind == "liveness", outcome.violation
    detail = outcome.violation.detail
    assert "not seen terminal" in detail or "the master counts live tasks" in detail, detail
