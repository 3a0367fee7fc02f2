"""FairLaunchQueue: container launches waiting for a slot, taken in turn across frameworks.

Starting a container costs the host cgroup writes and three process starts (the launch helper
cloned from the fork server, the namespace init, the task): about 18 ms of CPU with namespaces
(docs/benchmarks.md, "Launch latency"). One ACCEPT can ask an agent for thousands of them;
started all at once they starve the agent's event loop, which then misses the master's pings,
and a second framework's task waits behind all of them. So the agent starts a bounded number
at a time (:class:`agent.runtime.containers.ContainerManager`) and keeps the rest here: first
in, first out within one framework, one launch per framework in turn across frameworks, so a
framework with one task waits for at most one launch of each other framework. A queued launch can be
taken out by its container id (a kill or teardown before it started: nothing is created for
it) in constant time.

Plain data, no I/O: the container manager decides when to take.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterator
from typing import Generic, TypeVar

__all__ = ["FairLaunchQueue"]

T = TypeVar("T")


class FairLaunchQueue(Generic[T]):
    """Items keyed by container id, grouped by framework; :meth:`take` goes round the
    frameworks, oldest item first within each."""

    def __init__(self) -> None:
        self._by_framework: dict[str, OrderedDict[str, T]] = {}
        self._framework_of: dict[str, str] = {}
        self._turns: deque[str] = deque()  # Frameworks with items, next to be served first.

    def __len__(self) -> int:
        return len(self._framework_of)

    def __contains__(self, container_id: object) -> bool:
        return container_id in self._framework_of

    def __iter__(self) -> Iterator[str]:
        """The container ids queued (in no particular order)."""
        return iter(list(self._framework_of))

    def queued(self, framework_id: str) -> int:
        """How many launches of ``framework_id`` wait."""
        return len(self._by_framework.get(framework_id, ()))

    def put(self, framework_id: str, container_id: str, item: T) -> None:
        """Queue ``item``; ValueError if ``container_id`` is queued already."""
        if container_id in self._framework_of:
            raise ValueError(f"container {container_id} is already queued for launch")
        items = self._by_framework.get(framework_id)
        if items is None:
            items = self._by_framework[framework_id] = OrderedDict()
            self._turns.append(framework_id)
        items[container_id] = item
        self._framework_of[container_id] = framework_id

    def take(self) -> tuple[str, T] | None:
        """The next launch (container id and item): the oldest of the framework whose turn it
        is, that framework then going to the back of the line; None when nothing waits."""
        if not self._turns:
            return None
        framework_id = self._turns.popleft()
        items = self._by_framework[framework_id]
        container_id, item = items.popitem(last=False)
        del self._framework_of[container_id]
        if items:
            self._turns.append(framework_id)
        else:
            del self._by_framework[framework_id]
        return container_id, item

    def remove(self, container_id: str) -> T | None:
        """Take ``container_id``'s launch out of the queue; None if it is not queued."""
        framework_id = self._framework_of.pop(container_id, None)
        if framework_id is None:
            return None
        items = self._by_framework[framework_id]
        item = items.pop(container_id)
        if not items:
            del self._by_framework[framework_id]
            self._turns.remove(framework_id)
        return item

    def remove_framework(self, framework_id: str) -> list[T]:
        """Take every queued launch of ``framework_id`` out; them, oldest first."""
        items = self._by_framework.pop(framework_id, None)
        if items is None:
            return []
        self._turns.remove(framework_id)
        for container_id in items:
            del self._framework_of[container_id]
        return list(items.values())
