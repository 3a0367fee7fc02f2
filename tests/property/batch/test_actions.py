"""Actions against plain Python, including PySpark's behaviour on an empty RDD."""

from __future__ import annotations

import collections
import heapq
import math
import operator
import statistics
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.property.batch.strategies import BATCH, ints, multiset, pairs, slices

if TYPE_CHECKING:
    from examples.batch import BatchContext

nonempty = st.lists(st.integers(-1000, 1000), min_size=1, max_size=40)


@BATCH
@given(data=ints, n=slices)
def test_collect_count_and_counts(sc: BatchContext, data: list[int], n: int) -> None:
    rdd = sc.parallelize(data, n)
    assert rdd.collect() == data
    assert rdd.count() == len(data)
    assert dict(rdd.countByValue()) == dict(collections.Counter(data))
    keyed = rdd.map(lambda x: (x % 4, x))
    assert dict(keyed.countByKey()) == dict(collections.Counter(x % 4 for x in data))


@BATCH
@given(data=ints, n=slices, k=st.integers(0, 50))
def test_take_first_ordered_top(sc: BatchContext, data: list[int], n: int, k: int) -> None:
    rdd = sc.parallelize(data, n)
    assert rdd.take(k) == data[:k]
    assert rdd.takeOrdered(k) == sorted(data)[:k]
    assert rdd.takeOrdered(k, key=lambda x: -x) == sorted(data, reverse=True)[:k]
    assert rdd.top(k) == heapq.nlargest(k, data)
    assert rdd.top(k, key=abs) == heapq.nlargest(k, data, key=abs)
    if data:
        assert rdd.first() == data[0]
    else:
        with pytest.raises(ValueError, match="empty"):
            rdd.first()


@BATCH
@given(data=nonempty, n=slices)
def test_reductions(sc: BatchContext, data: list[int], n: int) -> None:
    rdd = sc.parallelize(data, n)
    assert rdd.reduce(operator.add) == sum(data)
    assert rdd.reduce(max) == max(data)
    assert rdd.fold(0, operator.add) == sum(data)
    assert rdd.aggregate(
        (0, 0), lambda acc, x: (acc[0] + x, acc[1] + 1), lambda a, b: (a[0] + b[0], a[1] + b[1])
    ) == (sum(data), len(data))
    assert rdd.sum() == sum(data)
    assert math.isclose(rdd.mean(), statistics.fmean(data), rel_tol=1e-9, abs_tol=1e-9)
    assert rdd.min() == min(data)
    assert rdd.max() == max(data)
    assert rdd.min(key=abs) == min(data, key=abs)
    assert rdd.max(key=abs) == max(data, key=abs)


@BATCH
@given(n=slices)
def test_reductions_of_nothing(sc: BatchContext, n: int) -> None:
    empty = sc.parallelize([], n)
    with pytest.raises(ValueError, match="empty"):
        empty.reduce(operator.add)
    assert empty.fold(0, operator.add) == 0
    assert empty.sum() == 0
    assert empty.count() == 0
    assert empty.mean() == 0.0  # PySpark's StatCounter starts at 0.0 (not NaN).
    # The zero value starts every partition and the final merge, as in PySpark.
    assert empty.aggregate(7, operator.add, operator.add) == 7 * (n + 1)


@BATCH
@given(data=ints, n=slices)
def test_foreach_and_foreach_partition(sc: BatchContext, data: list[int], n: int) -> None:
    total, partitions = sc.accumulator(0), sc.accumulator(0)
    rdd = sc.parallelize(data, n)
    rdd.foreach(total.add)

    def per_partition(records: Any) -> None:
        partitions.add(1)
        for x in records:
            total.add(x)

    rdd.foreachPartition(per_partition)
    assert total.value == 2 * sum(data)
    assert partitions.value == n


@BATCH
@given(data=st.one_of(ints, pairs), n=slices)
def test_save_as_text_file(sc: BatchContext, data: list[Any], n: int) -> None:
    """One ``part-NNNNN`` per partition holding ``str()`` of each record, then ``_SUCCESS``."""
    rdd = sc.parallelize(data, n)
    layout = rdd.glom().collect()
    with tempfile.TemporaryDirectory(prefix="batch-save-") as tmp:
        out = Path(tmp) / "out"
        rdd.saveAsTextFile(str(out))
        assert (out / "_SUCCESS").is_file()
        parts = sorted(p.name for p in out.iterdir() if p.name.startswith("part-"))
        assert parts == [f"part-{i:05d}" for i in range(n)]
        for name, records in zip(parts, layout, strict=True):
            assert (out / name).read_text(encoding="utf-8").splitlines() == [
                str(r) for r in records
            ]
        assert multiset(sc.textFile(str(out)).collect()) == multiset(str(r) for r in data)
