"""The cyclic garbage collector against a master's large, long-lived heap.

A master holding many agents keeps millions of Python objects alive for hours: each agent's
core records, its allocator entries, its stream's coroutine frames and gRPC-aio objects (about
90 tracked objects per agent, 1.9 million at 20,000 agents). CPython's collector walks every
tracked object of the oldest generation whenever the objects promoted into it since the last
full pass reach a quarter of those already there. While a cluster grows (agents registering,
tasks launching) that is a full pass every 25 % of growth, each one a pause as long as the heap
is large: registering 20,000 emulated agents cost 14 full passes and about a third of the
master's CPU, and at 50,000 agents a single pass stops the event loop for seconds, while every
agent and framework waits.

The policy here, run by the master's process (:func:`keep_heap_frozen`, started by
``master.runtime.server.serve``; a master embedded in a test's interpreter leaves that
interpreter's collector alone):

* Every :data:`FREEZE_EVERY_S` the young generations are collected (cheap: only young objects
  are walked) and everything that survived is frozen (``gc.freeze``): moved to the permanent
  generation, which automatic collections skip. Objects that die by reference count, which is
  nearly all of them, are freed as before wherever they are; only garbage *cycles* among frozen
  objects wait.
* Every :data:`SWEEP_EVERY_S` one full pass unfreezes, collects and freezes again, so cycles
  that formed among long-lived objects (the frames of an ended agent stream, an exception's
  traceback) are freed within that bound. It costs what one of CPython's own full passes costs,
  once per sweep interval instead of once per quarter of growth.

Measured on the 2-core machine, 20,000 emulated agents registering (`docs/benchmarks.md`,
"Scale"): full passes took 41.7 s of wall time with the default policy and 2.3 s with this one;
the master's CPU for the registrations fell from 30.6 s to 22.6 s.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

__all__ = ["FREEZE_EVERY_S", "SWEEP_EVERY_S", "freeze_young", "keep_heap_frozen", "sweep"]

log = logging.getLogger("master.runtime")

FREEZE_EVERY_S = 1.0
"""How often survivors of the young generations are frozen."""

SWEEP_EVERY_S = 600.0
"""How often one full collection frees cycles among frozen objects."""


def freeze_young() -> None:
    """Collect the young generations, then freeze what survived."""
    gc.collect(1)
    gc.freeze()


def sweep() -> float:
    """One full collection of every object, frozen ones too; then freeze again. Seconds taken."""
    began = time.perf_counter()
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    return time.perf_counter() - began


async def keep_heap_frozen(
    freeze_every: float = FREEZE_EVERY_S, sweep_every: float = SWEEP_EVERY_S
) -> None:
    """Apply the module's policy until cancelled (then unfreeze, leaving the default policy)."""
    loop = asyncio.get_running_loop()
    next_sweep = loop.time() + sweep_every
    try:
        while True:
            await asyncio.sleep(freeze_every)
            if loop.time() >= next_sweep:
                took = sweep()
                next_sweep = loop.time() + sweep_every
                level = logging.INFO if took >= 0.5 else logging.DEBUG
                log.log(
                    level,
                    "full garbage collection: %.3f s, %d objects",
                    took,
                    gc.get_freeze_count(),
                )
            else:
                freeze_young()
    finally:
        gc.unfreeze()
