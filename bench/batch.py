"""The batch framework against PySpark: the same RDD program, wall time, on the same machine.

``python -m bench.batch --workload wordcount|join --input-mb N [--vs-pyspark] [--agents 2]``

1. Generates the input (``examples.batch.datagen``, deterministic) unless it is cached under
   ``--cache-dir`` (default ``$TMPDIR/emporion-bench-batch``) keyed by workload, size and seed;
   a killed generation leaves nothing half-written there.
2. Starts a local Emporion cluster (a master and ``--agents`` agents, the host's CPUs split
   between them: :mod:`emporion.local_cluster`), then times the job from creating the
   ``BatchContext`` to the result: ``emporion_s`` (start-up included), of which
   ``emporion_context_s`` is creating the context and ``emporion_job_s`` the job alone.
   Starting the cluster is not counted (``cluster_start_s``): PySpark's ``local[2]`` has none.
3. With ``--vs-pyspark``, the very same job function in PySpark with ``local[2]``:
   ``pyspark_s``, ``pyspark_context_s``, ``pyspark_job_s``; then ``ratio`` = emporion_s /
   pyspark_s and ``ratio_without_startup`` = emporion_job_s / pyspark_job_s, and checks that
   both answers are equal (exit status 1 and ``answers_equal: false`` if not).

The workloads, each one RDD program run unchanged by both engines:

* ``wordcount``: ``textFile → flatMap(str.split) → map((w, 1)) → reduceByKey(add) → collect``
  over a Zipf-distributed text of N MiB.
* ``join``: TPC-H-like ``orders`` and ``lineitem`` (N MiB together, ``write_tpch``): parse
  both, ``join`` on the order key (a full shuffle of both sides), then revenue (in cents, so
  exact) summed per order priority with ``reduceByKey``.

Partition counts are each engine's defaults for ``textFile`` and ``reduceByKey``/``join``.
The load average before and after is part of the output: others' work on the machine slows
either engine.

Every process started here dies with this one however it ends: the cluster's master and agents
are started with :func:`bench._common.start_child` (agents get SIGUSR1 as their death signal,
which kills their executors too); PySpark's JVM exits when its stdin pipe from this process
closes (PySpark's ``PythonGatewayServer``), and its Python workers with it.
"""

from __future__ import annotations

import argparse
import operator
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench._common import emit, kill_children_on_signals, machine, rounded, start_child
from emporion.local_cluster import LocalCluster, _Process
from examples.batch import datagen

WORKLOADS = ("wordcount", "join")
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "emporion-bench-batch"
Answer = dict[Any, int]


def wordcount(sc: Any, inputs: Path) -> Answer:
    """Word count: every word and how often it occurs."""
    lines = sc.textFile(str(inputs / "text.txt"))
    counts = lines.flatMap(str.split).map(lambda word: (word, 1)).reduceByKey(operator.add)
    return dict(counts.collect())


def join(sc: Any, inputs: Path) -> Answer:
    """Revenue in cents per order priority: orders ⋈ lineitem on the order key, summed."""
    orders = sc.textFile(str(inputs / "orders.tbl")).map(_order_priority)
    items = sc.textFile(str(inputs / "lineitem.tbl")).map(_item_revenue)
    return dict(orders.join(items).values().reduceByKey(operator.add).collect())


def _order_priority(line: str) -> tuple[int, str]:
    fields = line.split("|")
    return int(fields[0]), fields[5]


def _item_revenue(line: str) -> tuple[int, int]:
    fields = line.split("|")
    return int(fields[0]), int(fields[4]) * (100 - int(fields[5])) // 100


JOBS: dict[str, Callable[[Any, Path], Answer]] = {"wordcount": wordcount, "join": join}
READS = {"wordcount": ("text.txt",), "join": ("orders.tbl", "lineitem.tbl")}
"""The files each job reads (``input_bytes`` counts these)."""


def prepare_input(workload: str, size_mb: float, cache_dir: Path, seed: int) -> Path:
    """The input directory for a workload, generated once per (workload, size, seed)."""
    final = cache_dir / f"{workload}-{size_mb:g}mb-seed{seed}"
    if final.is_dir():
        return final
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=cache_dir))
    try:
        size = int(size_mb * 1024 * 1024)
        if workload == "wordcount":
            datagen.write_text(partial / "text.txt", size, seed=seed)
        else:
            datagen.write_tpch(partial, size, seed=seed)
        partial.rename(final)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return final


