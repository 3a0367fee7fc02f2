"""The recovery pause: a new leader makes no offers until most of its agents are back.

A master that takes over from a crashed leader knows, from the registry, which agents to expect;
they reregister over the next seconds. Allocating meanwhile works on a partial view of the
cluster, and at scale it costs the new leader more than the reregistrations themselves: every
cycle offers the agents that came back since the last one, every framework declines what it
does not need, and each decline comes back as work while thousands of agents wait for their
reregistration to be answered (``bench.failover`` at 10,000 agents and 100 declining frameworks,
``docs/benchmarks.md``).

Mesos's hierarchical allocator pauses in ``recover()`` until ``AGENT_RECOVERY_FACTOR`` (80 %)
of the expected agents are added, or ``ALLOCATION_HOLD_OFF_RECOVERY_TIMEOUT`` (10 minutes)
passes; it does so only when quota is set (allocating on a partial view over-commits to quota
roles). Emporion pauses whenever agents are expected, for the cost above as much as for quota,
with the same factor, and bounds the pause by the agents' reregistration window
(``--agent-reregister-timeout``, 10 minutes by default): once it ends, the agents still missing
are marked unreachable and waiting longer would wait for nothing. Like Mesos it counts the agents
the allocator holds, whether they were expected or are new.

The pause is state (:class:`RecoveryPause` on the allocator's core) and ends by
:func:`end_if_due`, a function of that state and ``now``, called when an agent is added and at
every cycle; it is logged when it begins and ends, and the master's metrics show it as
``allocator/recovery_paused``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from .core import AllocatorCore

__all__ = ["AGENT_RECOVERY_FACTOR", "RecoveryPause", "begin", "end_if_due"]

log = logging.getLogger("master.allocator")

AGENT_RECOVERY_FACTOR = 0.8
"""The share of the expected agents whose return ends the pause (Mesos's value)."""


@dataclass(frozen=True, slots=True)
class RecoveryPause:
    """RecoveryPause: allocation waits until ``wanted`` agents are added (of ``expected`` the
    registry names), or until ``deadline``."""

    expected: int
    wanted: int
    started_at: float
    deadline: float

    def to_dict(self) -> dict[str, float]:
        """A JSON-ready form."""
        return {
            "expected_agents": self.expected,
            "wanted_agents": self.wanted,
            "started_at": self.started_at,
            "deadline": self.deadline,
        }


def begin(
    core: AllocatorCore,
    expected_agents: int,
    now: float,
    timeout: float,
    factor: float = AGENT_RECOVERY_FACTOR,
) -> None:
    """Pause allocation until ``factor`` of ``expected_agents`` are added or ``timeout`` passes.

    No pause when that is no agent at all (as in Mesos), or when enough are already added.
    """
    if isinstance(expected_agents, bool) or not isinstance(expected_agents, int):
        raise ValueError(f"expected agents must be an integer, not {expected_agents!r}")
    if expected_agents < 0:
        raise ValueError(f"expected agents must be >= 0, got {expected_agents}")
    if not (math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"recovery timeout must be a positive number of seconds, not {timeout}")
    if not (0 < factor <= 1):
        raise ValueError(f"agent recovery factor must be in (0, 1], not {factor}")
    if core.pause is not None:
        raise ValueError("allocation is already paused for recovery")
    wanted = int(expected_agents * factor)
    if wanted == 0 or len(core.agents) >= wanted:
        return
    core.pause = RecoveryPause(expected_agents, wanted, now, now + timeout)
    log.info(
        "allocation paused for recovery: waiting for %d of %d expected agents to reregister,"
        " for at most %g s",
        wanted,
        expected_agents,
        timeout,
    )


def end_if_due(core: AllocatorCore, now: float) -> bool:
    """End the pause if enough agents are added or its deadline passed; whether allocation may
    run (True when there is no pause)."""
    pause = core.pause
    if pause is None:
        return True
    added = len(core.agents)
    if added >= pause.wanted:
        log.info(
            "allocation resumes: %d agents added (%d wanted of %d expected) %.3f s after recovery",
            added,
            pause.wanted,
            pause.expected,
            now - pause.started_at,
        )
    elif now >= pause.deadline:
        log.warning(
            "allocation resumes: the recovery timeout passed with %d agents added"
            " (%d wanted of %d expected)",
            added,
            pause.wanted,
            pause.expected,
        )
    else:
        return False
    core.pause = None
    # Agents added during the pause are dirty already; those idle (none, unless frameworks
    # came and went) may have a taker now.
    core.wake_idle()
    return True
