"""World: what every node of one simulated run shares: time, network, randomness, the record.

A node reports what broke with :meth:`World.violation`; the first one stops the run (the
checker's later findings would only follow from it). ``trace`` keeps the last lines of what
happened, printed with a failure; ``counts`` feeds the benchmark's JSON.
"""

from __future__ import annotations

import random
from collections import Counter, deque
from dataclasses import dataclass

from emporion.testing.simulation.loop import SimLoop
from emporion.testing.simulation.network import Network

__all__ = ["TRACE_LINES", "Violation", "World"]

TRACE_LINES = 400
"""Lines of the run's trace kept for a failure report."""


@dataclass(frozen=True)
class Violation:
    """Violation is one broken promise: ``kind`` (stable, used to match it when shrinking) and
    ``detail`` (what exactly), at simulated second ``at``."""

    kind: str
    detail: str
    at: float

    def __str__(self) -> str:
        return f"[{self.kind}] at t={self.at:.3f}: {self.detail}"


class World:
    """World of one run; ``seed`` derives every random stream, so a run is its seed."""

    def __init__(self, seed: int, *, validate_every_step: bool = True, trace: bool = True) -> None:
        self.seed = seed
        self.loop = SimLoop()
        self.net = Network(self.loop, random.Random(f"{seed}:net"))
        self.rng = random.Random(f"{seed}:nodes")
        self.validate_every_step = validate_every_step
        self.violations: list[Violation] = []
        self.counts: Counter[str] = Counter()
        self._trace: deque[str] | None = deque(maxlen=TRACE_LINES) if trace else None

    def rng_for(self, name: str) -> random.Random:
        """A random stream of its own for ``name`` (an agent's backoff, a session's jitter)."""
        return random.Random(f"{self.seed}:{name}")

    @property
    def failed(self) -> bool:
        """Whether a violation was found."""
        return bool(self.violations)

    def violation(self, kind: str, detail: str) -> None:
        """Record a violation (it stops the run)."""
        found = Violation(kind, detail, self.loop.elapsed)
        self.violations.append(found)
        self.note(f"VIOLATION {found}")

    def note(self, line: str) -> None:
        """Add a line to the trace."""
        if self._trace is not None:
            self._trace.append(f"{self.loop.elapsed:9.3f} {line}")

    def trace(self) -> list[str]:
        """The trace's last lines."""
        return list(self._trace or ())
