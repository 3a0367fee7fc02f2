"""Sorters: the fairness policy, kept apart from the allocator (Mesos's ``Sorter`` interface).

A sorter orders its *clients* (roles for the role sorter, framework ids inside one role for a
framework sorter). The allocator tells it what each client was allocated and asks for the active
clients in order. Two policies exist, chosen by name with :func:`make_sorter`:

``drf``
    Weighted dominant resource fairness. A client's share is ``max(allocated[r] / total[r])``
    over the scalar resources ``r`` of the cluster (minus any fair-sharing-excluded names), divided
    by its weight; ties go to the client chosen fewer times, then to the smaller name. Role names
    such as ``eng/prod`` form a tree: a parent's share counts its whole subtree, siblings are
    ordered among themselves, and clients come out in pre-order.

``random``
    A weighted random order, drawn afresh on every call.

Mesos re-sorts every client whenever it is asked for an order. :class:`DRFSorter` instead keeps,
in every tree node, a ``SortedList`` of its active children keyed by ``(share, count, name)``, and
moves only the nodes whose allocation changed (``O(depth * log n)`` per change). Asking for an
order is then a lazy walk that costs only as many steps as the caller takes. Shares depend on the
cluster totals too; when those change (an agent comes or goes) every key is stale, and the sorter
rebuilds all its lists once, on the next read, instead of on every change.

Quantities are ``int`` thousandths (the unit of :class:`protos.resources.Resources`), so adding
and removing allocations never drifts.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping

from sortedcontainers import SortedList  # type: ignore[import-untyped]

__all__ = [
    "SORTERS",
    "DRFSorter",
    "Quantities",
    "RandomSorter",
    "ShareTotals",
    "Sorter",
    "make_sorter",
]

Quantities = dict[str, int]
"""Scalar quantities by resource name, in thousandths."""

SORTERS = ("drf", "random")
"""The names :func:`make_sorter` accepts."""


class ShareTotals:
    """ShareTotals holds the cluster totals that every sorter measures shares against.

    ``items`` lists the (name, total) pairs that count: excluded names and zeros are left out. All
    sorters of one allocator share one instance; ``version`` changes whenever the totals do,
    which tells each sorter that its cached shares are stale.
    """

    __slots__ = ("_totals", "excluded", "items", "version")

    def __init__(self, excluded: Iterable[str] = ()) -> None:
        self.excluded = frozenset(excluded)
        self._totals: Quantities = {}
        self.items: tuple[tuple[str, int], ...] = ()
        self.version = 0

    def add(self, quantities: Mapping[str, int]) -> None:
        """Count an agent's scalar quantities into the totals."""
        if quantities:
            totals = self._totals
            for name, value in quantities.items():
                totals[name] = totals.get(name, 0) + value
            self._changed()

    def subtract(self, quantities: Mapping[str, int]) -> None:
        """Take an agent's scalar quantities out of the totals."""
        if quantities:
            totals = self._totals
            for name, value in quantities.items():
                left = totals.get(name, 0) - value
                if left > 0:
                    totals[name] = left
                else:
                    totals.pop(name, None)
            self._changed()

    def _changed(self) -> None:
        self.items = tuple(
            (name, value)
            for name, value in sorted(self._totals.items())
            if value > 0 and name not in self.excluded
        )
        self.version += 1

    def totals(self) -> Quantities:
        """A copy of all the totals, excluded names included."""
        return dict(self._totals)

    def share(self, allocation: Mapping[str, int]) -> float:
        """The unweighted dominant share of ``allocation``."""
        share = 0.0
        for name, total in self.items:
            value = allocation.get(name)
            if value:
                share = max(share, value / total)
        return share


