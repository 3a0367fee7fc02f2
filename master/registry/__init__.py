"""The master's durable state: admitted agents, frameworks and their failover deadlines, weights,
quotas and dynamic reservations.

A :class:`Registry` is a versioned snapshot changed by batches of :mod:`operations
<master.registry.state>`: ``load()`` returns the current :class:`RegistryState`, ``apply(ops)``
makes a batch durable and returns the new version. :class:`FileRegistry` keeps one JSON file
under the work directory, replaced atomically; :class:`MemoryRegistry` is its in-memory twin. The
ZooKeeper registry of the HA issue fits the same protocol: a versioned snapshot written with
compare-and-set, where a lost race raises :class:`RegistryConflictError`.
"""

from master.registry.file import FileRegistry
from master.registry.memory import MemoryRegistry
from master.registry.protocol import Registry, RegistryConflictError, RegistryError
from master.registry.state import (
    AdmitAgent,
    FrameworkRecord,
    MarkAgentGone,
    MarkAgentUnreachable,
    Operation,
    PutFramework,
    RegistryState,
    RemoveAgent,
    RemoveFramework,
    UnreachableAgent,
    UpdateQuota,
    UpdateReservations,
    UpdateWeights,
    apply_operations,
)

__all__ = [
    "AdmitAgent",
    "FileRegistry",
    "FrameworkRecord",
    "MarkAgentGone",
    "MarkAgentUnreachable",
    "MemoryRegistry",
    "Operation",
    "PutFramework",
    "Registry",
    "RegistryConflictError",
    "RegistryError",
    "RegistryState",
    "RemoveAgent",
    "RemoveFramework",
    "UnreachableAgent",
    "UpdateQuota",
    "UpdateReservations",
    "UpdateWeights",
    "apply_operations",
]
