"""PageRank on Emporion's batch framework, with the link table cached across iterations.

Spark's own example (``examples/src/main/python/pagerank.py``), with its import changed: the
links ``(page, [pages it links to])`` are built once and ``cache()``d, because every iteration
joins them with the current ranks; each iteration spreads a page's rank over its out-links and
sets ``rank = 0.15 + 0.85 * (sum of the contributions received)``. As in Spark's example, a page
that no page links to drops out after the first iteration. :func:`reference_ranks` is the same
computation in plain Python (equal up to floating-point summation order).

::

    python -m examples.batch.pagerank --master 127.0.0.1:5050 EDGES [--iterations 10]

EDGES: ``src dst`` lines (``python -m examples.batch.datagen graph EDGES --nodes N``).
"""

from __future__ import annotations

import argparse
import collections
import operator
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from examples.batch import RDD, BatchContext

__all__ = ["main", "page_ranks", "reference_ranks"]

DAMPING = 0.85


def _edge(line: str) -> tuple[int, int]:
    source, target = line.split()
    return int(source), int(target)


def _contributions(item: tuple[int, tuple[Iterable[int], float]]) -> list[tuple[int, float]]:
    targets = list(item[1][0])
    share = item[1][1] / len(targets)
    return [(target, share) for target in targets]


def _damped(total: float) -> float:
    return (1 - DAMPING) + DAMPING * total


def page_ranks(
    sc: BatchContext, edges: str, iterations: int, num_partitions: int | None = None
) -> RDD[tuple[int, float]]:
    """Each page's rank after ``iterations`` iterations (pages with in-links only)."""
    links = sc.textFile(edges).map(_edge).distinct(num_partitions).groupByKey().cache()
    ranks = links.mapValues(lambda _targets: 1.0)
    for _ in range(iterations):
        contributions = links.join(ranks).flatMap(_contributions)
        ranks = contributions.reduceByKey(operator.add, num_partitions).mapValues(_damped)
    return ranks


def reference_ranks(edges: Path, iterations: int) -> dict[int, float]:
    """What :func:`page_ranks` computes, in plain Python."""
    links: dict[int, set[int]] = collections.defaultdict(set)
    with edges.open(encoding="ascii") as lines:
        for line in lines:
            source, target = _edge(line)
            links[source].add(target)
    ranks = dict.fromkeys(links, 1.0)
    for _ in range(iterations):
        received: dict[int, float] = collections.defaultdict(float)
        for source, targets in links.items():
            if source in ranks:
                for target in targets:
                    received[target] += ranks[source] / len(targets)
        ranks = {page: _damped(total) for page, total in received.items()}
    return ranks


def main(argv: Sequence[str] | None = None) -> int:
    """Rank the pages of EDGES and print the highest ranked."""
    parser = argparse.ArgumentParser(prog="python -m examples.batch.pagerank", description=__doc__)
    parser.add_argument("--master", required=True, help="HOST:PORT or zk://... of the master")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--top", type=int, default=10, help="how many pages to print")
    parser.add_argument("--output", type=Path, default=None, help="write every rank here")
    parser.add_argument("--no-progress", action="store_true", help="no progress display")
    parser.add_argument("edges", help="file, directory or glob of 'src dst' lines")
    args = parser.parse_args(argv)
    if args.iterations < 1:
        parser.error(f"--iterations must be at least 1, not {args.iterations}")
    if args.top < 1:
        parser.error(f"--top must be at least 1, not {args.top}")
    if args.output is not None and args.output.exists():
        parser.error(f"output {str(args.output)!r} already exists")
    from examples.batch import BatchContext

    with BatchContext(args.master, app_name="pagerank", progress=not args.no_progress) as sc:
        ranks = page_ranks(sc, args.edges, args.iterations).cache()
        if args.output is not None:
            ranks.map(lambda pr: f"{pr[0]}\t{pr[1]!r}").saveAsTextFile(str(args.output))
        top = ranks.takeOrdered(args.top, key=lambda pr: (-pr[1], pr[0]))
    for page, rank in top:
        print(f"{page}\t{rank:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
