"""Identifiers the master hands out, in Mesos's formats.

The master id is a random UUID chosen at start; frameworks are ``<masterId>-0000``, agents
``<masterId>-S<n>`` and offers ``<masterId>-O<n>``. The generator is injected so that tests get
stable ids.

A scheduler may subscribe with a framework id of its own choosing (Mesos accepts an id it does
not know, since after a failover a master can learn of a framework from its scheduler before
any agent reports it). Such an id can be one this generator has not handed out yet, so
:meth:`IdGenerator.framework_id` skips ids the caller says are taken: generated ids never
collide with an existing one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["IdGenerator"]


@dataclass(slots=True)
class IdGenerator:
    """IdGenerator makes framework, agent, offer and stream ids under one master id."""

    master_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _frameworks: int = 0
    _agents: int = 0
    _offers: int = 0

    def framework_id(self, taken: Callable[[str], bool] = lambda _: False) -> str:
        """A new framework id, ``<masterId>-0000`` (at least four digits, as Mesos prints),
        skipping every id for which ``taken`` is true."""
        while True:
            n = self._frameworks
            self._frameworks += 1
            framework_id = f"{self.master_id}-{n:04d}"
            if not taken(framework_id):
                return framework_id

    def agent_id(self) -> str:
        """A new agent id, ``<masterId>-S<n>``."""
        n = self._agents
        self._agents += 1
        return f"{self.master_id}-S{n}"

    def offer_id(self) -> str:
        """A new offer id, ``<masterId>-O<n>``."""
        n = self._offers
        self._offers += 1
        return f"{self.master_id}-O{n}"