class Sorter(ABC):
    """Sorter orders clients; the allocator reports their allocations and (de)activations.

    Inactive clients keep their allocation (it still counts in their parents' shares) but are
    left out of :meth:`ordered`.
    """

    @abstractmethod
    def add(self, client: str) -> None:
        """Add an inactive client with nothing allocated. Adding a known client is an error."""

    @abstractmethod
    def remove(self, client: str) -> None:
        """Forget a client (whatever is still allocated to it leaves its parents too)."""

    @abstractmethod
    def activate(self, client: str) -> None:
        """Let the client appear in :meth:`ordered`."""

    @abstractmethod
    def deactivate(self, client: str) -> None:
        """Leave the client out of :meth:`ordered`, keeping its allocation."""

    @abstractmethod
    def allocated(self, client: str, quantities: Mapping[str, int]) -> None:
        """Record that ``quantities`` were allocated to the client (counts as one allocation)."""

    @abstractmethod
    def unallocated(self, client: str, quantities: Mapping[str, int]) -> None:
        """Record that ``quantities`` allocated to the client came back."""

    @abstractmethod
    def update_weight(self, path: str, weight: float) -> None:
        """Set the weight of a client or role path (1.0 unless set)."""

    @abstractmethod
    def ordered(self) -> Iterator[str]:
        """The active clients, in the order they should be offered resources."""

    @abstractmethod
    def share(self, path: str) -> float:
        """The weighted share of a client, or of a whole subtree for a role path."""

    @abstractmethod
    def allocation(self, path: str) -> Quantities:
        """What is allocated to a client, or to a whole subtree for a role path."""

    @abstractmethod
    def __contains__(self, client: object) -> bool:
        """Whether ``client`` was added."""

    @abstractmethod
    def is_active(self, client: str) -> bool:
        """Whether the client is known and active."""

    @abstractmethod
    def clients(self) -> list[str]:
        """Every client, active or not."""

    @abstractmethod
    def check(self) -> list[str]:
        """Problems with the sorter's internal consistency (for ``validate``); empty if none."""


class _Node:
    """One node of the DRF tree: a client (leaf) or a role path holding other nodes."""

    __slots__ = (
        "active",
        "alloc",
        "children",
        "count",
        "is_active",
        "is_leaf",
        "key",
        "n_active",
        "parent",
        "path",
    )

    def __init__(self, path: str, parent: _Node | None, is_leaf: bool) -> None:
        self.path = path
        self.parent = parent
        self.is_leaf = is_leaf
        self.children: dict[tuple[str, bool], _Node] = {}
        self.active: SortedList = SortedList()
        self.alloc: Quantities = {}
        self.count = 0
        self.is_active = False
        self.n_active = 0
        self.key: tuple[float, int, str, _Node] = (0.0, 0, path, self)


