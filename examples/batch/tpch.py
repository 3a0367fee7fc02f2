"""A TPC-H-like query on Emporion's batch framework: join, aggregate, sort.

TPC-H's query 3 ("shipping priority") over the tables :func:`examples.batch.datagen.write_tpch`
writes: the unshipped orders with the largest revenue, for customers of one market segment::

    SELECT l_orderkey, sum(l_extendedprice * (1 - l_discount)) AS revenue,
           o_orderdate, o_shippriority
    FROM customer, orders, lineitem
    WHERE c_mktsegment = :segment AND c_custkey = o_custkey AND l_orderkey = o_orderkey
      AND o_orderdate < :date AND l_shipdate > :date
    GROUP BY l_orderkey, o_orderdate, o_shippriority
    ORDER BY revenue DESC, o_orderdate, l_orderkey   -- l_orderkey: a total order
    LIMIT :limit

As RDDs: customers ⋈ orders on the customer key, lineitem revenue summed per order
(``reduceByKey``) ⋈ those orders on the order key, then ``sortBy`` and ``take``. Revenue is
kept in hundredths of a cent (price in cents * (100 - discount %)), an integer, so the sum
is exact in any order. :func:`reference_query` is the same query in plain Python.

::

    python -m examples.batch.tpch --master 127.0.0.1:5050 DATA_DIR [--generate-mb 64]
"""

from __future__ import annotations

import argparse
import datetime
import operator
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from examples.batch import datagen

if TYPE_CHECKING:
    from examples.batch import RDD, BatchContext

__all__ = ["ResultRow", "main", "reference_query", "shipping_priority"]

ResultRow = tuple[int, int, str, int]
"""``(orderkey, revenue in 1/100 cent, orderdate, shippriority)``."""
DEFAULT_SEGMENT = "BUILDING"
DEFAULT_DATE = "1995-03-15"


def shipping_priority(
    sc: BatchContext, data_dir: str, segment: str = DEFAULT_SEGMENT, date: str = DEFAULT_DATE
) -> RDD[ResultRow]:
    """Every qualifying order's row, sorted (revenue descending, then date, then order key)."""
    base = data_dir.rstrip("/")
    customers = (
        sc.textFile(f"{base}/customer.tbl")
        .map(lambda line: line.split("|"))
        .filter(lambda c: c[3] == segment)
        .map(lambda c: (int(c[0]), None))
    )
    orders = (
        sc.textFile(f"{base}/orders.tbl")
        .map(lambda line: line.split("|"))
        .filter(lambda o: o[4] < date)
        .map(lambda o: (int(o[1]), (int(o[0]), o[4], int(o[6]))))
    )
    chosen = orders.join(customers).map(lambda kv: (kv[1][0][0], (kv[1][0][1], kv[1][0][2])))
    revenue = (
        sc.textFile(f"{base}/lineitem.tbl")
        .map(lambda line: line.split("|"))
        .filter(lambda item: item[6] > date)
        .map(lambda item: (int(item[0]), int(item[4]) * (100 - int(item[5]))))
        .reduceByKey(operator.add)
    )
    rows = revenue.join(chosen).map(lambda kv: (kv[0], kv[1][0], kv[1][1][0], kv[1][1][1]))
    return rows.sortBy(_order)


def _order(row: ResultRow) -> tuple[int, str, int]:
    return -row[1], row[2], row[0]


def _split(path: Path) -> Iterator[list[str]]:
    with path.open(encoding="ascii") as lines:
        for line in lines:
            yield line.rstrip("\n").split("|")


def reference_query(
    data_dir: Path, segment: str = DEFAULT_SEGMENT, date: str = DEFAULT_DATE
) -> list[ResultRow]:
    """What :func:`shipping_priority` computes, in plain Python."""
    customers = {int(c[0]) for c in _split(data_dir / "customer.tbl") if c[3] == segment}
    orders = {
        int(o[0]): (o[4], int(o[6]))
        for o in _split(data_dir / "orders.tbl")
        if o[4] < date and int(o[1]) in customers
    }
    revenue: dict[int, int] = {}
    for item in _split(data_dir / "lineitem.tbl"):
        key = int(item[0])
        if item[6] > date and key in orders:
            revenue[key] = revenue.get(key, 0) + int(item[4]) * (100 - int(item[5]))
    rows = [(key, value, *orders[key]) for key, value in revenue.items()]
    return sorted(rows, key=_order)


def _money(hundredths_of_cents: int) -> str:
    return f"{hundredths_of_cents / 10_000:,.2f}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the query (generating the tables first if asked) and print the top rows."""
    parser = argparse.ArgumentParser(prog="python -m examples.batch.tpch", description=__doc__)
    parser.add_argument("--master", required=True, help="HOST:PORT or zk://... of the master")
    parser.add_argument("--segment", default=DEFAULT_SEGMENT, choices=datagen.MARKET_SEGMENTS)
    parser.add_argument("--date", default=DEFAULT_DATE, help="YYYY-MM-DD")
    parser.add_argument("--limit", type=int, default=10, help="rows to print")
    parser.add_argument("--generate-mb", type=float, default=None, help="write tables first")
    parser.add_argument("--no-progress", action="store_true", help="no progress display")
    parser.add_argument("data_dir", type=Path, help="holds customer.tbl, orders.tbl, lineitem.tbl")
    args = parser.parse_args(argv)
    try:
        datetime.date.fromisoformat(args.date)
    except ValueError:
        parser.error(f"--date must be YYYY-MM-DD, not {args.date!r}")
    if args.limit < 1:
        parser.error(f"--limit must be at least 1, not {args.limit}")
    if args.generate_mb is not None:
        if args.generate_mb <= 0:
            parser.error(f"--generate-mb must be > 0, not {args.generate_mb:g}")
        datagen.write_tpch(args.data_dir, int(args.generate_mb * 1024 * 1024))
    missing = [t for t in datagen.TPCH_TABLES if not (args.data_dir / f"{t}.tbl").is_file()]
    if missing:
        parser.error(f"{args.data_dir} has no {', '.join(t + '.tbl' for t in missing)}")
    from examples.batch import BatchContext

    with BatchContext(args.master, app_name="tpch-q3", progress=not args.no_progress) as sc:
        rows = shipping_priority(sc, str(args.data_dir), args.segment, args.date).take(args.limit)
    print(f"{'orderkey':>10}  {'revenue':>14}  {'orderdate':<10}  shippriority")
    for key, revenue, date, priority in rows:
        print(f"{key:>10}  {_money(revenue):>14}  {date:<10}  {priority}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
