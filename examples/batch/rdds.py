"""The RDD classes behind the API: partitions, dependencies and how each computes a partition.

Every RDD knows its partitions (small objects that travel in the task that computes them), its
dependencies (narrow: a partition needs a few partitions of the parent, computed in the same
task; shuffle: it needs every map output of the parent) and ``compute(split, task)``, an
iterator. Narrow operations chain iterators, so a stage runs as one pipeline per partition
with builtin ``map``/``filter`` doing the per-record work. An RDD pickles without its context
and without its partition list (each task carries its own partition); a shuffle dependency
pickles without its parent, which the reduce side never needs.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from examples.batch.partitioner import Aggregator, Partitioner, ResultIterable, cogroup_add
from examples.batch.shared import TaskContext
from examples.batch.shuffle import BlockFetcher, MapOutput, decode_frames, encode_frames

if TYPE_CHECKING:
    from examples.batch.rdd import RDD

__all__ = [
    "CartesianRDD",
    "CoalescedRDD",
    "MapPartitionsRDD",
    "NarrowDependency",
    "ParallelCollectionRDD",
    "Partition",
    "ShuffleDependency",
    "ShuffledRDD",
    "Source",
    "TextFileRDD",
    "cached_iterator",
    "UnionRDD",
]


@dataclass
class Partition:
    """One partition of an RDD; subclasses carry what computing it needs."""

    index: int


@dataclass
class DataPartition(Partition):
    data: Any = None


@dataclass
class UnionPartition(Partition):
    parent: int = 0
    split: Partition | None = None


@dataclass
class CoalescedPartition(Partition):
    splits: list[Partition] = field(default_factory=list)


@dataclass
class CartesianPartition(Partition):
    left: Partition | None = None
    right: Partition | None = None


@dataclass
class FileSplit(Partition):
    path: str = ""
    start: int = 0
    end: int = 0


class NarrowDependency:
    """A child partition needs some partitions of ``rdd``, computed in the same task."""

    def __init__(self, rdd: RDD[Any]) -> None:
        self.rdd = rdd


class ShuffleDependency:
    """A child partition needs its block of every map output of ``rdd``: a stage boundary."""

    def __init__(
        self,
        rdd: RDD[Any],
        shuffle_id: int,
        partitioner: Partitioner,
        aggregator: Aggregator | None,
        map_side_combine: bool,
    ) -> None:
        self.rdd: RDD[Any] | None = rdd
        self.shuffle_id = shuffle_id
        self.partitioner = partitioner
        self.aggregator = aggregator
        self.map_side_combine = map_side_combine

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["rdd"] = None
        return state


Dependency = NarrowDependency | ShuffleDependency


def _slices(data: Any, num_slices: int) -> list[Any]:
    """Spark's ParallelCollectionRDD.slice: ``[i*n//k, (i+1)*n//k)`` (ranges stay ranges)."""
    length = len(data)
    if not isinstance(data, range | list | tuple):
        data = list(data)
    return [
        data[i * length // num_slices : (i + 1) * length // num_slices] for i in range(num_slices)
    ]


READ_CHUNK = 4 * 1024 * 1024
"""textFile reads, decodes and splits this many bytes at a time."""


def _lines(path: str, start: int, end: int) -> Iterator[str]:
    """Lines starting in ``[start, end)`` of a text file (Hadoop's LineRecordReader rule)."""
    if "://" in path and not path.startswith("file://"):
        import fsspec  # type: ignore[import-untyped]

        opened: Any = fsspec.open(path, "rb").open()
    else:
        opened = open(path.removeprefix("file://"), "rb")  # noqa: SIM115
    with opened as f:
        if start > 0:
            f.seek(start - 1)
            f.readline()  # The line in progress at `start` belongs to the previous split.
        pos = f.tell()
        while pos < end:  # Chunks of whole lines: memory stays bounded whatever the split.
            chunk = f.read(min(READ_CHUNK, end - pos))
            if not chunk:
                return
            pos += len(chunk)
            if not chunk.endswith(b"\n"):
                rest = f.readline()  # The last line starting before the cut may run past it.
                pos += len(rest)
                chunk += rest
            lines = chunk.decode("utf-8", errors="replace").split("\n")
            if lines[-1] == "":
                lines.pop()
            for line in lines:
                yield line[:-1] if line.endswith("\r") else line


class Source:
    """How an RDD's partitions are made and computed (the RDD object wraps one)."""

    deps: list[Dependency]

    def partitions(self) -> list[Partition]:
        raise NotImplementedError

    def compute(self, split: Partition, task: TaskContext) -> Iterator[Any]:
        raise NotImplementedError


def cached_iterator(rdd: RDD[Any], split: Partition, task: TaskContext) -> Iterator[Any]:
    """A persisted RDD's partition: from the executor's block store, or computed and stored."""
    path = os.path.join(task.block_dir, f"rdd_{rdd.id}_{split.index}")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        records = list(rdd.source.compute(split, task))
        with open(path + f".tmp{os.getpid()}", "wb") as out:
            out.write(encode_frames(records))
        os.replace(path + f".tmp{os.getpid()}", path)
        task.cached_blocks.append((rdd.id, split.index))
        return iter(records)
    return itertools.chain.from_iterable(decode_frames(data))


class ParallelCollectionRDD(Source):
    """``sc.parallelize``: each partition carries its slice of the driver's collection."""

    def __init__(self, data: Any, num_slices: int) -> None:
        self._slices = _slices(data, num_slices)
        self.deps = []

    def partitions(self) -> list[Partition]:
        return [DataPartition(i, s) for i, s in enumerate(self._slices)]

    def compute(self, split: Partition, task: TaskContext) -> Iterator[Any]:
        assert isinstance(split, DataPartition)
        return iter(split.data)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_slices"] = None  # Each task carries its own slice in its partition.
        return state


class TextFileRDD(Source):
    """``sc.textFile``: one partition per byte range of a file, split on line boundaries."""

    def __init__(self, splits: list[tuple[str, int, int]]) -> None:
        self._splits = splits
        self.deps = []

    def partitions(self) -> list[Partition]:
        return [FileSplit(i, p, s, e) for i, (p, s, e) in enumerate(self._splits)]

    def compute(self, split: Partition, task: TaskContext) -> Iterator[Any]:
        assert isinstance(split, FileSplit)
        return _lines(split.path, split.start, split.end)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_splits"] = None
        return state


class MapPartitionsRDD(Source):
    """A narrow step: ``func(partition_index, parent_iterator)``; pipelined with its parent."""

    def __init__(self, prev: RDD[Any], func: Callable[[int, Iterator[Any]], Iterable[Any]]) -> None:
        self.prev = prev
        self.func = func
        self.deps = [NarrowDependency(prev)]

    def partitions(self) -> list[Partition]:
        return self.prev.partitions()

    def compute(self, split: Partition, task: TaskContext) -> Iterator[Any]:
        return iter(self.func(split.index, self.prev.iterator(split, task)))


class UnionRDD(Source):
    """The partitions of several RDDs, one after the other."""

    def __init__(self, rdds: list[RDD[Any]]) -> None:
        self.rdds = rdds
        self.deps = [NarrowDependency(rdd) for rdd in rdds]

    def partitions(self) -> list[Partition]:
        parts: list[Partition] = []
        for parent, rdd in enumerate(self.rdds):
            for split in rdd.partitions():
                parts.append(UnionPartition(len(parts), parent, split))
        return parts

    def compute(self, split: Partition, task: TaskContext) -> Iterator[Any]:
        assert isinstance(split, UnionPartition)
        assert split.split is not None
        return self.rdds[split.parent].iterator(split.split, task)


class CoalescedRDD(Source):
    """Fewer partitions without a shuffle: each takes a run of consecutive parent partitions."""

    def __init__(self, prev: RDD[Any], num_partitions: int) -> None:
        self.prev = prev
        self.num_partitions = num_partitions
        self.deps = [NarrowDependency(prev)]

    def partitions(self) -> list[Partition]:
        parents = self.prev.partitions()
        n = min(self.num_partitions, len(parents)) or 1
        return [
            CoalescedPartition(i, parents[i * len(parents) // n : (i + 1) * len(parents) // n])
            for i in range(n)
        ]

    def compute(self, split: Partition, task: TaskContext) -> Iterator[Any]:
        assert isinstance(split, CoalescedPartition)
        return itertools.chain.from_iterable(self.prev.iterator(s, task) for s in split.splits)


class CartesianRDD(Source):
    """Every pair of partitions of two RDDs; the right one is held in memory per task."""

    def __init__(self, left: RDD[Any], right: RDD[Any]) -> None:
        self.left, self.right = left, right
        self.deps = [NarrowDependency(left), NarrowDependency(right)]

    def partitions(self) -> list[Partition]:
        rights = self.right.partitions()
        return [
            CartesianPartition(i * len(rights) + j, a, b)
            for i, a in enumerate(self.left.partitions())
            for j, b in enumerate(rights)
        ]

    def compute(self, split: Partition, task: TaskContext) -> Iterator[Any]:
        assert isinstance(split, CartesianPartition)
        assert split.left is not None
        assert split.right is not None
        right = list(self.right.iterator(split.right, task))
        return ((x, y) for x in self.left.iterator(split.left, task) for y in right)


class ShuffledRDD(Source):
    """The reduce side of a shuffle: fetch this partition's block of every map output.

    With an aggregator the records are merged per key (combiners when the map side already
    combined, values otherwise); without, they are passed on as they come.
    """

    def __init__(self, dep: ShuffleDependency, num_partitions: int) -> None:
        self.dep = dep
        self.num_partitions = num_partitions
        self.deps = [dep]

    def partitions(self) -> list[Partition]:
        return [Partition(i) for i in range(self.num_partitions)]

    def _records(self, split: Partition, task: TaskContext) -> Iterator[list[Any]]:
        outputs: list[MapOutput] = task.shuffle_locations[self.dep.shuffle_id]
        fetcher = _fetcher(task)
        shuffle_id, reduce_id = self.dep.shuffle_id, split.index
        for map_index, where in enumerate(outputs):
            if where.sizes[reduce_id] == 0:
                continue
            block = fetcher.fetch(shuffle_id, map_index, where, reduce_id)
            task.shuffle_read_bytes += len(block)
            yield from decode_frames(block)

    def compute(self, split: Partition, task: TaskContext) -> Iterator[Any]:
        aggregator = self.dep.aggregator
        batches = self._records(split, task)
        if aggregator is None:
            return itertools.chain.from_iterable(batches)
        combined: dict[Any, Any] = {}
        if aggregator.merge_value is cogroup_add:  # Joins: per record, so inline.
            found = combined.get
            for batch in batches:
                for k, (side, v) in batch:
                    pair = found(k)
                    if pair is None:
                        pair = combined[k] = (ResultIterable(), ResultIterable())
                    pair[side].append(v)
            return iter(combined.items())
        if self.dep.map_side_combine:
            for batch in batches:
                aggregator.combine_combiners(batch, combined)
            return iter(combined.items())
        create, merge = aggregator.create_combiner, aggregator.merge_value
        get = combined.get
        for batch in batches:
            for k, v in batch:
                c = get(k, _missing)
                combined[k] = create(v) if c is _missing else merge(c, v)
        return iter(combined.items())


_missing = object()
_fetchers: dict[str, BlockFetcher] = {}


def _fetcher(task: TaskContext) -> BlockFetcher:
    """One fetcher (and its kept-alive connections) per worker process and executor."""
    fetcher = _fetchers.get(task.executor_id)
    if fetcher is None:
        fetcher = _fetchers[task.executor_id] = BlockFetcher(task.executor_id, task.block_dir)
    return fetcher
