"""The DAG scheduler (sans-I/O): stages cut at shuffles, placement, retries, speculation,
lost executors. RDDs are built for real; only the context is reduced to its id counters."""

from __future__ import annotations

import itertools
import operator
from typing import Any, cast

import pytest

from examples.batch.context import BatchContext
from examples.batch.dag import DAGScheduler, TaskAttempt, speculatable
from examples.batch.errors import BatchJobError
from examples.batch.rdd import RDD
from examples.batch.rdds import ParallelCollectionRDD
from examples.batch.shuffle import MapOutput


class _Ids:
    """What an RDD asks of its context while it is built: fresh ids."""

    def __init__(self) -> None:
        self._rdds = itertools.count()
        self._shuffles = itertools.count()

    def _new_rdd_id(self) -> int:
        return next(self._rdds)

    def _new_shuffle_id(self) -> int:
        return next(self._shuffles)


def _parallelize(data: Any, n: int) -> RDD[Any]:
    return RDD(cast(BatchContext, _Ids()), ParallelCollectionRDD(data, n))


def _pairs(n: int = 2) -> RDD[Any]:
    return _parallelize([(i % 5, i) for i in range(20)], n)


def _output(executor: str, reducers: int) -> MapOutput:
    return MapOutput(executor, f"{executor}:1", "t", (1,) * reducers)


def _run_map_stage(dag: DAGScheduler, executor: str = "eA", agent: str = "A") -> None:
    (taskset,) = dag.tasksets.values()
    assert taskset.stage.is_map
    reducers = taskset.stage.shuffle_dep.partitioner.num_partitions  # type: ignore[union-attr]
    for attempt in dag.offer(agent, executor, 100, now=0.0):
        assert dag.task_succeeded(attempt.task_id, _output(executor, reducers), now=1.0)


def test_narrow_operations_make_one_stage() -> None:
    dag = DAGScheduler()
    rdd = _parallelize(range(10), 3).map(lambda x: x + 1).filter(bool).flatMap(lambda x: [x])
    job = dag.submit_job(rdd, list, range(3), now=0.0)
    assert list(dag.tasksets) == [job.stage.id]
    assert job.stage.parents == []
    assert dag.tasksets[job.stage.id].pending == [0, 1, 2]


def test_shuffles_cut_stages_and_the_result_stage_waits_for_its_parents() -> None:
    dag = DAGScheduler()
    counts = _pairs(2).reduceByKey(operator.add, 3).map(lambda kv: (kv[1], kv[0]))
    grouped = counts.groupByKey(2).mapValues(len)
    job = dag.submit_job(grouped, list, range(2), now=0.0)
    (second,) = job.stage.parents
    (first,) = second.parents
    assert (first.num_partitions, second.num_partitions) == (2, 3)
    assert first.parents == []
    assert list(dag.tasksets) == [first.id]  # Only the stage whose inputs exist runs.
    assert set(dag.waiting) == {second.id, job.stage.id}
    _run_map_stage(dag)
    assert list(dag.tasksets) == [second.id]
    _run_map_stage(dag)
    assert list(dag.tasksets) == [job.stage.id]
    for i, attempt in enumerate(dag.offer("A", "eA", 10, now=2.0)):
        dag.task_succeeded(attempt.task_id, [i], now=3.0)
    assert job.done
    assert job.error is None
    assert [job.results[p] for p in range(2)] == [[0], [1]]
    assert dag.tasksets == {}
    assert not dag.busy()


def test_a_later_job_reuses_the_shuffle_outputs() -> None:
    dag = DAGScheduler()
    counts = _pairs().reduceByKey(operator.add)
    dag.submit_job(counts, list, range(2), now=0.0)
    _run_map_stage(dag)
    for attempt in dag.offer("A", "eA", 10, now=1.0):
        dag.task_succeeded(attempt.task_id, [], now=1.0)
    job = dag.submit_job(counts.mapValues(str), list, range(2), now=2.0)
    assert list(dag.tasksets) == [job.stage.id]  # The map stage is skipped.


