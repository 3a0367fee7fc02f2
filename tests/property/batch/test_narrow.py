"""Narrow transformations (no shuffle) against plain Python: order is kept, partitions too."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from hypothesis import given
from hypothesis import strategies as st

from tests.property.batch.strategies import BATCH, ints, multiset, pairs, slices, storage_levels

if TYPE_CHECKING:
    from examples.batch import BatchContext


@BATCH
@given(data=ints, n=slices)
def test_map_filter_flat_map(sc: BatchContext, data: list[int], n: int) -> None:
    rdd = sc.parallelize(data, n)
    assert rdd.map(lambda x: x * 3 - 1).collect() == [x * 3 - 1 for x in data]
    assert rdd.filter(lambda x: x % 3 == 0).collect() == [x for x in data if x % 3 == 0]
    expanded = [y for x in data for y in range(x % 4)]
    assert rdd.flatMap(lambda x: range(x % 4)).collect() == expanded
    assert rdd.map(str).flatMap(list).collect() == [c for x in data for c in str(x)]


@BATCH
@given(data=ints, n=slices)
def test_map_partitions(sc: BatchContext, data: list[int], n: int) -> None:
    rdd = sc.parallelize(data, n)
    parts = rdd.glom().collect()
    assert rdd.mapPartitions(lambda it: [sum(it)]).collect() == [sum(p) for p in parts]
    indexed = rdd.mapPartitionsWithIndex(lambda i, it: ((i, x) for x in it)).collect()
    assert indexed == [(i, x) for i, p in enumerate(parts) for x in p]
    # preservesPartitioning is accepted, as in PySpark.
    kept = rdd.mapPartitions(lambda it: (x + 1 for x in it), preservesPartitioning=True)
    assert kept.collect() == [x + 1 for x in data]


@BATCH
@given(data=pairs, n=slices)
def test_pair_views(sc: BatchContext, data: list[tuple[object, int]], n: int) -> None:
    rdd = sc.parallelize(data, n)
    assert rdd.keys().collect() == [k for k, _ in data]
    assert rdd.values().collect() == [v for _, v in data]
    assert rdd.mapValues(lambda v: v * 2).collect() == [(k, v * 2) for k, v in data]
    flat = [(k, y) for k, v in data for y in range(v % 3)]
    assert rdd.flatMapValues(lambda v: range(v % 3)).collect() == flat
    assert rdd.keyBy(lambda kv: kv[1] % 5).collect() == [(v % 5, (k, v)) for k, v in data]


@BATCH
@given(data=ints, n=slices, target=st.integers(1, 8))
def test_coalesce(sc: BatchContext, data: list[int], n: int, target: int) -> None:
    rdd = sc.parallelize(data, n)
    fewer = rdd.coalesce(target)
    assert fewer.getNumPartitions() == min(n, target)
    assert multiset(fewer.collect()) == multiset(data)
    shuffled = rdd.coalesce(target, shuffle=True)
    assert shuffled.getNumPartitions() == target
    assert multiset(shuffled.collect()) == multiset(data)


@BATCH
@given(
    data=ints,
    n=slices,
    fraction=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**31),
    replace=st.booleans(),
)
def test_sample(
    sc: BatchContext, *, data: list[int], n: int, fraction: float, seed: int, replace: bool
) -> None:
    rdd = sc.parallelize(list(enumerate(data)), n)
    picked = rdd.sample(replace, fraction, seed).collect()
    assert picked == rdd.sample(replace, fraction, seed).collect()  # Same seed, same sample.
    if not replace:
        # A subsequence of the input, in its order.
        source = iter(enumerate(data))
        assert all(any(item == other for other in source) for item in picked)
    else:
        assert set(picked) <= set(enumerate(data))
    if not replace and fraction == 1.0:
        assert picked == list(enumerate(data))
    if fraction == 0.0:
        assert picked == []


@BATCH
@given(left=st.lists(st.integers(0, 9), max_size=8), right=ints, n=slices, m=slices)
def test_cartesian(sc: BatchContext, left: list[int], right: list[int], n: int, m: int) -> None:
    product = sc.parallelize(left, n).cartesian(sc.parallelize(right[:10], m))
    assert product.getNumPartitions() == n * m
    assert multiset(product.collect()) == multiset(itertools.product(left, right[:10]))


@BATCH
@given(data=ints, n=slices)
def test_zip_with_index(sc: BatchContext, data: list[int], n: int) -> None:
    assert sc.parallelize(data, n).zipWithIndex().collect() == [(x, i) for i, x in enumerate(data)]


@BATCH
@given(data=ints, n=slices)
def test_cache_computes_once_until_unpersisted(sc: BatchContext, data: list[int], n: int) -> None:
    computed = sc.accumulator(0)

    def costly(x: int) -> int:
        computed.add(1)
        return x * x

    squares = sc.parallelize(data, n).map(costly).cache()
    assert squares.collect() == [x * x for x in data]
    assert squares.count() == len(data)
    assert squares.sum() == sum(x * x for x in data)
    assert computed.value == len(data)  # Computed by the first action only.
    squares.unpersist()
    assert squares.collect() == [x * x for x in data]
    assert computed.value == 2 * len(data)
    stored = sc.parallelize(data, n).map(costly).persist(storage_levels(sc).MEMORY_AND_DISK)
    assert stored.map(lambda x: x + 1).collect() == [x * x + 1 for x in data]
    assert stored.collect() == [x * x for x in data]
    assert computed.value == 3 * len(data)
    stored.unpersist()
