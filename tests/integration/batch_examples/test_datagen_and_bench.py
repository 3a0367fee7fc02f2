"""The inputs are deterministic, and ``bench.batch`` runs end to end and prints its figures."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from examples.batch import datagen, wordcount

ROOT = Path(__file__).resolve().parents[3]


def test_generators_are_deterministic_and_sized(tmp_path: Path) -> None:
    for run in ("a", "b"):
        datagen.write_text(tmp_path / run / "text.txt", 200_000, seed=7)
        datagen.write_tpch(tmp_path / run / "tpch", 300_000, seed=7)
        datagen.write_graph(tmp_path / run / "graph.txt", 500, seed=7)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.*"))
    assert len(files) == 5
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    # At least the size asked for, at most one block of lines (20,000) more.
    assert 200_000 <= (tmp_path / "a" / "text.txt").stat().st_size < 200_000 + 1_500_000
    tables = sum(p.stat().st_size for p in (tmp_path / "a" / "tpch").iterdir())
    assert 250_000 < tables < 350_000
    sources = {line.split()[0] for line in (tmp_path / "a" / "graph.txt").read_text().splitlines()}
    assert sources == {str(node) for node in range(500)}  # Every node links somewhere.
    other = datagen.write_text(tmp_path / "c.txt", 200_000, seed=8)
    assert other.read_bytes() != (tmp_path / "a" / "text.txt").read_bytes()


def test_generators_refuse_bad_sizes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="size must be >= 0"):
        datagen.write_text(tmp_path / "t.txt", -1)
    with pytest.raises(ValueError, match="at least 1 node"):
        datagen.write_graph(tmp_path / "g.txt", 0)
    assert not (tmp_path / "t.txt").exists()
    assert not (tmp_path / "g.txt").exists()


def run_bench(tmp_path: Path, *args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.batch", "--input-mb", "1", "--cache-dir", str(tmp_path),
         *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr[-5000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout  # One JSON object, nothing else on stdout.
    figures: dict[str, object] = json.loads(lines[0])
    return figures


def test_bench_runs_both_workloads_on_a_local_cluster(tmp_path: Path) -> None:
    for workload in ("wordcount", "join"):
        figures = run_bench(tmp_path, "--workload", workload)
        assert figures["workload"] == workload
        total, job = figures["emporion_s"], figures["emporion_job_s"]
        assert isinstance(total, float)
        assert isinstance(job, float)
        assert 0 < job <= total
        if workload == "wordcount":
            text = tmp_path / "wordcount-1mb-seed0" / "text.txt"
            assert figures["result_keys"] == len(wordcount.reference_counts(str(text)))
        else:
            assert figures["result_keys"] == len(datagen.ORDER_PRIORITIES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["join-1mb-seed0", "wordcount-1mb-seed0"]


def test_bench_refuses_bad_arguments(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.batch", "--workload", "join", "--input-mb", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "--input-mb must be > 0, not 0" in done.stderr


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("pyspark") is None, reason="pip install pyspark")
def test_bench_against_pyspark_agrees(tmp_path: Path) -> None:
    for workload in ("wordcount", "join"):
        figures = run_bench(tmp_path, "--workload", workload, "--vs-pyspark")
        assert figures["answers_equal"] is True
        assert isinstance(figures["ratio"], float)
        assert isinstance(figures["ratio_without_startup"], float)
