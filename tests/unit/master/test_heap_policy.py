"""The master's collector policy (master.runtime.heap): survivors are frozen, and the sweep
still frees garbage cycles among frozen objects."""

from __future__ import annotations

import asyncio
import gc
import weakref

from master.runtime.heap import freeze_young, keep_heap_frozen, sweep


class Node:
    """An object that can sit in a reference cycle."""

    def __init__(self) -> None:
        self.other: Node | None = None


def _cycle(holder: list[Node]) -> weakref.ref[Node]:
    """A two-node cycle kept alive by ``holder`` until it is cleared."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    holder.append(a)
    return weakref.ref(a)


def test_frozen_cycle_waits_for_the_sweep() -> None:
    holder: list[Node] = []
    try:
        ref = _cycle(holder)
        freeze_young()  # Alive: it survives and is frozen.
        holder.clear()  # Now garbage, but only a cycle: reference counting cannot free it.
        gc.collect()  # A full collection skips frozen objects.
        assert ref() is not None
        assert sweep() >= 0.0
        assert ref() is None
        assert gc.get_freeze_count() > 0  # The sweep froze the survivors again.
    finally:
        gc.unfreeze()


def test_young_garbage_cycle_is_freed_not_frozen() -> None:
    holder: list[Node] = []
    try:
        ref = _cycle(holder)
        holder.clear()  # Garbage before the freeze: the young collection frees it.
        freeze_young()
        assert ref() is None
    finally:
        gc.unfreeze()


def test_task_freezes_then_sweeps_and_unfreezes_when_cancelled() -> None:
    async def scenario() -> tuple[bool, bool, bool]:
        holder: list[Node] = []
        ref = _cycle(holder)
        task = asyncio.get_running_loop().create_task(keep_heap_frozen(0.01, 0.3))
        await asyncio.sleep(0.05)  # Frozen while alive.
        frozen = gc.get_freeze_count() > 0
        holder.clear()
        gc.collect()
        kept = ref() is not None  # Frozen garbage waits for the sweep...
        for _ in range(200):  # ...which comes after the sweep interval.
            await asyncio.sleep(0.01)
            if ref() is None:
                break
        freed = ref() is None
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return frozen, kept, freed

    try:
        assert asyncio.run(scenario()) == (True, True, True)
        assert gc.get_freeze_count() == 0
    finally:
        gc.unfreeze()
