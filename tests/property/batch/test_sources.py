"""Where data comes from: parallelize, range, textFile, union, broadcast, accumulator, glom.

Each property runs a real job on the session's cluster and compares it with plain Python.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from hypothesis import given
from hypothesis import strategies as st

from tests.property.batch.strategies import BATCH, ints, slices

if TYPE_CHECKING:
    from examples.batch import BatchContext

# Line text: printable, no line breaks (Python's and Hadoop's notions of a line differ only on
# exotic separators) and no format characters (Hadoop drops a byte-order mark at a file's start),
# non-ASCII included so that byte offsets and characters differ.
line_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cc", "Cf", "Cs", "Zl", "Zp"]), max_size=30
)


@BATCH
@given(data=ints, n=slices)
def test_parallelize_keeps_order_in_n_partitions(sc: BatchContext, data: list[int], n: int) -> None:
    rdd = sc.parallelize(data, n)
    assert rdd.getNumPartitions() == n
    parts = rdd.glom().collect()
    assert len(parts) == n
    assert [x for part in parts for x in part] == data
    assert rdd.collect() == data


@BATCH
@given(start=st.integers(-50, 50), size=st.integers(0, 60), step=st.integers(1, 7), n=slices)
def test_range_is_pythons_range(sc: BatchContext, start: int, size: int, step: int, n: int) -> None:
    end = start + size
    assert sc.range(start, end, step, numSlices=n).collect() == list(range(start, end, step))
    assert sc.range(size, numSlices=n).getNumPartitions() == n
    assert sc.range(end, start, -step, n).collect() == list(range(end, start, -step))


@BATCH
@given(
    files=st.lists(st.lists(line_text, max_size=25), min_size=1, max_size=3),
    trailing_newline=st.booleans(),
    min_partitions=st.integers(1, 12),
)
def test_text_file_reads_every_line_once(
    sc: BatchContext, files: list[list[str]], trailing_newline: bool, min_partitions: int
) -> None:
    """Split by byte ranges on line boundaries: no line lost, split or read twice."""
    with tempfile.TemporaryDirectory(prefix="batch-textfile-") as tmp:
        root = Path(tmp)
        for index, lines in enumerate(files):
            text = "\n".join(lines) + ("\n" if trailing_newline and lines else "")
            (root / f"part-{index}.txt").write_text(text, encoding="utf-8")
        (root / "_ignored").write_text("hidden\n")
        (root / ".ignored").write_text("hidden\n")
        expected = [line for lines in files for line in _lines(lines, trailing_newline)]
        first = str(root / "part-0.txt")
        assert sc.textFile(first, min_partitions).collect() == _lines(files[0], trailing_newline)
        whole = sc.textFile(str(root), min_partitions).collect()
        assert sorted(whole) == sorted(expected)
        globbed = sc.textFile(str(root / "part-*.txt"), min_partitions).collect()
        assert sorted(globbed) == sorted(expected)


def _lines(lines: list[str], trailing_newline: bool) -> list[str]:
    if lines and lines[-1] == "" and not trailing_newline:
        return lines[:-1]
    return lines


@BATCH
@given(data=st.lists(ints, min_size=1, max_size=4), n=slices)
def test_union_concatenates_in_order(sc: BatchContext, data: list[list[int]], n: int) -> None:
    rdds = [sc.parallelize(part, n) for part in data]
    union = sc.union(rdds)
    assert union.collect() == [x for part in data for x in part]
    assert union.getNumPartitions() == n * len(data)
    assert rdds[0].union(rdds[-1]).collect() == data[0] + data[-1]


@BATCH
@given(data=ints, table=st.dictionaries(st.integers(-1000, 1000), st.text(max_size=5)), n=slices)
def test_broadcast_value_reaches_every_task(
    sc: BatchContext, data: list[int], table: dict[int, str], n: int
) -> None:
    shared = sc.broadcast(table)
    assert shared.value == table
    got = sc.parallelize(data, n).map(lambda x: shared.value.get(x, "-")).collect()
    assert got == [table.get(x, "-") for x in data]


@BATCH
@given(data=ints, n=slices)
def test_accumulator_adds_each_record_once(sc: BatchContext, data: list[int], n: int) -> None:
    total = sc.accumulator(0)
    seen = sc.accumulator(0)

    def visit(x: int) -> None:
        total.add(x)
        seen.add(1)

    sc.parallelize(data, n).foreach(visit)
    assert total.value == sum(data)
    assert seen.value == len(data)


@BATCH
@given(data=ints, n=slices)
def test_glom_and_partition_index_agree(sc: BatchContext, data: list[int], n: int) -> None:
    rdd = sc.parallelize(data, n)
    parts = rdd.glom().collect()
    tagged = rdd.mapPartitionsWithIndex(lambda i, it: [(i, list(it))]).collect()
    assert tagged == list(enumerate(parts))
