"""The interface every registry implements, and its errors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from master.registry.state import Operation, RegistryState

__all__ = ["Registry", "RegistryConflictError", "RegistryError"]


class RegistryError(Exception):
    """RegistryError: the registry could not be read or written (the master must not go on)."""


class RegistryConflictError(RegistryError):
    """RegistryConflictError: someone else wrote a newer version (a deposed leader steps down)."""


class Registry(Protocol):
    """Registry is a versioned snapshot of the master's durable state.

    ``load`` returns the current state (version 0 and empty when there is none yet).
    ``apply`` makes a batch of operations durable, all or nothing, and returns the new version;
    it raises :class:`RegistryConflictError` if the stored version moved under it since ``load``
    or the last ``apply`` (a compare-and-set store), :class:`RegistryError` on any other failure,
    in which case the stored state is unchanged. Both block; the runtime calls them off its loop.
    """

    def load(self) -> RegistryState:
        """The stored state."""
        ...

    def apply(self, operations: Sequence[Operation]) -> int:
        """Apply ``operations`` durably; the new version."""
        ...
