"""A task that raises, a task that is slow, and a context that closes: on a real cluster.

* A user's exception fails the job after the retries (4 attempts, on both agents), with the
  exception's type, message and remote traceback, and the context stays usable.
* Speculation: one copy of one task hangs; a second copy runs elsewhere, the job returns the
  right answer while the first copy still sleeps, and that copy is killed (the file it holds
  open is then held by no process: pids would not do, workers may run in a PID namespace).
* Closing the context leaves nothing running under the agents and no shuffle or cached block
  on disk, while what ``saveAsTextFile`` wrote stays.
"""

from __future__ import annotations

import operator
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from emporion.local_cluster import LocalCluster
from examples.batch import BatchContext, BatchJobError, current_task
from tests.integration.batch_faults.conftest import (
    holders,
    master_of,
    sandbox_processes,
    wait_for,
)


def where_am_i() -> str:
    """``agent-<i>``: the agent whose sandbox this worker runs in."""
    place = os.environ.get("MESOS_SANDBOX") or os.getcwd()
    found = re.search(r"/(agent-\d+)/", place + "/")
    assert found, f"task runs outside an agent's work dir: {place}"
    return found.group(1)


def slow_where(_: object) -> str:
    """:func:`where_am_i`, slowly: enough for tasks to spread over both executors."""
    time.sleep(0.5)
    return where_am_i()


def test_user_exception_fails_the_job_after_retries(cluster: LocalCluster, tmp_path: Path) -> None:
    def explode(x: int) -> int:
        if x == 13:
            task = current_task()
            assert task is not None
            (tmp_path / f"attempt-{task.attemptNumber()}-{where_am_i()}").touch()
            raise ValueError(f"bad record {x}")
        return x

    with BatchContext(master_of(cluster), app_name="raises", progress=False) as sc:
        # Both executors up first, so "another agent" exists when the retries come.
        wait_for(
            lambda: (
                set(sc.parallelize(range(8), 8).map(slow_where).collect()) == {"agent-0", "agent-1"}
            ),
            "tasks running on both agents",
        )
        with pytest.raises(BatchJobError) as caught:
            sc.parallelize(range(40), 4).map(explode).collect()
        error = caught.value
        assert error.exc_type.rsplit(".", 1)[-1] == "ValueError"
        assert error.exc_message == "bad record 13"
        assert "explode" in error.remote_traceback
        assert "bad record 13" in str(error)
        assert isinstance(error.__cause__, ValueError)
        attempts = [p.name for p in tmp_path.iterdir()]
        numbers = sorted(int(name.split("-")[1]) for name in attempts)
        # Four attempts ran the function (an attempt lost before it ran still takes a number).
        assert len(numbers) == 4
        assert numbers[0] == 0
        assert len(set(numbers)) == 4
        assert {name.split("-", 2)[2] for name in attempts} == {"agent-0", "agent-1"}
        assert sc.parallelize(range(5), 2).map(lambda x: x * 2).sum() == 20  # Still usable.


def test_speculation_beats_a_slow_task(cluster: LocalCluster, tmp_path: Path) -> None:
    hang_seconds = 120.0
    first_copy = tmp_path / "first-copy-of-partition-3"
    finished = tmp_path / "slow-copy-finished"

    def work(index: int, records: Iterator[int]) -> Iterator[int]:
        if index == 3:
            try:
                fd = os.open(first_copy, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pass  # A later copy: runs at normal speed.
            else:
                # The descriptor stays open while this copy lives: the test sees it go.
                time.sleep(hang_seconds)
                finished.touch()
                os.close(fd)
        time.sleep(0.2)
        return (x * x for x in records)

    with BatchContext(master_of(cluster), app_name="speculation", progress=False) as sc:
        data = list(range(200))
        got = sc.parallelize(data, 10).mapPartitionsWithIndex(work).collect()
        assert got == [x * x for x in data]
        assert first_copy.exists()
        assert not finished.exists()  # The answer came from another copy.
        wait_for(lambda: not holders(first_copy), "the slow copy killed")
    assert not finished.exists()


def test_nothing_left_after_the_context_closes(cluster: LocalCluster, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with BatchContext(master_of(cluster), app_name="cleanup", progress=False) as sc:
        table = sc.broadcast({i: i * i for i in range(100)})
        pairs = sc.parallelize(range(3000), 6).map(lambda x: (x % 17, table.value[x % 100]))
        sums = pairs.reduceByKey(operator.add, 4).cache()
        assert sums.count() == 17
        sums.sortByKey().saveAsTextFile(str(out))
        assert sandbox_processes(cluster), "no executor ran under the agents"
    wait_for(lambda: not sandbox_processes(cluster), "every executor and worker gone")
    # What the executors leave in their sandboxes: their stdout and stderr, nothing else (no
    # shuffle file, no cached block, no broadcast copy).
    leftovers = [
        path
        for agent in (0, 1)
        for path in (cluster.root / f"agent-{agent}").rglob("*")
        if path.is_file() and "executors" in path.parts and path.name not in {"stdout", "stderr"}
    ]
    assert leftovers == []
    assert (out / "_SUCCESS").is_file()
    assert len([p for p in out.iterdir() if p.name.startswith("part-")]) == 4