class DRFSorter(Sorter):
    """DRFSorter is the incremental weighted-DRF sorter described in the module docstring.

    With ``hierarchical=True`` client names are role paths split on ``/``; otherwise every client
    is a leaf under the root (framework ids are opaque).
    """

    def __init__(self, totals: ShareTotals, *, hierarchical: bool = False) -> None:
        self._totals = totals
        self._hierarchical = hierarchical
        self._root = _Node("", None, is_leaf=False)
        self._leaves: dict[str, _Node] = {}
        self._internal: dict[str, _Node] = {}
        self._weights: dict[str, float] = {}
        self._version = -1  # Stale until first read: nothing is keyed yet.

    # -- structure ----------------------------------------------------------------------------

    def _parent_path(self, path: str) -> str:
        if not self._hierarchical:
            return ""
        return path.rpartition("/")[0]

    def _internal_node(self, path: str) -> _Node:
        """The internal node for ``path`` (``""`` is the root), created with its ancestors."""
        if not path:
            return self._root
        node = self._internal.get(path)
        if node is not None:
            return node
        parent = self._internal_node(self._parent_path(path))
        node = _Node(path, parent, is_leaf=False)
        self._internal[path] = node
        leaf = parent.children.pop((path, True), None)
        if leaf is not None:
            # A client with this path already sits in ``parent``: it moves under its new internal
            # node, which takes over its place, allocation and activity.
            node.alloc = dict(leaf.alloc)
            node.count = leaf.count
            leaf.parent = node
            node.children[(path, True)] = leaf
            node.n_active = 1 if leaf.is_active else 0
            node.is_active = leaf.is_active
            self._version = -1
        parent.children[(path, False)] = node
        return node

    def add(self, client: str) -> None:
        if client in self._leaves:
            raise ValueError(f"client {client!r} is already in the sorter")
        # An inactive leaf with nothing allocated is in no list and changes no share, so the
        # sorter stays fresh unless an internal node had to take a client's place above it.
        parent = self._internal.get(client) or self._internal_node(self._parent_path(client))
        leaf = _Node(client, parent, is_leaf=True)
        parent.children[(client, True)] = leaf
        self._leaves[client] = leaf

    def remove(self, client: str) -> None:
        leaf = self._leaves.pop(client)
        if leaf.is_active:
            self._deactivate_leaf(leaf)
        if leaf.alloc:
            self._add_up(leaf, dict(leaf.alloc), -1, count=False)
        node = leaf.parent
        assert node is not None
        del node.children[(client, True)]
        while node is not self._root and not node.children:
            parent = node.parent
            assert parent is not None
            del parent.children[(node.path, False)]
            del self._internal[node.path]
            node = parent

    # -- activity -----------------------------------------------------------------------------

    def activate(self, client: str) -> None:
        leaf = self._leaves[client]
        if leaf.is_active:
            return
        leaf.is_active = True
        node = leaf
        fresh = self._version == self._totals.version
        while True:
            parent = node.parent
            assert parent is not None
            if fresh:
                parent.active.add(node.key)
            parent.n_active += 1
            if parent is self._root or parent.n_active > 1:
                return
            parent.is_active = True
            node = parent

    def deactivate(self, client: str) -> None:
        leaf = self._leaves[client]
        if leaf.is_active:
            self._deactivate_leaf(leaf)

    def _deactivate_leaf(self, leaf: _Node) -> None:
        leaf.is_active = False
        node = leaf
        fresh = self._version == self._totals.version
        while True:
            parent = node.parent
            assert parent is not None
            if fresh:
                parent.active.remove(node.key)
            parent.n_active -= 1
            if parent is self._root or parent.n_active > 0:
                return
            parent.is_active = False
            node = parent

    def is_active(self, client: str) -> bool:
        leaf = self._leaves.get(client)
        return leaf is not None and leaf.is_active

    # -- allocations --------------------------------------------------------------------------

    def allocated(self, client: str, quantities: Mapping[str, int]) -> None:
        self._add_up(self._leaves[client], quantities, 1, count=True)

    def unallocated(self, client: str, quantities: Mapping[str, int]) -> None:
        self._add_up(self._leaves[client], quantities, -1, count=False)

    def _add_up(self, node: _Node, quantities: Mapping[str, int], sign: int, count: bool) -> None:
        """Add ``sign * quantities`` to a node and its ancestors, moving each in its parent.

        This runs once per allocation per sorter, so the share is computed inline.
        """
        root = self._root
        totals = self._totals
        fresh = self._version == totals.version
        items = totals.items
        weights = self._weights
        while node is not root:
            alloc = node.alloc
            if sign > 0:
                for name, value in quantities.items():
                    alloc[name] = alloc.get(name, 0) + value
            else:
                for name, value in quantities.items():
                    left = alloc.get(name, 0) - value
                    if left:
                        alloc[name] = left
                    else:
                        del alloc[name]
            if count:
                node.count += 1
            parent: _Node = node.parent  # type: ignore[assignment]
            if fresh:
                share = 0.0
                for name, total in items:
                    held = alloc.get(name)
                    if held:
                        fraction = held / total
                        share = fraction if fraction > share else share
                if weights:
                    share /= weights.get(node.path, 1.0)
                new = (share, node.count, node.path, node)
                if node.is_active:
                    active = parent.active
                    active.remove(node.key)
                    active.add(new)
                node.key = new
            node = parent

    def update_weight(self, path: str, weight: float) -> None:
        if weight <= 0:
            raise ValueError(f"weight of {path!r} must be positive, got {weight}")
        if weight == 1.0:
            self._weights.pop(path, None)
        else:
            self._weights[path] = weight
        self._version = -1

    # -- reading ------------------------------------------------------------------------------

    def _rebuild(self) -> None:
        """Recompute every key and every list (after the totals, weights or tree changed)."""
        share = self._totals.share
        weights = self._weights

        def visit(node: _Node) -> None:
            keys = []
            for child in node.children.values():
                if not child.is_leaf:
                    visit(child)
                weight = weights.get(child.path, 1.0)
                child.key = (share(child.alloc) / weight, child.count, child.path, child)
                if child.is_active:
                    keys.append(child.key)
            node.active = SortedList(keys)

        visit(self._root)
        self._version = self._totals.version

    def refresh(self) -> None:
        """Bring keys up to date now (reads do this on their own)."""
        if self._version != self._totals.version:
            self._rebuild()

    def ordered(self) -> Iterator[str]:
        if self._version != self._totals.version:
            self._rebuild()
        if not self._internal:
            return (entry[2] for entry in self._root.active)
        return self._walk(self._root)

    def _walk(self, node: _Node) -> Iterator[str]:
        for entry in node.active:
            child = entry[3]
            if child.is_leaf:
                yield child.path
            else:
                yield from self._walk(child)

    def _node(self, path: str) -> _Node | None:
        return self._internal.get(path) or self._leaves.get(path)

    def share(self, path: str) -> float:
        node = self._node(path)
        if node is None:
            return 0.0
        if self._version != self._totals.version:
            self._rebuild()
        return node.key[0]

    def allocation(self, path: str) -> Quantities:
        node = self._node(path)
        return dict(node.alloc) if node is not None else {}

    def count(self, path: str) -> int:
        """How many allocations were recorded for a client or subtree."""
        node = self._node(path)
        return node.count if node is not None else 0

    def __contains__(self, client: object) -> bool:
        return client in self._leaves

    def clients(self) -> list[str]:
        return list(self._leaves)

    def check(self) -> list[str]:
        problems: list[str] = []
        self.refresh()
        share = self._totals.share

        def visit(node: _Node) -> Quantities:
            total: Quantities = {}
            active_keys = []
            for child in node.children.values():
                sub = child.alloc if child.is_leaf else visit(child)
                if sub != child.alloc and not child.is_leaf:
                    problems.append(
                        f"sorter node {child.path!r} holds {child.alloc} but its children {sub}"
                    )
                for name, value in child.alloc.items():
                    total[name] = total.get(name, 0) + value
                weight = self._weights.get(child.path, 1.0)
                expected = share(child.alloc) / weight
                if child.key[0] != expected:
                    problems.append(
                        f"sorter node {child.path!r} is keyed at share {child.key[0]}"
                        f" but its share is {expected}"
                    )
                if not child.is_leaf and child.is_active != (child.n_active > 0):
                    problems.append(f"sorter node {child.path!r} activity disagrees with children")
                if child.is_active:
                    active_keys.append(child.key)
            if list(node.active) != sorted(active_keys):
                problems.append(f"sorter node {node.path!r} has a stale order of active children")
            if node.n_active != len(active_keys):
                problems.append(f"sorter node {node.path!r} counts the wrong number of actives")
            return total

        visit(self._root)
        return problems


