"""Shuffles against plain Python: by-key aggregation, joins, sorting, distinct, repartitioning.

Values within a key and records within a partition come back in an unspecified order after a
shuffle (as in PySpark), so results are compared as multisets or per-key sorted lists, except
where the operation promises an order (sorting).
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any

from hypothesis import given
from hypothesis import strategies as st

from tests.property.batch.strategies import (
    BATCH,
    by_key,
    int_pairs,
    ints,
    keys,
    multiset,
    pairs,
    slices,
    values,
)

if TYPE_CHECKING:
    from examples.batch import BatchContext

Pairs = list[tuple[Any, int]]


@BATCH
@given(data=pairs, n=slices, m=st.one_of(st.none(), slices))
def test_reduce_fold_group_by_key(sc: BatchContext, data: Pairs, n: int, m: int | None) -> None:
    rdd = sc.parallelize(data, n)
    groups = by_key(data)
    reduced = rdd.reduceByKey(operator.add, m)
    assert reduced.getNumPartitions() == (m or n)  # Default: the parent's partition count.
    assert dict(reduced.collect()) == {k: sum(v) for k, v in groups.items()}
    assert len(reduced.collect()) == len(groups)  # One record per key: one partition per key.
    folded = rdd.foldByKey(0, operator.add, m).collect()
    assert dict(folded) == {k: sum(v) for k, v in groups.items()}
    grouped = rdd.groupByKey(m).mapValues(sorted).collect()
    assert dict(grouped) == groups
    assert len(grouped) == len(groups)


@BATCH
@given(data=pairs, n=slices, m=st.one_of(st.none(), slices))
def test_aggregate_and_combine_by_key(sc: BatchContext, data: Pairs, n: int, m: int | None) -> None:
    rdd = sc.parallelize(data, n)
    groups = by_key(data)
    stats = rdd.aggregateByKey(
        (0, 0), lambda acc, v: (acc[0] + v, acc[1] + 1), lambda a, b: (a[0] + b[0], a[1] + b[1]), m
    ).collect()
    assert dict(stats) == {k: (sum(v), len(v)) for k, v in groups.items()}
    combined = rdd.combineByKey(
        lambda v: [v], lambda acc, v: [*acc, v], lambda a, b: a + b, m
    ).mapValues(sorted)
    assert dict(combined.collect()) == groups


@BATCH
@given(left=pairs, right=pairs, n=slices, m=slices, p=st.one_of(st.none(), slices))
def test_joins(
    sc: BatchContext, *, left: Pairs, right: Pairs, n: int, m: int, p: int | None
) -> None:
    a, b = sc.parallelize(left, n), sc.parallelize(right, m)
    right_keys = {k for k, _ in right}
    left_keys = {k for k, _ in left}
    inner = [(k, (v, w)) for k, v in left for k2, w in right if k == k2]
    left_outer = inner + [(k, (v, None)) for k, v in left if k not in right_keys]
    right_outer = inner + [(k, (None, w)) for k, w in right if k not in left_keys]
    full = left_outer + [(k, (None, w)) for k, w in right if k not in left_keys]
    assert multiset(a.join(b, p).collect()) == multiset(inner)
    assert multiset(a.leftOuterJoin(b, p).collect()) == multiset(left_outer)
    assert multiset(a.rightOuterJoin(b, p).collect()) == multiset(right_outer)
    assert multiset(a.fullOuterJoin(b, p).collect()) == multiset(full)
    if p is not None:
        assert a.join(b, p).getNumPartitions() == p


@BATCH
@given(left=pairs, right=pairs, n=slices, m=slices)
def test_cogroup(sc: BatchContext, left: Pairs, right: Pairs, n: int, m: int) -> None:
    grouped = sc.parallelize(left, n).cogroup(sc.parallelize(right, m))
    got = {k: (sorted(vs), sorted(ws)) for k, (vs, ws) in grouped.collect()}
    lg, rg = by_key(left), by_key(right)
    assert got == {k: (lg.get(k, []), rg.get(k, [])) for k in set(lg) | set(rg)}


@BATCH
@given(data=int_pairs, n=slices, m=slices, ascending=st.booleans())
def test_sort_by_key(
    sc: BatchContext, data: list[tuple[int, int]], n: int, m: int, ascending: bool
) -> None:
    rdd = sc.parallelize(data, n)
    ordered = rdd.sortByKey(ascending, m).collect()
    assert [k for k, _ in ordered] == sorted((k for k, _ in data), reverse=not ascending)
    assert multiset(ordered) == multiset(data)
    by_abs = rdd.sortByKey(keyfunc=abs).collect()
    assert [abs(k) for k, _ in by_abs] == sorted(abs(k) for k, _ in data)
    # Each partition holds a contiguous range of keys (range partitioning, as Spark does).
    parts = rdd.sortByKey(True, m).glom().collect()
    assert [k for part in parts for k, _ in part] == sorted(k for k, _ in data)


@BATCH
@given(data=ints, n=slices, m=slices, ascending=st.booleans())
def test_sort_by(sc: BatchContext, data: list[int], n: int, m: int, ascending: bool) -> None:
    ordered = sc.parallelize(data, n).sortBy(lambda x: x % 7, ascending, m).collect()
    assert [x % 7 for x in ordered] == sorted((x % 7 for x in data), reverse=not ascending)
    assert multiset(ordered) == multiset(data)


@BATCH
@given(
    data=st.lists(st.one_of(keys, values), max_size=40), n=slices, m=st.one_of(st.none(), slices)
)
def test_distinct(sc: BatchContext, data: list[Any], n: int, m: int | None) -> None:
    unique = sc.parallelize(data, n).distinct(m).collect()
    assert len(unique) == len(set(data))
    assert set(unique) == set(data)


@BATCH
@given(data=ints, n=slices, m=slices)
def test_repartition(sc: BatchContext, data: list[int], n: int, m: int) -> None:
    rdd = sc.parallelize(data, n).repartition(m)
    assert rdd.getNumPartitions() == m
    assert multiset(rdd.collect()) == multiset(data)


@BATCH
@given(data=pairs, n=slices, m=slices)
def test_partition_by(sc: BatchContext, data: Pairs, n: int, m: int) -> None:
    rdd = sc.parallelize(data, n)
    hashed = rdd.partitionBy(m).glom().collect()
    assert len(hashed) == m
    assert multiset(r for part in hashed for r in part) == multiset(data)
    homes: dict[Any, set[int]] = {}
    for index, part in enumerate(hashed):
        for key, _ in part:
            homes.setdefault(key, set()).add(index)
    assert all(len(home) == 1 for home in homes.values())  # A key lives in one partition.
    by_length = rdd.partitionBy(m, lambda key: len(str(key))).glom().collect()
    for index, part in enumerate(by_length):
        assert all(len(str(key)) % m == index for key, _ in part)
