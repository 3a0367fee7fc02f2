"""Partitioners and aggregators: which reduce partition a key goes to, and how values combine.

``portable_hash`` is PySpark's: equal on every worker process as long as they all run with the
same ``PYTHONHASHSEED`` (the executor starts its workers with ``PYTHONHASHSEED=0``, as PySpark
demands), with ``None`` hashing to 0 and tuples hashed from their items (Python 3.11 hashes
``None`` by address, which differs between processes). Keys of the common types (``str``,
``int``, ``bytes``, ``float``) skip the Python-level function: the builtin ``hash`` is the same
value and costs a tenth.
"""

from __future__ import annotations

import bisect
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "COGROUP",
    "Aggregator",
    "ResultIterable",
    "tag_left",
    "cogroup_add",
    "tag_right",
    "HashPartitioner",
    "Partitioner",
    "RangePartitioner",
    "portable_hash",
]

_FAST = (str, int, bytes, float)


def portable_hash(x: Any) -> int:
    """PySpark's ``portable_hash``: a hash equal across processes with one PYTHONHASHSEED."""
    if x is None:
        return 0
    if isinstance(x, tuple):
        h = 0x345678
        for i in x:
            h ^= portable_hash(i)
            h *= 1000003
            h &= sys.maxsize
        h ^= len(x)
        if h == -1:
            h = -2
        return int(h)
    return hash(x)


class Partitioner:
    """Maps a key to a partition in ``range(num_partitions)``; equal partitioners co-partition."""

    num_partitions: int

    def __call__(self, key: Any) -> int:
        raise NotImplementedError

    def bucket_function(self) -> Callable[[Any], int]:
        """The fastest callable computing ``self(key)`` (used once per record)."""
        return self.__call__


class HashPartitioner(Partitioner):
    """``partition_func(key) % num_partitions`` (PySpark's partitionBy with ``portable_hash``)."""

    def __init__(self, num_partitions: int, partition_func: Callable[[Any], int] = portable_hash):
        if not isinstance(num_partitions, int) or num_partitions < 1:
            raise ValueError(f"numPartitions must be a positive int, not {num_partitions!r}")
        self.num_partitions = num_partitions
        self.partition_func = partition_func

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, HashPartitioner)
            and other.num_partitions == self.num_partitions
            and other.partition_func is self.partition_func
        )

    def __hash__(self) -> int:
        return hash((self.num_partitions, id(self.partition_func)))

    def __call__(self, key: Any) -> int:
        return self.partition_func(key) % self.num_partitions

    def bucket_function(self) -> Callable[[Any], int]:
        n, func = self.num_partitions, self.partition_func
        if func is not portable_hash:
            return lambda key: func(key) % n
        fast = _FAST

        def bucket(key: Any) -> int:
            if type(key) in fast:
                return hash(key) % n
            return portable_hash(key) % n

        return bucket

    def __repr__(self) -> str:
        return f"HashPartitioner({self.num_partitions})"


class RangePartitioner(Partitioner):
    """Sorted ranges of keys: ``bounds`` split the key space (``sortByKey``'s partitioner)."""

    def __init__(
        self,
        bounds: Sequence[Any],
        ascending: bool,
        keyfunc: Callable[[Any], Any],
        num_partitions: int | None = None,
    ) -> None:
        self.bounds = list(bounds)
        self.num_partitions = max(num_partitions or 0, len(self.bounds) + 1)
        self.ascending = ascending
        self.keyfunc = keyfunc

    def __call__(self, key: Any) -> int:
        p = bisect.bisect_left(self.bounds, self.keyfunc(key))
        return p if self.ascending else self.num_partitions - 1 - p

    @staticmethod
    def bounds_from_samples(samples: Sequence[tuple[float, Any]], num_partitions: int) -> list[Any]:
        """Bounds splitting weighted samples ``(weight, key)``, already sorted by key, evenly.

        Spark's ``RangePartitioner.determineBounds``: each sample stands for ``weight`` records
        of its input partition, so a small partition does not get as many bounds as a big one.
        """
        if num_partitions <= 1 or not samples:
            return []
        total = sum(weight for weight, _ in samples)
        step = total / num_partitions
        bounds: list[Any] = []
        cumulative, target = 0.0, step
        for weight, key in samples:
            cumulative += weight
            if cumulative >= target:
                if not bounds or key > bounds[-1]:
                    bounds.append(key)
                    target += step
                if len(bounds) == num_partitions - 1:
                    break
        return bounds


@dataclass(frozen=True)
class Aggregator:
    """combineByKey's three functions; map-side combine uses all three, the reduce side two."""

    create_combiner: Callable[[Any], Any]
    merge_value: Callable[[Any, Any], Any]
    merge_combiners: Callable[[Any, Any], Any]

    def combine_values(self, items: Any) -> dict[Any, Any]:
        """``(k, v)`` records into ``{k: combiner}``."""
        create, merge = self.create_combiner, self.merge_value
        combined: dict[Any, Any] = {}
        get = combined.get
        missing = _MISSING
        for k, v in items:
            c = get(k, missing)
            combined[k] = create(v) if c is missing else merge(c, v)
        return combined

    def combine_combiners(self, items: Any, into: dict[Any, Any] | None = None) -> dict[Any, Any]:
        """``(k, combiner)`` records merged into ``into`` (a new dict when None)."""
        merge = self.merge_combiners
        combined: dict[Any, Any] = {} if into is None else into
        get = combined.get
        missing = _MISSING
        for k, c in items:
            old = get(k, missing)
            combined[k] = c if old is missing else merge(old, c)
        return combined


_MISSING = object()


class ResultIterable(list[Any]):
    """The values of one key after a grouping (PySpark's name; a list here)."""


def tag_left(kv: tuple[Any, Any]) -> tuple[Any, tuple[int, Any]]:
    return kv[0], (0, kv[1])


def tag_right(kv: tuple[Any, Any]) -> tuple[Any, tuple[int, Any]]:
    return kv[0], (1, kv[1])


def _new_pair(tv: tuple[int, Any]) -> tuple[ResultIterable, ResultIterable]:
    pair = (ResultIterable(), ResultIterable())
    pair[tv[0]].append(tv[1])
    return pair


def cogroup_add(pair: tuple[list[Any], list[Any]], tv: tuple[int, Any]) -> Any:
    pair[tv[0]].append(tv[1])
    return pair


def _merge_pairs(a: tuple[list[Any], list[Any]], b: tuple[list[Any], list[Any]]) -> Any:
    a[0].extend(b[0])
    a[1].extend(b[1])
    return a


COGROUP = Aggregator(_new_pair, cogroup_add, _merge_pairs)
"""Both sides' values of a key, ``(ResultIterable(left), ResultIterable(right))``: the reduce
side of joins and cogroup (:class:`.rdds.ShuffledRDD` runs it inline, it is per record)."""