class BenchCluster(LocalCluster):
    """A :class:`LocalCluster` whose processes die with this one, even killed (``start_child``)."""

    def _spawn(self, name: str, args: list[str]) -> _Process:
        log = self.root / "logs" / f"{name}.log"
        agent = name != "master"
        stop = signal.SIGUSR1 if agent else signal.SIGTERM
        with log.open("ab") as out:
            popen = start_child(
                [self.python, *args],
                death_signal=stop,
                stop_signal=stop,
                grace=10.0,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        process = _Process(name, popen, log)
        self._processes.append(process)
        return process


def run_emporion(
    job: Callable[[Any, Path], Answer],
    inputs: Path,
    agents: int,
    keep: Path | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Time ``job`` on a fresh local cluster; the figures and the answer (key ``answer``).

    ``keep``: the cluster's work dir (logs, sandboxes), left in place afterwards;
    ``options``: more keyword arguments for the ``BatchContext``.
    """
    from examples.batch import BatchContext

    started = time.perf_counter()
    with BenchCluster(agents=agents, http_port=None, work_dir=keep) as cluster:
        assert cluster.master_address is not None
        ready = time.perf_counter()
        context_start = time.perf_counter()
        with BatchContext(
            cluster.master_address, app_name="bench-batch", progress=False, **(options or {})
        ) as sc:
            job_start = time.perf_counter()
            answer = job(sc, inputs)
            done = time.perf_counter()
        closed = time.perf_counter()
    return {
        "cluster_start_s": ready - started,
        "emporion_s": done - context_start,
        "emporion_context_s": job_start - context_start,
        "emporion_job_s": done - job_start,
        "emporion_close_s": closed - done,
        "answer": answer,
    }


def run_pyspark(job: Callable[[Any, Path], Answer], inputs: Path) -> dict[str, Any]:
    """Time ``job`` in PySpark ``local[2]``; the figures and the answer (key ``answer``)."""
    # The workers must run this interpreter (the venv: it finds bench/ and examples/).
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    from pyspark import SparkConf, SparkContext

    conf = SparkConf().setMaster("local[2]").setAppName("bench-batch")
    conf = conf.set("spark.ui.enabled", "false").set("spark.ui.showConsoleProgress", "false")
    context_start = time.perf_counter()
    sc = SparkContext(conf=conf)
    try:
        sc.setLogLevel("ERROR")
        job_start = time.perf_counter()
        answer = job(sc, inputs)
        done = time.perf_counter()
    finally:
        sc.stop()
    return {
        "pyspark_s": done - context_start,
        "pyspark_context_s": job_start - context_start,
        "pyspark_job_s": done - job_start,
        "pyspark_close_s": time.perf_counter() - done,
        "answer": answer,
    }


def engine_version() -> str:
    """The commit the engine's code is at, ``+dirty`` when examples/batch has changes."""
    here = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=here, capture_output=True, text=True, check=False, timeout=10
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--", "examples/batch") else "")


def differences(left: Answer, right: Answer, limit: int = 5) -> list[str]:
    """Up to ``limit`` keys whose values differ, for the error output."""
    keys = sorted(set(left) | set(right), key=repr)
    return [
        f"{key!r}: emporion {left.get(key)!r}, pyspark {right.get(key)!r}"
        for key in keys
        if left.get(key) != right.get(key)
    ][:limit]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print one JSON object."""
    kill_children_on_signals()
    parser = argparse.ArgumentParser(prog="python -m bench.batch", description=__doc__)
    parser.add_argument("--workload", choices=WORKLOADS, required=True)
    parser.add_argument("--input-mb", type=float, required=True, help="input size in MiB")
    parser.add_argument("--vs-pyspark", action="store_true", help="also run it in PySpark")
    parser.add_argument("--agents", type=int, default=2, help="local cluster agents")
    parser.add_argument("--seed", type=int, default=0, help="input generator seed")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="input cache")
    parser.add_argument("--skip-emporion", action="store_true", help="PySpark only (baseline)")
    parser.add_argument(
        "--keep", type=Path, default=None, help="keep the cluster's work dir (logs) here"
    )
    parser.add_argument(
        "--task-mem", type=float, default=None, help="BatchContext task_mem (MiB) if not default"
    )
    args = parser.parse_args(argv)
    if args.task_mem is not None and args.task_mem <= 0:
        parser.error(f"--task-mem must be > 0, not {args.task_mem:g}")
    if args.input_mb <= 0:
        parser.error(f"--input-mb must be > 0, not {args.input_mb:g}")
    if args.agents < 1:
        parser.error(f"--agents must be at least 1, not {args.agents}")
    if args.skip_emporion and not args.vs_pyspark:
        parser.error("--skip-emporion runs nothing without --vs-pyspark")
    load_before = os.getloadavg()
    generate_start = time.perf_counter()
    inputs = prepare_input(args.workload, args.input_mb, args.cache_dir, args.seed)
    figures: dict[str, Any] = {
        "workload": args.workload,
        "input_mb": args.input_mb,
        "input_bytes": sum((inputs / name).stat().st_size for name in READS[args.workload]),
        "agents": args.agents,
        "task_mem": args.task_mem,
        "input_ready_s": rounded(time.perf_counter() - generate_start, 2),
    }
    job = JOBS[args.workload]
    answers: dict[str, Answer] = {}
    if not args.skip_emporion:
        options = {} if args.task_mem is None else {"task_mem": args.task_mem}
        result = run_emporion(job, inputs, args.agents, args.keep, options)
        answers["emporion"] = result.pop("answer")
        figures.update({key: rounded(value, 3) for key, value in result.items()})
    if args.vs_pyspark:
        result = run_pyspark(job, inputs)
        answers["pyspark"] = result.pop("answer")
        figures.update({key: rounded(value, 3) for key, value in result.items()})
    if len(answers) == 2:
        figures["ratio"] = rounded(figures["emporion_s"] / figures["pyspark_s"], 3)
        figures["ratio_without_startup"] = rounded(
            figures["emporion_job_s"] / figures["pyspark_job_s"], 3
        )
        figures["answers_equal"] = answers["emporion"] == answers["pyspark"]
        if not figures["answers_equal"]:
            figures["differences"] = differences(answers["emporion"], answers["pyspark"])
    figures["result_keys"] = len(next(iter(answers.values())))
    figures["load_average_before"] = [round(x, 2) for x in load_before]
    figures["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    figures["engine_commit"] = engine_version()
    figures["machine"] = machine()
    emit(figures)
    return 0 if figures.get("answers_equal", True) else 1


if __name__ == "__main__":
    sys.exit(main())
