"""The allocator: decides which framework is offered which agent's resources, and explains why.

A pure, synchronous, incremental implementation of Mesos's hierarchical DRF allocator with
weights, quota guarantees and limits, reservations, refuse filters, suppress/revive, GPU gating
and a minimum offer size. The master drives it with events and calls ``allocate(now)`` once per
allocation interval; nothing here does I/O or reads the clock. See ``docs/allocator.md``.

Modules: ``hierarchical`` (the allocator's interface), ``cycle`` (one allocation cycle),
``recovered`` (resources coming back, one at a time or a DECLINE's worth at once), ``pause``
(no offers while a new leader's agents reregister), ``sorter`` (DRF and random sorters),
``quota``, ``filters`` (refuse filters), ``explain`` (why a framework got nothing),
``invariants`` (``validate``), ``views`` (read-only queries), ``core`` and ``state`` (the data).
"""

from .core import AllocatorOptions
from .explain import (
    CycleRecord,
    Explanation,
    Filtered,
    GpuGated,
    Inactive,
    NoActiveAgents,
    NoAgentLargeEnough,
    OutrankedByDRF,
    QuotaHeadroom,
    QuotaLimit,
    ReasonCode,
    RecoveryPaused,
    Suppressed,
    Winner,
)
from .filters import DEFAULT_REFUSE_SECONDS, MAX_REFUSE_SECONDS, RefuseFilter, refuse_timeout
from .hierarchical import HierarchicalAllocator
from .invariants import InvariantViolation
from .pause import AGENT_RECOVERY_FACTOR, RecoveryPause
from .quota import Quota
from .recovered import Recovered
from .sorter import SORTERS, DRFSorter, RandomSorter, ShareTotals, Sorter, make_sorter
from .state import (
    DEFAULT_MIN_ALLOCATABLE,
    GPU_RESOURCES,
    REVOCABLE_RESOURCES,
    Offers,
    parse_min_allocatable,
)

__all__ = [
    "AGENT_RECOVERY_FACTOR",
    "DEFAULT_MIN_ALLOCATABLE",
    "DEFAULT_REFUSE_SECONDS",
    "GPU_RESOURCES",
    "MAX_REFUSE_SECONDS",
    "REVOCABLE_RESOURCES",
    "SORTERS",
    "AllocatorOptions",
    "CycleRecord",
    "DRFSorter",
    "Explanation",
    "Filtered",
    "GpuGated",
    "HierarchicalAllocator",
    "Inactive",
    "InvariantViolation",
    "NoActiveAgents",
    "NoAgentLargeEnough",
    "Offers",
    "OutrankedByDRF",
    "Quota",
    "QuotaHeadroom",
    "QuotaLimit",
    "RandomSorter",
    "ReasonCode",
    "Recovered",
    "RecoveryPause",
    "RecoveryPaused",
    "RefuseFilter",
    "ShareTotals",
    "Sorter",
    "Suppressed",
    "Winner",
    "make_sorter",
    "parse_min_allocatable",
    "refuse_timeout",
]
