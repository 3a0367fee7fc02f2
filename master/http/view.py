"""MasterView: everything the HTTP layer may know about the master it serves, read-only.

The HTTP layer never touches :class:`~master.runtime.server.MasterServer` itself: the runtime
hands it a MasterView, and tests a plain fake. Every method is called on the master's event
loop, between two inputs of the state machine, so what it returns is consistent.
"""

from __future__ import annotations

from typing import Protocol

from master.core import Master

__all__ = ["MasterView"]


class MasterView(Protocol):
    """MasterView is the read-only face of one master process (see the module docstring)."""

    @property
    def master_id(self) -> str:
        """This master's id (a UUID, the same for its whole life)."""
        ...

    @property
    def version(self) -> str:
        """The Emporion version this master runs."""
        ...

    @property
    def start_time(self) -> float:
        """When this master started, in seconds since the epoch."""
        ...

    @property
    def elected_time(self) -> float | None:
        """When this master last took the lead (None if it never did)."""
        ...

    def leading_master(self) -> Master | None:
        """The state machine while this master leads and serves; None otherwise."""
        ...

    def leader_http_address(self) -> str | None:
        """``host:port`` of the leading master's HTTP API: this master's own while it leads,
        the leader's while following; None if no leader is known, or it serves no HTTP."""
        ...
