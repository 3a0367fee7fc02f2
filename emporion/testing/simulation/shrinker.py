"""Shrink a failing run to the fewest actions that still fail the same way.

A run is its seed and the actions it keeps (:meth:`Scenario.keep`), so shrinking is delta
debugging over the action list (Zeller's ddmin, greedily): drop halves, then quarters, ... of the
actions still kept, keeping any cut after which the run still fails with the same
:func:`signature`; then drop single actions. Everything the actions lead to (offers, delays,
what the cores decide) is played anew each time, so what is left is a whole run that fails,
not a trace cut out of one. A budget of runs bounds the work.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from emporion.testing.simulation.runner import Outcome, run_seed
from emporion.testing.simulation.workload import make_scenario
from emporion.testing.simulation.world import Violation

__all__ = ["Shrunk", "shrink", "signature"]

_ERROR_NAME = re.compile(r"\b([A-Z]\w*(?:Error|Exception))\b")


def signature(violation: Violation) -> str:
    """What two violations must share to count as the same failure: the kind, and the name of
    the exception involved (if any)."""
    match = _ERROR_NAME.search(violation.detail)
    return f"{violation.kind}:{match.group(1) if match else ''}"


@dataclass(frozen=True)
class Shrunk:
    """Shrunk: the kept action indexes (of the seed's full list) and the run they give."""

    seed: int
    keep: frozenset[int]
    outcome: Outcome
    runs: int


def shrink(
    seed: int,
    violation: Violation,
    *,
    budget: int = 150,
    run: Callable[[int, frozenset[int]], Outcome] = run_seed,
) -> Shrunk | None:
    """The smallest failing set of actions found within ``budget`` runs (None if even the
    whole seed no longer fails the same way)."""
    wanted = signature(violation)
    runs = 0
    best: Outcome | None = None

    def fails(keep: frozenset[int]) -> bool:
        nonlocal runs, best
        runs += 1
        outcome = run(seed, keep)
        if outcome.violation is not None and signature(outcome.violation) == wanted:
            best = outcome
            return True
        return False

    kept = list(range(len(make_scenario(seed).actions)))
    if not fails(frozenset(kept)):
        return None
    chunks = 2
    while len(kept) >= 1 and runs < budget:
        size = max(1, len(kept) // chunks)
        cut = False
        start = 0
        while start < len(kept) and runs < budget:
            candidate = kept[:start] + kept[start + size :]
            if fails(frozenset(candidate)):
                kept = candidate
                cut = True
            else:
                start += size
        if size == 1 and not cut:
            break
        if not cut:
            chunks = min(len(kept), chunks * 2)
    assert best is not None
    return Shrunk(seed, frozenset(kept), best, runs)
