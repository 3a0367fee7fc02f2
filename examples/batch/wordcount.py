"""Word count on Emporion's batch framework: the PySpark program with its import changed.

::

    python -m examples.batch.wordcount --master 127.0.0.1:5050 INPUT OUTPUT
    emporion local --run "python -m examples.batch.wordcount --master {master} INPUT OUTPUT"

INPUT is a file, a directory or a glob (as ``textFile`` reads them); OUTPUT a directory that
must not exist yet, written as Spark writes it (``part-NNNNN`` per partition and ``_SUCCESS``),
one ``word<TAB>count`` line per word. The most frequent words are printed at the end.
:func:`reference_counts` is the same computation in plain Python, which the tests compare with.
"""

from __future__ import annotations

import argparse
import collections
import glob
import operator
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from examples.batch import RDD, BatchContext

__all__ = ["input_files", "main", "reference_counts", "word_counts"]


def word_counts(
    sc: BatchContext, source: str, num_partitions: int | None = None
) -> RDD[tuple[str, int]]:
    """Each word of the files at ``source`` (split on whitespace) with its number of uses."""
    words = sc.textFile(source).flatMap(str.split)
    return words.map(lambda word: (word, 1)).reduceByKey(operator.add, num_partitions)


def input_files(source: str) -> list[Path]:
    """The files ``textFile(source)`` reads: a file, a directory's visible files, or a glob."""
    path = Path(source)
    if path.is_dir():
        found = [p for p in path.iterdir() if p.is_file() and not p.name.startswith((".", "_"))]
    elif path.is_file():
        found = [path]
    else:
        found = [Path(p) for p in glob.glob(source) if Path(p).is_file()]
    if not found:
        raise FileNotFoundError(f"no input files at {source!r}")
    return sorted(found)


def reference_counts(source: str) -> dict[str, int]:
    """What :func:`word_counts` computes, in plain Python."""
    counts: collections.Counter[str] = collections.Counter()
    for path in input_files(source):
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                counts.update(line.split())
    return dict(counts)


def _format(pair: tuple[str, int]) -> str:
    return f"{pair[0]}\t{pair[1]}"


def _by_count(pair: tuple[str, int]) -> tuple[int, str]:
    return -pair[1], pair[0]


def main(argv: Sequence[str] | None = None) -> int:
    """Count the words of INPUT into OUTPUT; print the most frequent."""
    parser = argparse.ArgumentParser(prog="python -m examples.batch.wordcount", description=__doc__)
    parser.add_argument("--master", required=True, help="HOST:PORT or zk://... of the master")
    parser.add_argument("--partitions", type=int, default=None, help="reduce partitions")
    parser.add_argument("--top", type=int, default=10, help="how many words to print")
    parser.add_argument("--no-progress", action="store_true", help="no progress display")
    parser.add_argument("input", help="file, directory or glob")
    parser.add_argument("output", type=Path, help="directory to write (must not exist)")
    args = parser.parse_args(argv)
    if args.partitions is not None and args.partitions < 1:
        parser.error(f"--partitions must be at least 1, not {args.partitions}")
    if args.top < 0:
        parser.error(f"--top must be >= 0, not {args.top}")
    if args.output.exists():
        parser.error(f"output {str(args.output)!r} already exists")
    from examples.batch import BatchContext

    with BatchContext(args.master, app_name="wordcount", progress=not args.no_progress) as sc:
        counts = word_counts(sc, args.input, args.partitions).cache()
        counts.map(_format).saveAsTextFile(str(args.output))
        top = counts.takeOrdered(args.top, key=_by_count) if args.top else []
    for pair in top:
        print(_format(pair))
    return 0


if __name__ == "__main__":
    sys.exit(main())
