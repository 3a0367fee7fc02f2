"""RDD: PySpark's resilient distributed dataset, with its names and semantics.

Transformations are lazy: each returns a new RDD whose source (:mod:`.rdds`) records how to
compute it from its parents (the lineage). Actions run a job through the context's DAG
scheduler (``ctx.runJob(rdd, func, partitions)``: ``func`` turns one partition's iterator into
a value, computed in a worker) and combine the per-partition values in the driver. The
key-value operations are in :class:`.pairs.PairOps`.
"""

from __future__ import annotations

import heapq
import itertools
import operator
import os
import random
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from functools import reduce as _reduce
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from examples.batch.pairs import PairOps
from examples.batch.rdds import (
    CartesianRDD,
    CoalescedRDD,
    Dependency,
    MapPartitionsRDD,
    Partition,
    Source,
    UnionRDD,
    cached_iterator,
)
from examples.batch.shared import StorageLevel, TaskContext

if TYPE_CHECKING:
    from examples.batch.context import BatchContext

__all__ = ["RDD"]

T = TypeVar("T")


class RDD(PairOps, Generic[T]):
    """A partitioned collection computed lazily from its lineage (``sc.parallelize(...)``...)."""

    def __init__(self, ctx: BatchContext, source: Source, partitioner: Any = None) -> None:
        self.ctx = ctx
        self.id = ctx._new_rdd_id()
        self.source = source
        self.partitioner = partitioner
        self.name: str | None = None
        self._storage: StorageLevel | None = None
        self._partitions: list[Partition] | None = None

    # -- internals used by the scheduler and the workers --------------------------------------

    def partitions(self) -> list[Partition]:
        if self._partitions is None:
            self._partitions = self.source.partitions()
        return self._partitions

    def dependencies(self) -> list[Dependency]:
        return self.source.deps

    def iterator(self, split: Partition, task: TaskContext) -> Iterator[Any]:
        """The partition's records: from the block store when persisted, else computed."""
        if self._storage is None:
            return self.source.compute(split, task)
        return cached_iterator(self, split, task)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["ctx"] = None
        state["_partitions"] = None
        return state

    def _narrow(self, func: Callable[[int, Iterator[Any]], Iterable[Any]], keep: bool) -> RDD[Any]:
        return RDD(self.ctx, MapPartitionsRDD(self, func), self.partitioner if keep else None)

    def __repr__(self) -> str:
        kind = type(self.source).__name__
        return f"{self.name or kind}[{self.id}]"

    # -- basics -------------------------------------------------------------------------------

    def getNumPartitions(self) -> int:
        """How many partitions this RDD has."""
        return len(self.partitions())

    def setName(self, name: str) -> RDD[Any]:
        self.name = name
        return self

    def cache(self) -> RDD[Any]:
        """Keep the computed partitions in the executors (``persist(MEMORY_ONLY)``)."""
        return self.persist(StorageLevel.MEMORY_ONLY)

    def persist(self, storageLevel: StorageLevel = StorageLevel.MEMORY_ONLY) -> RDD[Any]:
        """Keep the computed partitions in the executors' block stores for later jobs."""
        if not isinstance(storageLevel, StorageLevel):
            raise TypeError(f"storageLevel must be a StorageLevel, not {storageLevel!r}")
        self._storage = storageLevel
        return self

    def unpersist(self, blocking: bool = False) -> RDD[Any]:
        """Forget the cached partitions (the executors delete them)."""
        self._storage = None
        self.ctx._unpersist(self.id)
        return self

    @property
    def is_cached(self) -> bool:
        return self._storage is not None

    def getStorageLevel(self) -> StorageLevel:
        return self._storage or StorageLevel(False, False, False, False, 1)

    # -- narrow transformations ---------------------------------------------------------------

    def map(self, f: Callable[[Any], Any], preservesPartitioning: bool = False) -> RDD[Any]:
        return self._narrow(lambda _, it: map(f, it), preservesPartitioning)

    def flatMap(
        self, f: Callable[[Any], Iterable[Any]], preservesPartitioning: bool = False
    ) -> RDD[Any]:
        chain = itertools.chain.from_iterable
        return self._narrow(lambda _, it: chain(map(f, it)), preservesPartitioning)

    def filter(self, f: Callable[[Any], bool]) -> RDD[Any]:
        return self._narrow(lambda _, it: filter(f, it), True)

    def mapPartitions(
        self, f: Callable[[Iterator[Any]], Iterable[Any]], preservesPartitioning: bool = False
    ) -> RDD[Any]:
        return self._narrow(lambda _, it: f(it), preservesPartitioning)

    def mapPartitionsWithIndex(
        self, f: Callable[[int, Iterator[Any]], Iterable[Any]], preservesPartitioning: bool = False
    ) -> RDD[Any]:
        return self._narrow(f, preservesPartitioning)

    def glom(self) -> RDD[Any]:
        """Each partition as one list."""
        return self._narrow(lambda _, it: [list(it)], False)

    def keyBy(self, f: Callable[[Any], Any]) -> RDD[Any]:
        return self.map(lambda x: (f(x), x))

    def union(self, other: RDD[Any]) -> RDD[Any]:
        """The records of both (duplicates kept); partitions of ``self`` then of ``other``."""
        if not isinstance(other, RDD):
            raise TypeError(f"union needs an RDD, not {type(other).__name__}")
        return RDD(self.ctx, UnionRDD([self, other]))

    def __add__(self, other: RDD[Any]) -> RDD[Any]:
        return self.union(other)

    def cartesian(self, other: RDD[Any]) -> RDD[Any]:
        """Every pair ``(a, b)`` with ``a`` in ``self`` and ``b`` in ``other``."""
        return RDD(self.ctx, CartesianRDD(self, other))

    def coalesce(self, numPartitions: int, shuffle: bool = False) -> RDD[Any]:
        """Fewer partitions, by merging neighbours (or through a shuffle when ``shuffle``)."""
        _check_partitions(numPartitions)
        if shuffle:
            return self.repartition(numPartitions)
        return RDD(self.ctx, CoalescedRDD(self, numPartitions))

    def repartition(self, numPartitions: int) -> RDD[Any]:
        """Exactly ``numPartitions`` partitions, balanced through a shuffle."""
        _check_partitions(numPartitions)

        def spread(index: int, it: Iterator[Any]) -> Iterator[tuple[int, Any]]:
            return ((i, x) for i, x in enumerate(it, index * 7919))

        return self.mapPartitionsWithIndex(spread).partitionBy(numPartitions, _int_key).values()

    def sample(self, withReplacement: bool, fraction: float, seed: int | None = None) -> RDD[Any]:
        """A random sample: each record kept with probability ``fraction`` (or drawn a Poisson
        number of times with replacement); the same ``seed`` gives the same sample."""
        if fraction < 0.0:
            raise ValueError(f"fraction must be >= 0, not {fraction}")
        base = random.randint(0, sys.maxsize) if seed is None else seed

        def pick(index: int, it: Iterator[Any]) -> Iterator[Any]:
            rng = random.Random(base ^ (index * 0x9E3779B1))
            if not withReplacement:
                return (x for x in it if rng.random() < fraction)
            return (x for x in it for _ in range(_poisson(rng, fraction)))

        return self.mapPartitionsWithIndex(pick, True)

    def distinct(self, numPartitions: int | None = None) -> RDD[Any]:
        """Each distinct record once."""
        return (
            self.map(lambda x: (x, None))
            .reduceByKey(lambda x, _: x, numPartitions)
            .map(operator.itemgetter(0))
        )

    def groupBy(
        self, f: Callable[[Any], Any], numPartitions: int | None = None, partitionFunc: Any = None
    ) -> RDD[Any]:
        rdd = self.map(lambda x: (f(x), x))
        if partitionFunc is None:
            return rdd.groupByKey(numPartitions)
        return rdd.groupByKey(numPartitions, partitionFunc)

    def sortBy(
        self,
        keyfunc: Callable[[Any], Any],
        ascending: bool = True,
        numPartitions: int | None = None,
    ) -> RDD[Any]:
        """The records sorted by ``keyfunc`` (a range-partitioned shuffle, then local sorts)."""
        return self.keyBy(keyfunc).sortByKey(ascending, numPartitions).values()

    def zipWithIndex(self) -> RDD[Any]:
        """``(record, index)``: indexes follow partition order, then order inside a partition
        (runs a job to count the partitions first, as PySpark does)."""
        starts = [0]
        if self.getNumPartitions() > 1:
            counts = self.ctx.runJob(self, _count, list(range(self.getNumPartitions() - 1)))
            for n in counts:
                starts.append(starts[-1] + n)

        def number(index: int, it: Iterator[Any]) -> Iterator[tuple[Any, int]]:
            return zip(it, itertools.count(starts[index]))

        return self.mapPartitionsWithIndex(number)

    # -- actions ------------------------------------------------------------------------------

    def collect(self) -> list[Any]:
        """Every record, in partition order."""
        return list(itertools.chain.from_iterable(self.ctx.runJob(self, list)))

    def count(self) -> int:
        return sum(self.ctx.runJob(self, _count))

    def isEmpty(self) -> bool:
        return self.getNumPartitions() == 0 or len(self.take(1)) == 0

    def countByValue(self) -> dict[Any, int]:
        """``{record: how many times}`` (a defaultdict(int), as PySpark returns)."""

        def counts(it: Iterator[Any]) -> dict[Any, int]:
            found: dict[Any, int] = defaultdict(int)
            for x in it:
                found[x] += 1
            return found

        total: dict[Any, int] = defaultdict(int)
        for part in self.ctx.runJob(self, counts):
            for k, n in part.items():
                total[k] += n
        return total

    def countByKey(self) -> dict[Any, int]:
        return self.map(operator.itemgetter(0)).countByValue()

    def take(self, num: int) -> list[Any]:
        """The first ``num`` records, scanning one partition first, then more (as PySpark)."""
        items: list[Any] = []
        total = self.getNumPartitions()
        scanned = 0
        while len(items) < num and scanned < total:
            try_parts = 1
            if scanned > 0:
                if not items:
                    try_parts = scanned * 4
                else:
                    try_parts = int(1.5 * num * scanned / len(items)) - scanned
                    try_parts = min(max(try_parts, 1), scanned * 4)
            left = num - len(items)
            parts = list(range(scanned, min(scanned + try_parts, total)))
            for part in self.ctx.runJob(self, _take_upto(left), parts):
                items.extend(part)
            scanned += try_parts
        return items[:num]

    def first(self) -> Any:
        """The first record; ValueError on an empty RDD."""
        found = self.take(1)
        if not found:
            raise ValueError("RDD is empty")
        return found[0]

    def takeOrdered(self, num: int, key: Callable[[Any], Any] | None = None) -> list[Any]:
        """The ``num`` smallest records (by ``key``), in ascending order."""
        parts = self.ctx.runJob(self, lambda it: heapq.nsmallest(num, it, key=key))
        return heapq.nsmallest(num, itertools.chain.from_iterable(parts), key=key)

    def top(self, num: int, key: Callable[[Any], Any] | None = None) -> list[Any]:
        """The ``num`` largest records (by ``key``), in descending order."""
        parts = self.ctx.runJob(self, lambda it: heapq.nlargest(num, it, key=key))
        return heapq.nlargest(num, itertools.chain.from_iterable(parts), key=key)

    def reduce(self, f: Callable[[Any, Any], Any]) -> Any:
        """The records combined with ``f``; ValueError on an empty RDD."""

        def part(it: Iterator[Any]) -> list[Any]:
            it = iter(it)
            for first in it:
                return [_reduce(f, it, first)]
            return []

        values = list(itertools.chain.from_iterable(self.ctx.runJob(self, part)))
        if not values:
            raise ValueError("Can not reduce() empty RDD")
        return _reduce(f, values)

    def fold(self, zeroValue: Any, op: Callable[[Any, Any], Any]) -> Any:
        """Each partition folded from ``zeroValue``, then the results folded from it."""
        parts = self.ctx.runJob(self, lambda it: _reduce(op, it, zeroValue))
        return _reduce(op, parts, zeroValue)

    def aggregate(
        self, zeroValue: Any, seqOp: Callable[[Any, Any], Any], combOp: Callable[[Any, Any], Any]
    ) -> Any:
        parts = self.ctx.runJob(self, lambda it: _reduce(seqOp, it, zeroValue))
        return _reduce(combOp, parts, zeroValue)

    def sum(self) -> Any:
        return sum(self.ctx.runJob(self, sum))

    def mean(self) -> float:
        """The arithmetic mean (0.0 for an empty RDD, as PySpark's StatCounter says)."""
        parts = self.ctx.runJob(self, _count_sum)
        n = sum(p[0] for p in parts)
        return 0.0 if n == 0 else float(sum(p[1] for p in parts) / n)

    def min(self, key: Callable[[Any], Any] | None = None) -> Any:
        if key is None:
            return self.reduce(min)
        return self.reduce(lambda a, b: min(a, b, key=key))

    def max(self, key: Callable[[Any], Any] | None = None) -> Any:
        if key is None:
            return self.reduce(max)
        return self.reduce(lambda a, b: max(a, b, key=key))

    def foreach(self, f: Callable[[Any], Any]) -> None:
        """``f(record)`` for each record, in the workers."""

        def run(it: Iterator[Any]) -> None:
            for x in it:
                f(x)

        self.ctx.runJob(self, run)

    def foreachPartition(self, f: Callable[[Iterator[Any]], Any]) -> None:
        """``f(iterator)`` for each partition, in the workers."""
        self.ctx.runJob(self, lambda it: (f(it), None)[1])

    def saveAsTextFile(self, path: str, compressionCodecClass: str | None = None) -> None:
        """One ``part-NNNNN`` file per partition (``str(record)`` lines) and ``_SUCCESS``."""
        if compressionCodecClass is not None:
            raise ValueError("compressionCodecClass is not supported; write uncompressed text")
        local = "://" not in path or path.startswith("file://")
        directory = path.removeprefix("file://")
        if local:
            if os.path.exists(directory):
                raise FileExistsError(f"Output directory {path} already exists")
            os.makedirs(directory)
        else:
            import fsspec  # type: ignore[import-untyped]

            fs, root = fsspec.core.url_to_fs(path)
            if fs.exists(root):
                raise FileExistsError(f"Output directory {path} already exists")
            fs.makedirs(root, exist_ok=True)

        def write(index: int, it: Iterator[Any]) -> Iterator[int]:
            name = f"part-{index:05d}"
            lines = (x if isinstance(x, str) else str(x) for x in it)
            if local:
                temporary = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
                with open(temporary, "w", encoding="utf-8") as out:
                    for line in lines:
                        out.write(line)
                        out.write("\n")
                os.replace(temporary, os.path.join(directory, name))
            else:
                import fsspec

                with fsspec.open(f"{path.rstrip('/')}/{name}", "w", encoding="utf-8") as out:
                    for line in lines:
                        out.write(line + "\n")
            return iter([1])

        self.mapPartitionsWithIndex(write).count()
        if local:
            open(os.path.join(directory, "_SUCCESS"), "wb").close()
        else:
            import fsspec

            with fsspec.open(f"{path.rstrip('/')}/_SUCCESS", "wb"):
                pass


def _take_upto(n: int) -> Callable[[Iterator[Any]], list[Any]]:
    return lambda it: list(itertools.islice(it, n))


def _count(it: Iterable[Any]) -> int:
    n = 0
    for _ in it:
        n += 1
    return n


def _count_sum(it: Iterable[Any]) -> tuple[int, Any]:
    n, total = 0, 0
    for x in it:
        n += 1
        total += x
    return n, total


def _int_key(key: int) -> int:
    return key


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method: means here are sampling fractions, small)."""
    limit, k, p = pow(2.718281828459045, -mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _check_partitions(n: Any) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"numPartitions must be a positive int, not {n!r}")
