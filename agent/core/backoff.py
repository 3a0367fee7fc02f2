"""Retry schedules: jittered registration backoff and the status update retry interval.

Both are pure: randomness comes in as a ``random()`` callable so tests can pin it.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class RegistrationBackoff:
    """RegistrationBackoff spaces out (re)registration attempts the way a Mesos agent does.

    The first attempt waits a random time in ``[0, factor)``; each further attempt doubles the
    bound of the random wait, up to ``maximum`` (Mesos: factor 1 s, maximum 1 min). The jitter
    keeps a thousand agents that lost the same master from reconnecting in one burst.
    """

    factor: float = 1.0
    maximum: float = 60.0
    random: Callable[[], float] = field(default=_random.random, repr=False)
    _bound: float = field(default=0.0, init=False)

    def next_delay(self) -> float:
        """The delay before the next attempt; widens the window for the one after."""
        self._bound = self.factor if self._bound == 0.0 else min(self._bound * 2, self.maximum)
        return self.random() * self._bound

    def reset(self) -> None:
        """Forget past failures (call once registered)."""
        self._bound = 0.0


@dataclass(frozen=True)
class RetrySchedule:
    """RetrySchedule is a bounded doubling interval: ``minimum``, ``2*minimum``, ... ``maximum``.

    Status updates are retried on it until acknowledged (Mesos: 10 s doubling to 10 min).
    """

    minimum: float = 10.0
    maximum: float = 600.0

    def __post_init__(self) -> None:
        if not 0 < self.minimum <= self.maximum:
            raise ValueError(
                f"invalid retry schedule: need 0 < minimum ({self.minimum}) <= maximum"
                f" ({self.maximum})"
            )

    def after(self, interval: float | None) -> float:
        """The interval following ``interval`` (``None``: the first one)."""
        if interval is None:
            return self.minimum
        return min(interval * 2, self.maximum)
