"""Leader election and detection: the contract, a standalone twin, and ZooKeeper.

A master runs a :class:`LeaderContender` (am *I* leading?) and every process that talks to the
master runs a :class:`LeaderDetector` (*who* leads?). :class:`StandaloneLeader` is both for a
single master: always leading, always itself. :class:`ZooKeeperContender` and
:class:`ZooKeeperDetector` (from :mod:`protos.leader_zk`) implement Mesos's election with
ephemeral sequential znodes ``<path>/json.info_NNNNNNNNNN`` holding MasterInfo as JSON
(:mod:`protos.leader_info`); the lowest sequence leads.

**Threads.** Implementations call listeners on their own threads (kazoo's, for ZooKeeper), in
order; listeners must not block. An asyncio program forwards them to its loop with
``loop.call_soon_threadsafe``, or uses the adapters of :mod:`protos.leader_aio`.

**Leading safely.** A contender reports "not leading" the moment its ZooKeeper connection is
SUSPENDED, before any other master can be elected; a master must stop acting as leader on that
notification, and start over (reload the registry) when it leads again, in a new ``term``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from protos.leader_info import (
    DEFAULT_ZK_PORT,
    MASTER_INFO_LABEL,
    LeaderInfo,
    LeaderInfoError,
    Leadership,
    Listeners,
    ZkUrl,
    candidate_name,
    candidates,
    format_address,
    leader_from_json,
    master_info_json,
    parse_zk_url,
    predecessor,
    sequence_of,
)
from protos.leader_zk import (
    KazooZnodeStore,
    ZooKeeperContender,
    ZooKeeperDetector,
    zookeeper_client,
)

__all__ = [
    "DEFAULT_ZK_PORT",
    "MASTER_INFO_LABEL",
    "KazooZnodeStore",
    "LeaderContender",
    "LeaderDetector",
    "LeaderInfo",
    "LeaderInfoError",
    "Leadership",
    "Listeners",
    "StandaloneLeader",
    "ZkUrl",
    "ZooKeeperContender",
    "ZooKeeperDetector",
    "candidate_name",
    "candidates",
    "format_address",
    "leader_from_json",
    "master_info_json",
    "parse_zk_url",
    "predecessor",
    "sequence_of",
    "zookeeper_client",
]


# -- the contract -----------------------------------------------------------------------------


class LeaderContender(Protocol):
    """LeaderContender takes part in an election for one process.

    ``start()`` begins contending; ``withdraw()`` ends it for good (a leader steps down).
    ``leading`` is the current role; listeners get a :class:`Leadership` for each change, on
    the implementation's thread, and must not block.
    """

    @property
    def leading(self) -> bool:
        """Whether this contender leads right now."""
        ...

    def start(self) -> None:
        """Begin contending (returns at once)."""
        ...

    def withdraw(self) -> None:
        """Stop contending; a leader stops leading first. Idempotent."""
        ...

    def add_listener(self, listener: Callable[[Leadership], None]) -> Callable[[], None]:
        """Call ``listener`` with every change of role; returns a function removing it."""
        ...


class LeaderDetector(Protocol):
    """LeaderDetector follows who leads.

    ``leader`` is the current leader (None while none is known); listeners get each new value
    (a LeaderInfo or None), on the implementation's thread, and must not block.
    """

    @property
    def leader(self) -> LeaderInfo | None:
        """The leader as last seen, or None."""
        ...

    def start(self) -> None:
        """Begin following (returns at once)."""
        ...

    def close(self) -> None:
        """Stop following. Idempotent."""
        ...

    def add_listener(self, listener: Callable[[LeaderInfo | None], None]) -> Callable[[], None]:
        """Call ``listener`` with every change of leader; returns a function removing it."""
        ...


# -- standalone -------------------------------------------------------------------------------


class StandaloneLeader:
    """StandaloneLeader is the in-memory twin: a single master that leads once started.

    It is both the contender and the detector of that master: ``leader`` is ``info`` while it
    leads. ``withdraw()`` (or ``close()``) ends the term and reports no leader.
    """

    def __init__(self, info: LeaderInfo) -> None:
        self.info = info
        self._leading = False
        self._term = 0
        self._withdrawn = False
        self._lock = threading.RLock()
        self._roles: Listeners[Leadership] = Listeners()
        self._leaders: Listeners[LeaderInfo | None] = Listeners()

    @property
    def leading(self) -> bool:
        """Whether started and not withdrawn."""
        return self._leading

    @property
    def leader(self) -> LeaderInfo | None:
        """``info`` while leading, else None."""
        return self.info if self._leading else None

    def start(self) -> None:
        """Lead at once (listeners are called before this returns)."""
        with self._lock:
            if self._leading or self._withdrawn:
                return
            self._leading = True
            self._term += 1
            self._roles.call(Leadership(True, "standalone master", self._term))
            self._leaders.call(self.info)

    def withdraw(self) -> None:
        """Stop leading, for good."""
        with self._lock:
            self._withdrawn = True
            if not self._leading:
                return
            self._leading = False
            self._roles.call(Leadership(False, "withdrew", self._term))
            self._leaders.call(None)

    close = withdraw

    def add_listener(self, listener: Callable[[Leadership], None]) -> Callable[[], None]:
        """Listen to role changes (:class:`Leadership`); see :meth:`add_leader_listener`."""
        return self._roles.add(listener)

    def add_leader_listener(
        self, listener: Callable[[LeaderInfo | None], None]
    ) -> Callable[[], None]:
        """Listen to leader changes (the :class:`LeaderDetector` side)."""
        return self._leaders.add(listener)

    def detector(self) -> LeaderDetector:
        """This master seen through the :class:`LeaderDetector` protocol."""
        return _StandaloneDetector(self)


class _StandaloneDetector:
    def __init__(self, owner: StandaloneLeader) -> None:
        self._owner = owner

    @property
    def leader(self) -> LeaderInfo | None:
        return self._owner.leader

    def start(self) -> None:
        self._owner.start()

    def close(self) -> None:
        """Nothing to release: the owner's role is its own business."""

    def add_listener(self, listener: Callable[[LeaderInfo | None], None]) -> Callable[[], None]:
        return self._owner.add_leader_listener(listener)