def test_a_failed_task_goes_to_another_agent_and_fails_the_job_after_max_attempts() -> None:
    dag = DAGScheduler(max_attempts=3)
    job = dag.submit_job(_parallelize(range(4), 1), list, [0], now=0.0)
    (attempt,) = dag.offer("A", "eA", 1, now=0.0, agents=2)
    dag.task_failed(attempt.task_id, BatchJobError("boom"), now=0.1, agents=2)
    assert dag.offer("A", "eA", 1, now=0.2, agents=2) == []  # Not where it failed...
    (again,) = dag.offer("B", "eB", 1, now=0.2, agents=2)  # ...but elsewhere.
    dag.task_failed(again.task_id, BatchJobError("boom"), now=0.3, agents=2)
    (third,) = dag.offer("A", "eA", 1, now=0.4, agents=2)  # Failed everywhere: anywhere.
    assert not job.done
    error = BatchJobError("boom at last")
    dag.task_failed(third.task_id, error, now=0.5, agents=2)
    assert job.error is error
    assert error.attempts == 3
    assert dag.tasksets == {}
    assert not dag.wants_offers()


def test_a_task_waits_for_its_cached_input_then_runs_anywhere() -> None:
    dag = DAGScheduler(locality_wait=0.5)
    rdd = _parallelize(range(4), 2)
    dag.cache[(rdd.id, 0)] = {"eB"}
    dag.executor_agents["eB"] = "B"
    dag.submit_job(rdd.map(str), list, range(2), now=0.0)
    (first,) = dag.offer("A", "eA", 2, now=0.1)
    assert first.partition == 1  # Partition 0 waits for B.
    assert dag.offer("A", "eA", 2, now=0.3) == []
    (local,) = dag.offer("B", "eB", 2, now=0.3)
    assert local.partition == 0

    dag2 = DAGScheduler(locality_wait=0.5)
    dag2.cache[(rdd.id, 0)] = {"eB"}
    dag2.executor_agents["eB"] = "B"
    dag2.submit_job(rdd.map(str), list, range(2), now=0.0)
    assert [a.partition for a in dag2.offer("A", "eA", 1, now=0.1)] == [1]
    assert [a.partition for a in dag2.offer("A", "eA", 1, now=0.7)] == [0]  # Waited enough.


def test_speculation_rule() -> None:
    durations = [1.0, 1.2, 0.8]
    running = {3: 0.0, 4: 2.5}
    assert speculatable(durations, running, total=4, now=1.4) == set()  # 1.4 < 1.5 x 1.0
    assert speculatable(durations, running, total=4, now=1.6) == {3}
    assert speculatable(durations, running, total=5, now=9.0) == set()  # 3/5 < 75 % done
    assert speculatable([0.01] * 3, {3: 0.0}, total=4, now=0.05) == set()  # Under the minimum.


def test_a_slow_task_gets_a_copy_elsewhere_and_the_first_result_wins() -> None:
    dag = DAGScheduler(speculation=True)
    job = dag.submit_job(_parallelize(range(8), 4), list, range(4), now=0.0)
    attempts = dag.offer("A", "eA", 4, now=0.0)
    for a in attempts[:3]:
        dag.task_succeeded(a.task_id, [a.partition], now=1.0)
    slow = attempts[3]
    dag.tick(now=1.2)
    assert dag.offer("B", "eB", 1, now=1.2) == []  # Not slow yet: 1.2 < 1.5 x 1.0.
    dag.tick(now=2.0)
    assert dag.offer("A", "eA", 1, now=2.0) == []  # Not on the agent running the original.
    (copy,) = dag.offer("B", "eB", 1, now=2.0)
    assert copy.speculative
    assert copy.partition == slow.partition
    assert dag.task_succeeded(copy.task_id, ["copy"], now=2.5)
    assert dag.kills == [slow]  # The other copy is killed...
    assert not dag.task_succeeded(slow.task_id, ["late"], now=3.0)  # ...and its result ignored.
    assert job.results[3] == ["copy"]
    assert dag.speculative_tasks == 1


