"""MemoryRegistry: the in-memory twin of the file registry (state is lost with the process)."""

from __future__ import annotations

from collections.abc import Sequence

from master.registry.state import Operation, RegistryState, apply_operations

__all__ = ["MemoryRegistry"]


class MemoryRegistry:
    """MemoryRegistry keeps the registry state in memory; ``state`` is the latest version."""

    def __init__(self, state: RegistryState | None = None) -> None:
        self.state = state if state is not None else RegistryState()

    def load(self) -> RegistryState:
        """The current state."""
        return self.state

    def apply(self, operations: Sequence[Operation]) -> int:
        """Apply ``operations``; the new version."""
        self.state = apply_operations(self.state, operations)
        return self.state.version
