"""Deterministic inputs for the batch examples, tests and benchmark.

Every generator takes a seed and writes the same bytes for the same arguments on every machine
(``random.Random`` is specified to be reproducible across platforms for a given seed), so a test
can recompute its expected answer and a benchmark's input can be cached by its arguments.

* :func:`write_text`: lines of words with a Zipf-like frequency (a few very common words, a
  long tail), for word count. Lines are drawn from a pool built once, which keeps generating
  a gigabyte within tens of seconds in pure Python.
* :func:`write_tpch`: TPC-H-like ``customer``, ``orders`` and ``lineitem`` tables,
  ``|``-separated as TPC-H's dbgen writes them, money in cents (integers: sums are exact in any
  order, so two engines' answers compare equal).
* :func:`write_graph`: a directed graph as ``src dst`` lines, every node with at least one
  out-link (PageRank needs no dangling-node correction).

Run as ``python -m examples.batch.datagen text|tpch|graph OUT --mb N`` (or ``--nodes`` for a
graph).
"""

from __future__ import annotations

import argparse
import itertools
import random
import string
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "MARKET_SEGMENTS",
    "ORDER_PRIORITIES",
    "SHIP_MODES",
    "TPCH_TABLES",
    "vocabulary",
    "write_graph",
    "write_text",
    "write_tpch",
]

MARKET_SEGMENTS = ("AUTOMOBILE", "BUILDING", "FURNITURE", "HOUSEHOLD", "MACHINERY")
ORDER_PRIORITIES = ("1-URGENT", "2-HIGH", "3-MEDIUM", "4-NOT SPECIFIED", "5-LOW")
SHIP_MODES = ("AIR", "FOB", "MAIL", "RAIL", "REG AIR", "SHIP", "TRUCK")
TPCH_TABLES = ("customer", "orders", "lineitem")
_BLOCK_LINES = 20_000
_POOL_LINES = 50_000
_FIRST_DAY = 8035  # 1992-01-01 as days since 1970-01-01, TPC-H's first order date.
_DAYS = 2405  # Orders span 1992-01-01 .. 1998-08-02, as in TPC-H.
_BYTES_PER_ORDER = 215  # All three tables, per order, as written below (measured).


def vocabulary(size: int, seed: int = 0) -> list[str]:
    """``size`` distinct lowercase words of 2-10 letters, the same for the same seed."""
    if size < 1:
        raise ValueError(f"vocabulary size must be at least 1, not {size}")
    rng = random.Random(f"vocabulary-{seed}")
    words: dict[str, None] = {}
    while len(words) < size:
        length = rng.choice((2, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 7, 7, 8, 9, 10))
        words["".join(rng.choices(string.ascii_lowercase, k=length))] = None
    return list(words)


def write_text(path: Path, size_bytes: int, *, seed: int = 0, words: int = 20_000) -> Path:
    """Write about ``size_bytes`` (never less, at most one block more) of text to ``path``.

    Word ``k`` of the vocabulary is drawn with weight ``1 / (k + 1)`` (Zipf, s = 1); lines hold
    4 to 16 words.
    """
    if size_bytes < 0:
        raise ValueError(f"size must be >= 0 bytes, not {size_bytes}")
    rng = random.Random(f"text-{seed}")
    vocab = vocabulary(words, seed)
    weights = list(itertools.accumulate(1.0 / (rank + 1) for rank in range(len(vocab))))
    pool: list[str] = []
    for _ in range(_POOL_LINES):
        pool.append(" ".join(rng.choices(vocab, cum_weights=weights, k=rng.randint(4, 16))))
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with path.open("w", encoding="ascii", newline="\n") as out:
        while written < size_bytes:
            block = "\n".join(rng.choices(pool, k=_BLOCK_LINES)) + "\n"
            out.write(block)
            written += len(block)
    return path


