"""A job survives ``kill -9`` of an agent (and everything it ran) in the middle of a shuffle.

The map stage writes shuffle outputs on both agents. Every reduce task, in its first
attempt, announces itself and then waits until the test has killed agent 1 with SIGKILL,
together with its executor and workers (a machine lost). From then on the map outputs that
agent 1 held are gone: a reduce task fetching them fails, the map stage runs again for the
lost partitions on agent 0 (lineage), and the job still returns the right sums.
"""

from __future__ import annotations

import operator
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from emporion.local_cluster import LocalCluster
from examples.batch import BatchContext, current_task
from tests.integration.batch_faults.conftest import kill_agent, master_of, wait_for

MAP_PARTITIONS = 8
REDUCE_PARTITIONS = 4


def test_job_survives_kill_9_of_an_agent_mid_shuffle(cluster: LocalCluster, tmp_path: Path) -> None:
    killed = tmp_path / "agent-1-killed"
    marks = tmp_path / "marks"
    marks.mkdir()

    def map_side(index: int, records: Iterator[int]) -> Iterator[tuple[int, int]]:
        place = re.search(r"/(agent-\d+)/", (os.environ.get("MESOS_SANDBOX") or os.getcwd()) + "/")
        agent = place.group(1) if place else "unknown"
        (marks / f"map-{index}-{agent}-{time.monotonic_ns()}").touch()
        time.sleep(0.3)  # Slow enough that both agents take map tasks.
        return ((x % 23, x) for x in records)

    def reduce_side(records: Iterator[tuple[int, int]]) -> Iterator[tuple[int, int]]:
        task = current_task()
        assert task is not None
        (marks / f"reduce-{task.partitionId()}-{task.attemptNumber()}").touch()
        deadline = time.monotonic() + 120
        while not killed.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return records

    data = list(range(20_000))
    expected: dict[int, int] = {}
    for x in data:
        expected[x % 23] = expected.get(x % 23, 0) + x
    result: dict[str, Any] = {}

    with BatchContext(master_of(cluster), app_name="agent-loss", progress=False) as sc:
        job = (
            sc.parallelize(data, MAP_PARTITIONS)
            .mapPartitionsWithIndex(map_side)
            .reduceByKey(operator.add, REDUCE_PARTITIONS)
            .mapPartitions(reduce_side)
        )

        def run() -> None:
            try:
                result["answer"] = dict(job.collect())
            except BaseException as error:  # Reported by the main thread.
                result["error"] = error

        runner = threading.Thread(target=run, name="job")
        runner.start()
        try:
            wait_for(lambda: any(marks.glob("reduce-*")), "a reduce task started")
            maps_on_1 = {p.name.split("-")[1] for p in marks.glob("map-*-agent-1-*")}
            kill_agent(cluster, 1)
            killed_at = time.monotonic_ns()
        finally:
            killed.touch()
            runner.join(timeout=240)
        assert not runner.is_alive(), "the job did not finish after the agent was killed"
        if "error" in result:
            raise result["error"]
        assert result["answer"] == expected
        # The scenario happened: agent 1 held map outputs, and they were computed again.
        assert maps_on_1, "no map task ran on agent 1 before it was killed"
        recomputed = {
            p.name.split("-")[1]
            for p in marks.glob("map-*-agent-0-*")
            if int(p.name.rsplit("-", 1)[1]) > killed_at
        }
        assert maps_on_1 & recomputed, f"map partitions {maps_on_1} of agent 1 never ran again"
        # The context still works on the surviving agent.
        again = sc.parallelize(range(10), 3).map(lambda x: (x % 2, x)).reduceByKey(operator.add)
        assert dict(again.collect()) == {0: 20, 1: 25}
