"""Blocking work in worker threads, without losing track of it on cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def run_blocking(func: Callable[..., T], *args: Any) -> T:
    """``func(*args)`` in a worker thread; a cancelled caller still waits for it to finish.

    A thread cannot be stopped, so returning early on cancellation would let it keep writing
    into the sandbox after the caller cleaned up. Waiting makes cleanup see its final effects.
    """
    future = asyncio.ensure_future(asyncio.to_thread(func, *args))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        # Wait out the thread; if it failed, the cancellation is what the caller must see.
        await asyncio.wait([future])
        if not future.cancelled():
            future.exception()
        raise