def write_tpch(directory: Path, size_bytes: int, *, seed: int = 0) -> dict[str, Path]:
    """Write ``customer.tbl``, ``orders.tbl`` and ``lineitem.tbl`` into ``directory``.

    Sized so that the three tables hold about ``size_bytes`` together (``lineitem`` about 78 %
    of it, ``orders`` 20 %); one customer per ten orders.
    Columns (``|``-separated, as TPC-H's ``dbgen``; dates as ``YYYY-MM-DD``, money in cents):

    * customer: ``custkey|name|nationkey|mktsegment``
    * orders: ``orderkey|custkey|orderstatus|totalprice|orderdate|orderpriority|shippriority``
    * lineitem: ``orderkey|linenumber|partkey|quantity|extendedprice|discount|shipdate|shipmode``
      (``discount`` in percent, 0-10; every order has 1 to 7 lines, shipped 1-121 days after
      its order date)
    """
    if size_bytes < 0:
        raise ValueError(f"size must be >= 0 bytes, not {size_bytes}")
    rng = random.Random(f"tpch-{seed}")
    orders_count = max(1, size_bytes // _BYTES_PER_ORDER)
    customers = max(1, orders_count // 10)
    dates = [_iso_date(_FIRST_DAY + day) for day in range(_DAYS + 130)]
    directory.mkdir(parents=True, exist_ok=True)
    paths = {name: directory / f"{name}.tbl" for name in TPCH_TABLES}
    with paths["customer"].open("w", encoding="ascii", newline="\n") as out:
        for start in range(1, customers + 1, _BLOCK_LINES):
            out.write(
                "".join(
                    f"{key}|Customer#{key:09d}|{rng.randrange(25)}|{rng.choice(MARKET_SEGMENTS)}\n"
                    for key in range(start, min(customers + 1, start + _BLOCK_LINES))
                )
            )
    with (
        paths["orders"].open("w", encoding="ascii", newline="\n") as orders_out,
        paths["lineitem"].open("w", encoding="ascii", newline="\n") as items_out,
    ):
        for start in range(1, orders_count + 1, _BLOCK_LINES):
            orders_rows: list[str] = []
            item_rows: list[str] = []
            for key in range(start, min(orders_count + 1, start + _BLOCK_LINES)):
                day = rng.randrange(_DAYS)
                total = 0
                for line in range(1, rng.randint(1, 7) + 1):
                    quantity = rng.randint(1, 50)
                    price = quantity * rng.randint(90_000, 200_000) // 100
                    total += price
                    item_rows.append(
                        f"{key}|{line}|{rng.randrange(1, 200_001)}|{quantity}|{price}|"
                        f"{rng.randint(0, 10)}|{dates[day + rng.randint(1, 121)]}|"
                        f"{rng.choice(SHIP_MODES)}\n"
                    )
                orders_rows.append(
                    f"{key}|{rng.randint(1, customers)}|{rng.choice('FOP')}|{total}|"
                    f"{dates[day]}|{rng.choice(ORDER_PRIORITIES)}|0\n"
                )
            orders_out.write("".join(orders_rows))
            items_out.write("".join(item_rows))
    return paths


def write_graph(path: Path, nodes: int, *, seed: int = 0, max_out_degree: int = 8) -> Path:
    """Write a directed graph on nodes ``0..nodes-1``, one ``src dst`` line per edge.

    Every node has 1 to ``max_out_degree`` distinct out-links (never to itself when there is
    another node); targets favour low-numbered nodes, so ranks differ.
    """
    if nodes < 1:
        raise ValueError(f"a graph needs at least 1 node, not {nodes}")
    if max_out_degree < 1:
        raise ValueError(f"max_out_degree must be at least 1, not {max_out_degree}")
    rng = random.Random(f"graph-{seed}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="ascii", newline="\n") as out:
        for source in range(nodes):
            if nodes == 1:
                out.write("0 0\n")
                continue
            wanted = min(rng.randint(1, max_out_degree), nodes - 1)
            targets: set[int] = set()
            while len(targets) < wanted:
                target = int(nodes * rng.random() ** 2)
                if target != source:
                    targets.add(target)
            out.write("".join(f"{source} {target}\n" for target in sorted(targets)))
    return path


def _iso_date(days_since_epoch: int) -> str:
    """``YYYY-MM-DD`` of a day number (proleptic Gregorian, as ``datetime.date``)."""
    import datetime

    return (datetime.date(1970, 1, 1) + datetime.timedelta(days=days_since_epoch)).isoformat()


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: write one kind of input."""
    parser = argparse.ArgumentParser(prog="python -m examples.batch.datagen", description=__doc__)
    parser.add_argument("kind", choices=("text", "tpch", "graph"))
    parser.add_argument("out", type=Path, help="file (text, graph) or directory (tpch)")
    parser.add_argument("--mb", type=float, default=16.0, help="size in MiB (text, tpch)")
    parser.add_argument("--nodes", type=int, default=10_000, help="graph nodes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.mb < 0:
        parser.error(f"--mb must be >= 0, not {args.mb:g}")
    size = int(args.mb * 1024 * 1024)
    if args.kind == "text":
        print(write_text(args.out, size, seed=args.seed))
    elif args.kind == "tpch":
        for written in write_tpch(args.out, size, seed=args.seed).values():
            print(written)
    else:
        if args.nodes < 1:
            parser.error(f"--nodes must be at least 1, not {args.nodes}")
        print(write_graph(args.out, args.nodes, seed=args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
