"""The batch framework on a real cluster: a word count through files, a join, the cache, a
failing task, the status page, and nothing left behind when the context closes."""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from emporion.local_cluster import LocalCluster
from examples.batch import BatchContext, BatchJobError


def _batch_processes(root: Path) -> list[str]:
    """Executors and workers running in a sandbox under ``root`` (others may run elsewhere)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        batch = "examples.batch.executor" in args or "examples.batch.worker" in args
        if batch and cwd.startswith(str(root)):
            found.append(f"{proc.name} {args}")
    return found


def test_word_count_from_files_to_files(master: str, tmp_path: Path) -> None:
    lines = [f"w{i % 13} w{i % 7} common" for i in range(3000)]
    books = tmp_path / "books"
    books.mkdir()
    (books / "a.txt").write_text("\n".join(lines[:1700]) + "\n")
    (books / "b.txt").write_text("\n".join(lines[1700:]))  # No newline at the end.
    (books / "_ignored.txt").write_text("not input\n")
    expected = Counter(word for line in lines for word in line.split())
    with BatchContext(master, app_name="wordcount", progress=False) as sc:
        text = sc.textFile(str(books), minPartitions=5)
        assert text.getNumPartitions() >= 5
        counts = text.flatMap(str.split).map(lambda w: (w, 1)).reduceByKey(lambda a, b: a + b)
        assert dict(counts.collect()) == expected
        top = counts.takeOrdered(3, key=lambda kv: -kv[1])
        assert top[0] == ("common", 3000)
        out = tmp_path / "out"
        counts.map(lambda kv: f"{kv[0]}\t{kv[1]}").saveAsTextFile(str(out))
    names = sorted(p.name for p in out.iterdir())
    assert "_SUCCESS" in names
    parts = [n for n in names if n.startswith("part-")]
    assert parts == [f"part-{i:05d}" for i in range(len(parts))]
    written = {
        w: int(n)
        for part in parts
        for w, n in (line.split("\t") for line in (out / part).read_text().splitlines())
    }
    assert written == expected


def test_join_cache_and_broadcast(master: str) -> None:
    with BatchContext(master, app_name="join", progress=False) as sc:
        orders = sc.parallelize([(i % 50, i) for i in range(1000)], 4)
        names = sc.parallelize([(k, f"c{k}") for k in range(0, 60, 2)], 3)
        joined = orders.join(names).cache()
        expected = sorted((i % 50, (i, f"c{i % 50}")) for i in range(1000) if i % 50 % 2 == 0)
        assert sorted(joined.collect()) == expected
        assert joined.count() == len(expected)  # From the cache this time.
        assert sc.dag.cache, "the cached partitions were reported to the driver"
        factor = sc.broadcast({"x": 3})
        assert sc.range(10).map(lambda x: x * factor.value["x"]).sum() == 135
        factor.destroy()  # The driver stops serving it.
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(f"{sc.uiWebUrl}/broadcast/{factor.bid}", timeout=10)
        seen = sc.accumulator(0)
        sc.range(100, numSlices=4).foreach(lambda x: seen.add(1))
        assert seen.value == 100


def test_a_failing_task_fails_the_job_with_the_users_exception(master: str) -> None:
    def boom(x: int) -> int:
        if x == 7:
            raise KeyError(f"bad record {x}")
        return x

    with BatchContext(master, app_name="failing", progress=False, max_attempts=2) as sc:
        with pytest.raises(BatchJobError) as caught:
            sc.parallelize(range(10), 2).map(boom).collect()
        error = caught.value
        assert error.exc_type == "KeyError"
        assert "bad record 7" in error.exc_message
        assert "in boom" in error.remote_traceback
        assert isinstance(error.__cause__, KeyError)
        assert error.attempts == 2
        # The context still works after a failed job.
        assert sc.parallelize([1, 2, 3]).sum() == 6


def test_status_page_and_webui_url(master: str) -> None:
    with BatchContext(master, app_name="status", progress=False) as sc:
        sc.parallelize(range(100), 3).map(lambda x: (x % 3, x)).groupByKey().count()
        with urllib.request.urlopen(sc.uiWebUrl + "/api/status", timeout=10) as response:
            status = json.load(response)
        assert status["app"] == "status"
        assert [j["state"] for j in status["jobs"]] == ["DONE"]
        assert {s["kind"] for s in status["stages"]} == {"shuffle-map", "result"}
        with urllib.request.urlopen(sc.uiWebUrl + "/", timeout=10) as response:
            assert b"<h2>Stages</h2>" in response.read()


def test_nothing_is_left_running_or_on_disk(cluster: LocalCluster) -> None:
    assert cluster.master_address is not None
    with BatchContext(cluster.master_address, app_name="clean", progress=False) as sc:
        pairs = sc.parallelize(range(2000), 4).map(lambda x: (x % 10, x))
        assert len(pairs.reduceByKey(lambda a, b: a + b).cache().collect()) == 10
        assert _batch_processes(cluster.root)
    assert _batch_processes(cluster.root) == []
    leftovers = [
        os.path.join(root, name)
        for root, dirs, files in os.walk(cluster.root)
        for name in dirs + files
        if name == "batch-blocks" or name.startswith(("shuffle_", "rdd_"))
    ]
    assert leftovers == []


@pytest.mark.skipif(os.geteuid() != 0, reason="memory limits need cgroups (root)")
def test_a_task_over_its_memory_limit_fails_the_job_saying_so(master: str) -> None:
    def hog(x: int) -> int:
        block = bytearray(700 * 1024 * 1024)
        block[::4096] = b"x" * len(block[::4096])  # Touch every page: really resident.
        return x + len(block)

    with BatchContext(
        master, app_name="hog", progress=False, max_attempts=2, task_mem=64, executor_mem=128
    ) as sc:
        with pytest.raises(BatchJobError, match="raise task_mem") as caught:
            sc.parallelize([1], 1).map(hog).collect()
        assert caught.value.exc_type == "MemoryError"
        assert sc.parallelize([1, 2]).sum() == 3


def test_big_results_come_from_the_executors_server_and_progress_is_drawn(
    master: str, capfd: pytest.CaptureFixture[str]
) -> None:
    with BatchContext(master, app_name="big", progress=True) as sc:
        numbers = sc.parallelize(range(300_000), 2).map(lambda x: (x, str(x)))
        assert numbers.collect() == [(x, str(x)) for x in range(300_000)]  # MBs per partition.
        big = sc.broadcast(list(range(100_000)))
        assert sc.range(4, numSlices=4).map(lambda i: big.value[i * 1000]).sum() == 6000
    summaries = [line for line in capfd.readouterr().err.splitlines() if "[batch] job" in line]
    assert len(summaries) == 2
    assert summaries[0].startswith("[batch] job 0 done in ")
    assert "2 partitions" in summaries[0]


def test_no_master_at_the_address_is_a_clear_error() -> None:
    import socket

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{unused.getsockname()[1]}"
    with pytest.raises(BatchJobError, match=f"could not register with the master at {address}"):
        BatchContext(address, progress=False, start_timeout=1.0)
    with pytest.raises(
        ValueError, match=re.escape("master must be 'HOST:PORT' or 'zk://...', not ''")
    ):
        BatchContext("", progress=False)