def _after_map_stage_on_two_executors(dag: DAGScheduler) -> tuple[Any, list[TaskAttempt]]:
    counts = _pairs(4).reduceByKey(operator.add, 2)
    job = dag.submit_job(counts, list, range(2), now=0.0)
    (map_stage,) = job.stage.parents
    for attempt in dag.offer("A", "eA", 2, now=0.0):
        dag.task_succeeded(attempt.task_id, _output("eA", 2), now=0.5)
    for attempt in dag.offer("B", "eB", 2, now=0.0):
        dag.task_succeeded(attempt.task_id, _output("eB", 2), now=0.5)
    reducers = dag.offer("B", "eB", 2, now=1.0)
    assert [a.taskset.stage for a in reducers] == [job.stage, job.stage]
    return map_stage, reducers


def test_a_lost_executor_loses_its_map_outputs_which_run_again() -> None:
    dag = DAGScheduler()
    map_stage, _ = _after_map_stage_on_two_executors(dag)
    dag.executor_lost("eA", now=1.5)
    shuffle = map_stage.shuffle_dep.shuffle_id
    assert [o is not None for o in dag.outputs[shuffle]] == [False, False, True, True]
    assert list(dag.tasksets) == [map_stage.id]  # The reduce stage waits for them.
    assert dag.tasksets[map_stage.id].pending == [0, 1]
    rerun = dag.offer("B", "eB", 2, now=2.0)
    assert sorted(a.partition for a in rerun) == [0, 1]


def test_a_fetch_failure_resubmits_the_parent_stage_and_kills_the_reduce_tasks() -> None:
    dag = DAGScheduler()
    map_stage, reducers = _after_map_stage_on_two_executors(dag)
    dag.fetch_failed(reducers[0].task_id, map_stage.shuffle_dep.shuffle_id, "eA", now=1.5)
    assert dag.kills == [reducers[1]]
    assert list(dag.tasksets) == [map_stage.id]
    for attempt in dag.offer("B", "eB", 2, now=2.0):
        dag.task_succeeded(attempt.task_id, _output("eB", 2), now=2.5)
    (reduce_taskset,) = dag.tasksets.values()
    assert reduce_taskset.stage is reducers[0].taskset.stage
    assert sorted(reduce_taskset.pending) == [0, 1]


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="max_attempts must be at least 1, not 0"):
        DAGScheduler(max_attempts=0)
    dag = DAGScheduler()
    with pytest.raises(ValueError, match="partition 5 out of range"):
        dag.submit_job(_parallelize(range(3), 2), list, [5], now=0.0)
    assert dag.jobs == {}


def test_a_reduce_task_prefers_agents_holding_a_fifth_of_its_input() -> None:
    dag = DAGScheduler(locality_wait=0.5)
    counts = _pairs(5).reduceByKey(operator.add, 2)
    job = dag.submit_job(counts, list, range(2), now=0.0)
    (map_stage,) = job.stage.parents
    # Reduce partition 0's input: 9 parts on eB, 1 on eA; partition 1's: balanced.
    sizes = {"eA": (1, 5), "eB": (9, 5)}
    placed = [("A", "eA"), ("B", "eB"), ("B", "eB"), ("B", "eB"), ("A", "eA")]
    for agent, executor in placed:
        (attempt,) = dag.offer(agent, executor, 1, now=0.0)
        output = MapOutput(executor, f"{executor}:1", "t", sizes[executor])
        dag.task_succeeded(attempt.task_id, output, now=0.0)
    assert dag.tasksets[job.stage.id].preferred == {0: {"B"}, 1: {"A", "B"}}
    assert [a.partition for a in dag.offer("A", "eA", 2, now=1.0)] == [1]
    assert map_stage.id not in dag.tasksets
