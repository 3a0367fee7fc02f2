"""CallbackRecorder: what the drivers' tests record of the callbacks a driver calls.

The scheduler's and the executor's ``Recorder`` (in their driver tests) inherit from it and from
:class:`~framework_sdk.Scheduler` or :class:`~framework_sdk.Executor`, each callback calling
:meth:`CallbackRecorder._record` with its name and arguments.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from tests.unit.sdk.scripted_service import WAIT_SECONDS

__all__ = ["CallbackRecorder"]


class CallbackRecorder:
    """Records every callback (name, arguments, thread); hooks let a test act inside one.

    ``hooks[name](driver, *args)`` runs inside callback ``name``; ``max_active`` is the most
    callbacks that ever ran at once, ``threads`` the names of the threads they ran on.
    """

    def __init__(self) -> None:
        self.seen: list[tuple[str, tuple[Any, ...]]] = []
        self.threads: set[str] = set()
        self.active = 0
        self.max_active = 0
        self.hooks: dict[str, Callable[..., None]] = {}
        self._cond = threading.Condition()

    def _record(self, name: str, driver: object, *args: Any) -> None:
        with self._cond:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.threads.add(threading.current_thread().name)
        try:
            hook = self.hooks.get(name)
            if hook is not None:
                hook(driver, *args)
        finally:
            with self._cond:
                self.active -= 1
                self.seen.append((name, args))
                self._cond.notify_all()

    def names(self) -> list[str]:
        """The callbacks called so far, in order."""
        with self._cond:
            return [name for name, _ in self.seen]

    def wait_for(self, name: str, count: int = 1) -> list[tuple[Any, ...]]:
        """Wait until ``name`` was called ``count`` times; its argument tuples."""
        with self._cond:
            ok = self._cond.wait_for(
                lambda: sum(n == name for n, _ in self.seen) >= count, WAIT_SECONDS
            )
            assert ok, f"expected {count} {name}, saw {[n for n, _ in self.seen]}"
            return [args for n, args in self.seen if n == name]
