"""Cluster utilisation over the last hour: a bounded ring of samples the runtime takes.

Every :data:`SAMPLE_SECONDS` the runtime calls :meth:`UtilizationRing.sample`, which adds up,
over the registered agents, what they have (``total``), what tasks and executors hold
(``allocated``) and what is offered (``offered``) of cpus, mem, disk and gpus. A sample costs
O(agents + outstanding offers) using the totals the resources cache and the allocator's free
resources per agent (never a walk over tasks); :data:`WINDOW_SECONDS` of samples are kept.
The web UI draws its plots from these (``GET_UTILIZATION``, an Emporion addition).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from master.core.model import AgentPhase

if TYPE_CHECKING:
    from master.core.state import MasterState

__all__ = ["RESOURCE_NAMES", "SAMPLE_SECONDS", "WINDOW_SECONDS", "UtilizationRing", "Usage"]

SAMPLE_SECONDS = 5.0
"""Seconds between two samples."""

WINDOW_SECONDS = 3600.0
"""How far back the ring reaches."""

RESOURCE_NAMES = ("cpus", "mem", "disk", "gpus")
"""The resources sampled."""

_REGISTERED = (AgentPhase.CONNECTED, AgentPhase.DISCONNECTED)


@dataclass(frozen=True, slots=True)
class Usage:
    """Usage is one sample: amounts by resource name, in the resources' units."""

    time: float
    total: dict[str, float]
    allocated: dict[str, float]
    offered: dict[str, float]

    def to_dict(self) -> dict[str, object]:
        """The JSON form (``GET_UTILIZATION``'s samples)."""
        return {
            "time": self.time,
            "total": dict(self.total),
            "allocated": dict(self.allocated),
            "offered": dict(self.offered),
        }


def measure(state: MasterState, now: float) -> Usage:
    """What the cluster has, holds and offers right now (O(agents + offers))."""
    total = dict.fromkeys(RESOURCE_NAMES, 0)
    busy = dict.fromkeys(RESOURCE_NAMES, 0)
    offered = dict.fromkeys(RESOURCE_NAMES, 0)
    free_of = state.allocator.agent_free
    for agent in state.agents.values():
        if agent.phase not in _REGISTERED:
            continue
        have = agent.total.scalar_thousandths()
        free = free_of(agent.agent_id).scalar_thousandths() if agent.in_allocator else have
        for name in RESOURCE_NAMES:
            amount = have.get(name, 0)
            total[name] += amount
            busy[name] += amount - free.get(name, 0)
    for offer in state.offers.values():
        amounts = offer.resources.scalar_thousandths()
        for name in RESOURCE_NAMES:
            offered[name] += amounts.get(name, 0)
    return Usage(
        now,
        {n: total[n] / 1000 for n in RESOURCE_NAMES},
        {n: max(0, busy[n] - offered[n]) / 1000 for n in RESOURCE_NAMES},
        {n: offered[n] / 1000 for n in RESOURCE_NAMES},
    )


class UtilizationRing:
    """UtilizationRing holds the samples of the last :data:`WINDOW_SECONDS`, oldest first."""

    def __init__(self, interval: float = SAMPLE_SECONDS, window: float = WINDOW_SECONDS) -> None:
        self.interval = interval
        self.window = window
        self.samples: deque[Usage] = deque(maxlen=max(1, int(window / interval)))

    def sample(self, state: MasterState, now: float) -> Usage:
        """Take a sample of ``state`` at ``now`` and keep it."""
        usage = measure(state, now)
        self.samples.append(usage)
        return usage

    def since(self, start: float | None) -> list[Usage]:
        """The samples taken after ``start`` (all with None), oldest first."""
        if start is None:
            return list(self.samples)
        return [s for s in self.samples if s.time > start]
