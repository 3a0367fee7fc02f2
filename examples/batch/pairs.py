"""Key-value operations on RDDs of ``(key, value)`` pairs (PySpark's names and semantics).

Every ``...ByKey`` operation is one shuffle (:class:`.rdds.ShuffleDependency`) with an
:class:`.partitioner.Aggregator`: ``reduceByKey``, ``aggregateByKey``, ``foldByKey`` and
``combineByKey`` combine on the map side, so only one record per key and map task crosses the
network. An RDD already partitioned the way an operation asks (same partitioner) is combined in
place, without a shuffle. Joins tag each side, shuffle once, and pair the two lists of a key on
the reduce side (PySpark joins through a grouping the same way). Grouped values are
:class:`ResultIterable`, a list (PySpark's is an iterable with ``len``; a list is that and more).
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, cast

from examples.batch.partitioner import (
    COGROUP,
    Aggregator,
    HashPartitioner,
    RangePartitioner,
    ResultIterable,
    portable_hash,
    tag_left,
    tag_right,
)
from examples.batch.rdds import ShuffleDependency, ShuffledRDD

if TYPE_CHECKING:
    from examples.batch.rdd import RDD

__all__ = ["PairOps", "ResultIterable"]

SAMPLE_PER_PARTITION = 20
"""sortByKey samples about this many keys per output partition (as Spark's RangePartitioner)."""


def _first(kv: tuple[Any, Any]) -> Any:
    return kv[0]


def _second(kv: tuple[Any, Any]) -> Any:
    return kv[1]


class PairOps:
    """The ``(key, value)`` operations of :class:`.rdd.RDD`."""

    def _rdd(self) -> RDD[Any]:
        return cast("RDD[Any]", self)

    def _shuffle(
        self,
        partitioner: Any,
        aggregator: Aggregator | None,
        map_side_combine: bool,
    ) -> RDD[Any]:
        from examples.batch.rdd import RDD

        rdd = self._rdd()
        dep = ShuffleDependency(
            rdd, rdd.ctx._new_shuffle_id(), partitioner, aggregator, map_side_combine
        )
        return RDD(rdd.ctx, ShuffledRDD(dep, partitioner.num_partitions), partitioner)

    def _reduce_partitions(self, numPartitions: int | None) -> int:
        if numPartitions is None:
            return max(1, self._rdd().getNumPartitions())
        if (
            not isinstance(numPartitions, int)
            or isinstance(numPartitions, bool)
            or numPartitions < 1
        ):
            raise ValueError(f"numPartitions must be a positive int, not {numPartitions!r}")
        return numPartitions

    def keys(self) -> RDD[Any]:
        return self._rdd().map(_first)

    def values(self) -> RDD[Any]:
        return self._rdd().map(_second)

    def mapValues(self, f: Callable[[Any], Any]) -> RDD[Any]:
        return self._rdd().map(lambda kv: (kv[0], f(kv[1])), True)

    def flatMapValues(self, f: Callable[[Any], Iterable[Any]]) -> RDD[Any]:
        return self._rdd().flatMap(lambda kv: ((kv[0], x) for x in f(kv[1])), True)

    def partitionBy(
        self, numPartitions: int | None, partitionFunc: Callable[[Any], int] = portable_hash
    ) -> RDD[Any]:
        """The same records, key ``k`` in partition ``partitionFunc(k) % numPartitions``."""
        partitioner = HashPartitioner(self._reduce_partitions(numPartitions), partitionFunc)
        if self._rdd().partitioner == partitioner:
            return self._rdd()
        return self._shuffle(partitioner, None, False)

    def combineByKey(
        self,
        createCombiner: Callable[[Any], Any],
        mergeValue: Callable[[Any, Any], Any],
        mergeCombiners: Callable[[Any, Any], Any],
        numPartitions: int | None = None,
        partitionFunc: Callable[[Any], int] = portable_hash,
    ) -> RDD[Any]:
        """The generic per-key aggregation (combined on the map side too)."""
        aggregator = Aggregator(createCombiner, mergeValue, mergeCombiners)
        partitioner = HashPartitioner(self._reduce_partitions(numPartitions), partitionFunc)
        rdd = self._rdd()
        if rdd.partitioner == partitioner:  # Already where they belong: combine in place.
            return rdd.mapPartitions(lambda it: iter(aggregator.combine_values(it).items()), True)
        return self._shuffle(partitioner, aggregator, True)

    def reduceByKey(
        self,
        func: Callable[[Any, Any], Any],
        numPartitions: int | None = None,
        partitionFunc: Callable[[Any], int] = portable_hash,
    ) -> RDD[Any]:
        """Each key once, its values combined with ``func``."""
        return self.combineByKey(_identity, func, func, numPartitions, partitionFunc)

    def foldByKey(
        self,
        zeroValue: Any,
        func: Callable[[Any, Any], Any],
        numPartitions: int | None = None,
        partitionFunc: Callable[[Any], int] = portable_hash,
    ) -> RDD[Any]:
        return self.combineByKey(
            lambda v: func(copy.deepcopy(zeroValue), v), func, func, numPartitions, partitionFunc
        )

    def aggregateByKey(
        self,
        zeroValue: Any,
        seqFunc: Callable[[Any, Any], Any],
        combFunc: Callable[[Any, Any], Any],
        numPartitions: int | None = None,
        partitionFunc: Callable[[Any], int] = portable_hash,
    ) -> RDD[Any]:
        return self.combineByKey(
            lambda v: seqFunc(copy.deepcopy(zeroValue), v),
            seqFunc,
            combFunc,
            numPartitions,
            partitionFunc,
        )

    def groupByKey(
        self, numPartitions: int | None = None, partitionFunc: Callable[[Any], int] = portable_hash
    ) -> RDD[Any]:
        """``(key, ResultIterable(values))`` (no map-side combine: it would not shrink data)."""
        aggregator = Aggregator(_new_group, _append, _extend)
        partitioner = HashPartitioner(self._reduce_partitions(numPartitions), partitionFunc)
        rdd = self._rdd()
        if rdd.partitioner == partitioner:
            return rdd.mapPartitions(lambda it: iter(aggregator.combine_values(it).items()), True)
        return self._shuffle(partitioner, aggregator, False)

    def _cogroup_lists(self, other: RDD[Any], numPartitions: int | None) -> RDD[Any]:
        rdd = self._rdd()
        n = numPartitions
        if n is None:
            n = rdd.getNumPartitions() + other.getNumPartitions()
        tagged = rdd.map(tag_left, True).union(other.map(tag_right, True))
        partitioner = HashPartitioner(self._reduce_partitions(n), portable_hash)
        return tagged._shuffle(partitioner, COGROUP, False)

    def cogroup(self, other: RDD[Any], numPartitions: int | None = None) -> RDD[Any]:
        """``(key, (ResultIterable(values here), ResultIterable(values in other)))``."""
        return self._cogroup_lists(other, numPartitions)

    def groupWith(self, other: RDD[Any]) -> RDD[Any]:
        return self.cogroup(other)

    def join(self, other: RDD[Any], numPartitions: int | None = None) -> RDD[Any]:
        """``(k, (v, w))`` for every pair of values of a key present on both sides."""

        def pairs(it: Iterator[Any]) -> Iterator[Any]:
            for k, (vs, ws) in it:
                for v in vs:
                    for w in ws:
                        yield k, (v, w)

        return self._cogroup_lists(other, numPartitions).mapPartitions(pairs, True)

    def leftOuterJoin(self, other: RDD[Any], numPartitions: int | None = None) -> RDD[Any]:
        def pairs(it: Iterator[Any]) -> Iterator[Any]:
            for k, (vs, ws) in it:
                for v in vs:
                    for w in ws or (None,):
                        yield k, (v, w)

        return self._cogroup_lists(other, numPartitions).mapPartitions(pairs, True)

    def rightOuterJoin(self, other: RDD[Any], numPartitions: int | None = None) -> RDD[Any]:
        def pairs(it: Iterator[Any]) -> Iterator[Any]:
            for k, (vs, ws) in it:
                for v in vs or (None,):
                    for w in ws:
                        yield k, (v, w)

        return self._cogroup_lists(other, numPartitions).mapPartitions(pairs, True)

    def fullOuterJoin(self, other: RDD[Any], numPartitions: int | None = None) -> RDD[Any]:
        def pairs(it: Iterator[Any]) -> Iterator[Any]:
            for k, (vs, ws) in it:
                for v in vs or (None,):
                    for w in ws or (None,):
                        yield k, (v, w)

        return self._cogroup_lists(other, numPartitions).mapPartitions(pairs, True)

    def sortByKey(
        self,
        ascending: bool = True,
        numPartitions: int | None = None,
        keyfunc: Callable[[Any], Any] = lambda x: x,
    ) -> RDD[Any]:
        """Sorted by key: a job samples the keys for range bounds, a shuffle moves each key to
        its range, and each partition sorts itself."""
        rdd = self._rdd()
        n = self._reduce_partitions(numPartitions)

        def sort_partition(it: Iterator[Any]) -> Iterator[Any]:
            return iter(sorted(it, key=lambda kv: keyfunc(kv[0]), reverse=not ascending))

        if n == 1:
            single = rdd.coalesce(1) if rdd.getNumPartitions() > 1 else rdd
            return single.mapPartitions(sort_partition, True)
        inputs = max(1, rdd.getNumPartitions())
        per_partition = math.ceil(3.0 * SAMPLE_PER_PARTITION * n / inputs)

        def reservoir(index: int, it: Iterator[Any]) -> Iterator[Any]:
            rng = random.Random(index)
            sample: list[Any] = []
            count = 0
            for count, kv in enumerate(it, 1):
                if len(sample) < per_partition:
                    sample.append(keyfunc(kv[0]))
                else:
                    j = rng.randrange(count)
                    if j < per_partition:
                        sample[j] = keyfunc(kv[0])
            return iter([(count, sample)])

        weighted: list[tuple[float, Any]] = []
        for count, sample in rdd.mapPartitionsWithIndex(reservoir).collect():
            weighted.extend((count / len(sample), key) for key in sample)
        weighted.sort(key=_second)
        bounds = RangePartitioner.bounds_from_samples(weighted, n)
        partitioner = RangePartitioner(bounds, ascending, keyfunc, n)
        return self._shuffle(partitioner, None, False).mapPartitions(sort_partition, True)


def _identity(x: Any) -> Any:
    return x


def _new_group(v: Any) -> ResultIterable:
    group = ResultIterable()
    group.append(v)
    return group


def _append(group: list[Any], v: Any) -> list[Any]:
    group.append(v)
    return group


def _extend(group: list[Any], more: list[Any]) -> list[Any]:
    group.extend(more)
    return group
