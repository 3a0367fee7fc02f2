"""Helpers shared by the benchmarks: percentiles, CPU time, the machine, one-line JSON output,
and child processes that never outlive the benchmark.

Every benchmark that starts processes starts them with :func:`start_child` and calls
:func:`kill_children_on_signals` first thing in ``main``: its children then die with it however
it ends — normally, by an exception, by SIGTERM or SIGHUP (a timeout), or by SIGKILL (the
kernel's parent-death signal). See :mod:`emporion.testing.child_processes`.
"""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from emporion.testing.child_processes import kill_children, kill_children_on_signals, start_child

__all__ = [
    "cpu_seconds",
    "emit",
    "kill_children",
    "kill_children_on_signals",
    "machine",
    "percentile",
    "rounded",
    "start_child",
]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) by the nearest-rank method; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    """User + system CPU seconds used so far by this process (or ``RUSAGE_CHILDREN``)."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }


def rounded(value: float | None, digits: int = 4) -> float | None:
    """``value`` rounded for display (None stays None)."""
    return None if value is None else round(value, digits)


def emit(figures: Mapping[str, Any]) -> None:
    """Print one JSON object on one line of stdout: the benchmark's result."""
    sys.stdout.write(json.dumps(figures, sort_keys=False) + "\n")
    sys.stdout.flush()
