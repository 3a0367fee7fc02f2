"""Deadlines: the master's timers, kept as data and fired by ``tick(now)``.

A heap of (time, key) with lazy deletion: setting a key again or cancelling it leaves the old
heap entry behind, and :meth:`Deadlines.pop_due` skips entries that are no longer current. Work
per tick is proportional to what fell due, not to how many timers exist.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["Deadlines"]

K = TypeVar("K", bound=Hashable)


class Deadlines(Generic[K]):
    """Deadlines maps keys to the time they fall due; each key has at most one deadline."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, K]] = []
        self._current: dict[K, tuple[float, int]] = {}
        self._seq = itertools.count()

    def set(self, key: K, when: float) -> None:
        """Make ``key`` fall due at ``when`` (replacing its earlier deadline)."""
        seq = next(self._seq)
        self._current[key] = (when, seq)
        heapq.heappush(self._heap, (when, seq, key))
        if len(self._heap) > 64 and len(self._heap) > 4 * len(self._current):
            self._compact()

    def cancel(self, key: K) -> None:
        """Forget ``key``'s deadline, if any."""
        self._current.pop(key, None)

    def get(self, key: K) -> float | None:
        """When ``key`` falls due, or None."""
        entry = self._current.get(key)
        return None if entry is None else entry[0]

    def __contains__(self, key: object) -> bool:
        return key in self._current

    def __len__(self) -> int:
        return len(self._current)

    def next_due(self) -> float | None:
        """The earliest deadline, or None if there is none."""
        heap = self._heap
        while heap:
            when, seq, key = heap[0]
            if self._current.get(key) == (when, seq):
                return when
            heapq.heappop(heap)
        return None

    def pop_due(self, now: float) -> list[K]:
        """Every key due at or before ``now``, earliest first; they are forgotten."""
        due: list[K] = []
        heap = self._heap
        current = self._current
        while heap and heap[0][0] <= now:
            when, seq, key = heapq.heappop(heap)
            if current.get(key) == (when, seq):
                del current[key]
                due.append(key)
        return due

    def _compact(self) -> None:
        self._heap = [(w, s, k) for k, (w, s) in self._current.items()]
        heapq.heapify(self._heap)
