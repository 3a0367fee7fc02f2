"""The recovery pause: a new leader makes no offers until its agents are back.

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
and ends the pause at the first of:

* every expected agent is added;
* 80 % of them are added and the burst is over: no agent was added for one allocation interval
  (the rest may never come), or as long again has passed as it took to reach 80 % (at least an
  interval: agents that keep coming and going do not hold allocation back for long). Measured
  at 10,000 agents and 100 declining frameworks, resuming at 80 % itself slowed the
  reregistration of the last 2,000 agents from thousands a second to a few hundred, as the new
  leader's one core turned to offers and declines;
* the agents' reregistration window (``--agent-reregister-timeout``, 10 minutes by default)
  ends: then the agents still missing are marked unreachable, and waiting longer would wait for
  nothing.

Like Mesos it counts the agents the allocator holds, whether they were expected or are new.

The pause is state (:class:`RecoveryPause` on the allocator's core), updated when an agent is
added and ended by :func:`end_if_due`, a function of that state and ``now`` called then and at
every cycle; it is logged when it begins and ends, and the master's metrics show it as
``allocator/recovery_paused``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from .core import AllocatorCore

__all__ = ["AGENT_RECOVERY_FACTOR", "RecoveryPause", "agent_added", "begin", "end_if_due"]

log = logging.getLogger("master.allocator")

AGENT_RECOVERY_FACTOR = 0.8
"""The share of the expected agents after which the pause may end (Mesos's value)."""


@dataclass(slots=True)
class RecoveryPause:
    """RecoveryPause: allocation waits for ``expected`` agents (the registry's), or for
    ``wanted`` of them and the end of their burst, or until ``deadline``.

    ``last_added`` is when the latest agent was added, ``wanted_at`` when the count first
    reached ``wanted`` (None before).
    """

    expected: int
    wanted: int
    started_at: float
    deadline: float
    last_added: float
    wanted_at: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        """A JSON-ready form."""
        return {
            "expected_agents": self.expected,
            "wanted_agents": self.wanted,
            "started_at": self.started_at,
            "deadline": self.deadline,
            "last_added": self.last_added,
            "wanted_at": self.wanted_at,
        }


def begin(
    core: AllocatorCore,
    expected_agents: int,
    now: float,
    timeout: float,
    factor: float = AGENT_RECOVERY_FACTOR,
) -> None:
    """Pause allocation for the return of ``expected_agents`` (see the module docstring).

    No pause when ``factor`` of them is no agent at all (as in Mesos), or when they are all
    added already.
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
    if wanted == 0 or len(core.agents) >= expected_agents:
        return
    pause = RecoveryPause(expected_agents, wanted, now, now + timeout, now)
    if len(core.agents) >= wanted:
        pause.wanted_at = now
    core.pause = pause
    log.info(
        "allocation paused for recovery: waiting for %d expected agents to reregister (at least"
        " %d, then until none comes for %g s), for at most %g s",
        expected_agents,
        wanted,
        core.options.allocation_interval,
        timeout,
    )


def agent_added(core: AllocatorCore, now: float) -> None:
    """An agent was added during the pause: note when, and end the pause if it was the last."""
    pause = core.pause
    if pause is None:
        return
    pause.last_added = max(pause.last_added, now)
    if pause.wanted_at is None and len(core.agents) >= pause.wanted:
        pause.wanted_at = now
    if len(core.agents) >= pause.expected:
        end_if_due(core, now)


def end_if_due(core: AllocatorCore, now: float) -> bool:
    """End the pause if it is due (see the module docstring); whether allocation may run
    (True when there is no pause)."""
    pause = core.pause
    if pause is None:
        return True
    added = len(core.agents)
    quiet = core.options.allocation_interval
    if added >= pause.expected:
        why = "every expected agent is back"
    elif now >= pause.deadline:
        why = "the recovery timeout passed"
    elif pause.wanted_at is not None and now - pause.last_added >= quiet:
        why = f"no agent came back for {now - pause.last_added:.3f} s"
    elif pause.wanted_at is not None and now - pause.wanted_at >= max(
        pause.wanted_at - pause.started_at, quiet
    ):
        why = "agents came back for as long again as it took the first"
    else:
        return False
    log.log(
        logging.WARNING if added < pause.wanted else logging.INFO,
        "allocation resumes %.3f s after recovery, %s: %d agents added (%d expected, %d wanted)",
        now - pause.started_at,
        why,
        added,
        pause.expected,
        pause.wanted,
    )
    core.pause = None
    # Agents added during the pause are dirty already; those idle (none, unless frameworks
    # came and went) may have a taker now.
    core.wake_idle()
    return True