class RandomSorter(Sorter):
    """RandomSorter orders active clients by a weighted random draw on every call.

    Hierarchical paths are honoured the way Mesos's random sorter does: siblings are shuffled
    among themselves, then each subtree is walked in that order. Each call costs
    ``O(n log n)``, so this policy is not incremental; it exists for comparison and for clusters
    that want no fairness at all.
    """

    def __init__(
        self, totals: ShareTotals, rng: random.Random, *, hierarchical: bool = False
    ) -> None:
        self._totals = totals
        self._rng = rng
        self._hierarchical = hierarchical
        self._alloc: dict[str, Quantities] = {}
        self._counts: dict[str, int] = {}
        self._active: dict[str, None] = {}
        self._weights: dict[str, float] = {}

    def add(self, client: str) -> None:
        if client in self._alloc:
            raise ValueError(f"client {client!r} is already in the sorter")
        self._alloc[client] = {}
        self._counts[client] = 0

    def remove(self, client: str) -> None:
        del self._alloc[client]
        del self._counts[client]
        self._active.pop(client, None)

    def activate(self, client: str) -> None:
        if client not in self._alloc:
            raise KeyError(client)
        self._active[client] = None

    def deactivate(self, client: str) -> None:
        self._active.pop(client, None)

    def is_active(self, client: str) -> bool:
        return client in self._active

    def allocated(self, client: str, quantities: Mapping[str, int]) -> None:
        alloc = self._alloc[client]
        for name, value in quantities.items():
            alloc[name] = alloc.get(name, 0) + value
        self._counts[client] += 1

    def unallocated(self, client: str, quantities: Mapping[str, int]) -> None:
        alloc = self._alloc[client]
        for name, value in quantities.items():
            left = alloc.get(name, 0) - value
            if left:
                alloc[name] = left
            else:
                del alloc[name]

    def update_weight(self, path: str, weight: float) -> None:
        if weight <= 0:
            raise ValueError(f"weight of {path!r} must be positive, got {weight}")
        self._weights[path] = weight

    def ordered(self) -> Iterator[str]:
        draws: dict[str, float] = {}
        rng = self._rng
        weights = self._weights

        def draw(path: str) -> float:
            value = draws.get(path)
            if value is None:
                # Efraimidis-Spirakis: sorting by -u**(1/w) is a weighted random permutation.
                value = -(rng.random() ** (1.0 / weights.get(path, 1.0)))
                draws[path] = value
            return value

        def sort_key(client: str) -> tuple[float, ...]:
            if not self._hierarchical:
                return (draw(client),)
            parts = client.split("/")
            prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
            return (*(draw(p) for p in prefixes), draw(client + "/."))

        return iter(sorted(self._active, key=sort_key))

    def _matching(self, path: str) -> list[str]:
        if path in self._alloc and not self._hierarchical:
            return [path]
        prefix = path + "/"
        return [c for c in self._alloc if c == path or c.startswith(prefix)]

    def share(self, path: str) -> float:
        weight = self._weights.get(path, 1.0)
        return self._totals.share(self.allocation(path)) / weight

    def allocation(self, path: str) -> Quantities:
        total: Quantities = {}
        for client in self._matching(path):
            for name, value in self._alloc[client].items():
                total[name] = total.get(name, 0) + value
        return total

    def __contains__(self, client: object) -> bool:
        return client in self._alloc

    def clients(self) -> list[str]:
        return list(self._alloc)

    def check(self) -> list[str]:
        return [
            f"random sorter: active client {c!r} unknown" for c in self._active if c not in self
        ]


def make_sorter(
    name: str, totals: ShareTotals, rng: random.Random, *, hierarchical: bool = False
) -> Sorter:
    """The sorter called ``name`` (one of :data:`SORTERS`)."""
    if name == "drf":
        return DRFSorter(totals, hierarchical=hierarchical)
    if name == "random":
        return RandomSorter(totals, rng, hierarchical=hierarchical)
    raise ValueError(f"unknown sorter {name!r}: expected one of {', '.join(SORTERS)}")
