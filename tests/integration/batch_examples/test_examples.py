"""The batch examples run on a real local cluster and give plain Python's answers.

Each example's ``main`` runs as its users run it (command-line arguments, printed output,
files written), and its job function is checked against the module's plain-Python reference.
The last test runs word count exactly as the README's command does, through
``emporion local --run``.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from emporion.local_cluster import LocalCluster
from examples.batch import BatchContext, datagen, pagerank, tpch, wordcount

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def master() -> Iterator[str]:
    """A master and two agents on this machine, for the whole module."""
    with LocalCluster(agents=2, http_port=None) as cluster:
        assert cluster.master_address is not None
        yield cluster.master_address


@pytest.fixture(scope="module")
def books(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two text files (different seeds) in one directory, about 1 MiB together."""
    directory = tmp_path_factory.mktemp("books")
    datagen.write_text(directory / "one.txt", 600_000, seed=1, words=3000)
    datagen.write_text(directory / "two.txt", 400_000, seed=2, words=3000)
    return directory


def read_output(directory: Path) -> list[str]:
    """The lines of a ``saveAsTextFile`` output directory, checking its layout."""
    assert (directory / "_SUCCESS").is_file()
    parts = sorted(directory.glob("part-*"))
    assert parts, f"no part files in {directory}"
    assert [p.name for p in parts] == [f"part-{i:05d}" for i in range(len(parts))]
    return [line for part in parts for line in part.read_text(encoding="utf-8").splitlines()]


def counts_of(lines: list[str]) -> dict[str, int]:
    pairs = [line.split("\t") for line in lines]
    return {word: int(count) for word, count in pairs}


def top_words(counts: dict[str, int], n: int) -> list[str]:
    ranked = sorted(counts.items(), key=lambda wc: (-wc[1], wc[0]))[:n]
    return [f"{word}\t{count}" for word, count in ranked]


def test_wordcount(
    master: str, books: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "counts"
    args = ["--master", master, "--no-progress", "--partitions", "3", str(books), str(out)]
    assert wordcount.main(args) == 0
    expected = wordcount.reference_counts(str(books))
    assert len(read_output(out)) == len(expected)  # One line per word.
    assert counts_of(read_output(out)) == expected
    assert len(list(out.glob("part-*"))) == 3
    assert capsys.readouterr().out.splitlines() == top_words(expected, 10)
    # A glob reads the same files.
    with BatchContext(master, app_name="wordcount-glob", progress=False) as sc:
        globbed = dict(wordcount.word_counts(sc, str(books / "*.txt")).collect())
    assert globbed == expected


def test_wordcount_refuses_an_existing_output(master: str, books: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exited:
        wordcount.main(["--master", master, str(books), str(tmp_path)])
    assert exited.value.code == 2


def test_tpch_query(master: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "tpch"
    args = ["--master", master, "--no-progress", "--generate-mb", "2", str(data)]
    assert tpch.main([*args, "--limit", "5"]) == 0
    expected = tpch.reference_query(data)
    assert len(expected) > 5  # The query selects something at this size.
    printed = capsys.readouterr().out.splitlines()
    assert [int(line.split()[0]) for line in printed[1:]] == [row[0] for row in expected[:5]]
    with BatchContext(master, app_name="tpch-full", progress=False) as sc:
        assert tpch.shipping_priority(sc, str(data)).collect() == expected
        other = tpch.shipping_priority(sc, str(data), "MACHINERY", "1996-01-01").collect()
    assert other == tpch.reference_query(data, "MACHINERY", "1996-01-01")


def test_pagerank(master: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edges = datagen.write_graph(tmp_path / "edges.txt", 3000, seed=4)
    out = tmp_path / "ranks"
    args = ["--master", master, "--no-progress", "--iterations", "6", "--output", str(out)]
    assert pagerank.main([*args, str(edges)]) == 0
    expected = pagerank.reference_ranks(edges, 6)
    pairs = (line.split("\t") for line in read_output(out))
    written = {int(page): float(rank) for page, rank in pairs}
    assert written.keys() == expected.keys()
    assert all(math.isclose(written[p], expected[p], rel_tol=1e-9) for p in expected)
    best = sorted(expected.items(), key=lambda pr: (-pr[1], pr[0]))[:10]
    printed = capsys.readouterr().out.splitlines()
    assert [int(line.split("\t")[0]) for line in printed] == [page for page, _ in best]


def test_wordcount_through_emporion_local(books: Path, tmp_path: Path) -> None:
    out = tmp_path / "counts"
    command = f"python -m examples.batch.wordcount --master {{master}} {books} {out}"
    done = subprocess.run(
        [sys.executable, "-m", "emporion", "local", "--agents", "2", "--run", command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    expected = wordcount.reference_counts(str(books))
    assert counts_of(read_output(out)) == expected
    for line in top_words(expected, 10):
        assert line in done.stdout.splitlines()
