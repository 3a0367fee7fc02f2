"""The DAG scheduler: jobs cut into stages at shuffles, stages into tasks, tasks onto offers.

Sans-I/O: the Mesos glue (:mod:`.scheduler`) feeds it offers, task outcomes and lost
executors, with ``now``; it answers with task attempts to launch and attempts to kill
(``self.kills``), and keeps the jobs' results. Nothing here sends anything.

A job's final RDD gives a *result stage*; walking its lineage through narrow dependencies finds
the shuffle dependencies, each a *shuffle-map stage* (shared by every job that needs that
shuffle, so outputs computed once serve later jobs, as Spark's skipped stages). A stage runs
once its parents' outputs are all present, as a :class:`TaskSet` of the partitions still
missing. Placement follows Spark's delay scheduling: a task whose input is cached on an
executor (a reduce task: 20 % or more of its shuffle input) waits up to ``locality_wait`` for
an offer of that executor's agent, then goes anywhere. A failed task is retried on another
agent when there is one; ``max_attempts`` failures fail the job. A lost executor takes its map
outputs and cached blocks with it: stages needing them go back to waiting and the missing map
tasks run again (a reduce task's fetch failure does the same). Speculation: once
``speculation_quantile`` of a stage's tasks succeeded, a task running longer than
``speculation_multiplier`` x their median duration gets a second attempt on another agent; the
first to succeed wins, the other is killed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Any

from examples.batch.errors import BatchJobError
from examples.batch.rdds import (
    CoalescedPartition,
    MapPartitionsRDD,
    Partition,
    ShuffleDependency,
    ShuffledRDD,
    UnionPartition,
    UnionRDD,
)
from examples.batch.shuffle import MapOutput
from examples.batch.stages import Job, Stage, TaskAttempt, TaskSet, speculatable

REDUCE_LOCALITY_FRACTION = 0.2
"""A reduce task prefers the agents holding at least this share of its shuffle input."""

__all__ = ["DAGScheduler", "Job", "Stage", "TaskAttempt", "TaskSet", "speculatable"]


class DAGScheduler:
    """Jobs, stages, task sets and shuffle outputs of one context (see the module docstring)."""

    def __init__(
        self,
        max_attempts: int = 4,
        *,
        speculation: bool = True,
        locality_wait: float = 0.5,
        speculation_multiplier: float = 1.5,
        speculation_quantile: float = 0.75,
        speculation_minimum: float = 0.1,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {max_attempts}")
        if locality_wait < 0:
            raise ValueError(f"locality_wait must be >= 0, not {locality_wait}")
        self.max_attempts = max_attempts
        self.speculation = speculation
        self.locality_wait = locality_wait
        self.speculation_multiplier = speculation_multiplier
        self.speculation_quantile = speculation_quantile
        self.speculation_minimum = speculation_minimum
        self.jobs: dict[int, Job] = {}
        self.stages: dict[int, Stage] = {}
        self.shuffle_stages: dict[int, Stage] = {}
        self.outputs: dict[int, list[MapOutput | None]] = {}
        self.tasksets: dict[int, TaskSet] = {}  # stage id -> active task set
        self.waiting: dict[int, Stage] = {}
        self.waiting_jobs: dict[int, Job] = {}  # result stage id -> its job, while waiting
        self.attempts: dict[str, TaskAttempt] = {}
        self.cache: dict[tuple[int, int], set[str]] = {}  # (rdd, partition) -> executor ids
        self.executor_agents: dict[str, str] = {}
        self.kills: list[TaskAttempt] = []
        self._ids = itertools.count()
        self._task_serial = itertools.count()
        self.finished_tasks = 0
        self.failed_tasks = 0
        self.speculative_tasks = 0

    # -- building stages ----------------------------------------------------------------------

    def _shuffle_stage(self, dep: ShuffleDependency, now: float) -> Stage:
        stage = self.shuffle_stages.get(dep.shuffle_id)
        if stage is None:
            assert dep.rdd is not None
            parents, reads = self._parents(dep.rdd, now)
            stage = Stage(next(self._ids), dep.rdd, dep, parents, reads, dep.rdd.getNumPartitions())
            self.stages[stage.id] = stage
            self.shuffle_stages[dep.shuffle_id] = stage
            self.outputs[dep.shuffle_id] = [None] * stage.num_partitions
        return stage

    def _parents(self, rdd: Any, now: float) -> tuple[list[Stage], list[int]]:
        """The shuffle-map stages ``rdd`` reads, through its narrow dependencies."""
        parents: list[Stage] = []
        reads: list[int] = []
        seen: set[int] = set()
        stack = [rdd]
        while stack:
            current = stack.pop()
            if current.id in seen:
                continue
            seen.add(current.id)
            for dep in current.dependencies():
                if isinstance(dep, ShuffleDependency):
                    if dep.shuffle_id not in reads:
                        reads.append(dep.shuffle_id)
                        parents.append(self._shuffle_stage(dep, now))
                else:
                    stack.append(dep.rdd)
        return parents, reads

    def available(self, stage: Stage) -> bool:
        """Whether every map output of a shuffle-map stage is present."""
        assert stage.shuffle_dep is not None
        return all(o is not None for o in self.outputs[stage.shuffle_dep.shuffle_id])

    # -- jobs ---------------------------------------------------------------------------------

    def submit_job(
        self, rdd: Any, func: Callable[[Any], Any], partitions: Iterable[int], now: float
    ) -> Job:
        """A new job computing ``func(iterator)`` on each of ``partitions`` of ``rdd``."""
        parts = list(partitions)
        count = rdd.getNumPartitions()
        for p in parts:
            if not 0 <= p < count:
                raise ValueError(f"partition {p} out of range: {rdd!r} has {count} partitions")
        parents, reads = self._parents(rdd, now)
        stage = Stage(next(self._ids), rdd, None, parents, reads, count)
        self.stages[stage.id] = stage
        job = Job(stage.id, stage, func, parts, started=now)
        self.jobs[job.id] = job
        if not parts:
            job.finished = now
            return job
        self.waiting_jobs[stage.id] = job
        self._submit(stage, now)
        return job

    def _submit(self, stage: Stage, now: float) -> None:
        if stage.id in self.tasksets or stage.id in self.waiting:
            return
        missing = [p for p in stage.parents if not self.available(p)]
        if missing:
            self.waiting[stage.id] = stage
            for parent in missing:
                self._submit(parent, now)
        else:
            self._start(stage, now)

    def _start(self, stage: Stage, now: float) -> None:
        """A task set for the stage's missing partitions (or completion if none are)."""
        job = self.waiting_jobs.get(stage.id)
        if stage.is_map:
            assert stage.shuffle_dep is not None
            outputs = self.outputs[stage.shuffle_dep.shuffle_id]
            partitions = [p for p, o in enumerate(outputs) if o is None]
        else:
            if job is None or job.done:
                return
            partitions = [p for p in job.partitions if p not in job.results]
        if not partitions:
            self._stage_done(stage, now)
            return
        stage.attempts += 1
        parts = stage.rdd.partitions()
        preferred = {p: self._preferred(stage.rdd, parts[p]) for p in partitions}
        taskset = TaskSet(stage, job, partitions, preferred, now, pending=list(partitions))
        taskset.last_launch = now
        self.tasksets[stage.id] = taskset

    def _preferred(self, rdd: Any, split: Partition) -> set[str]:
        """Agents of executors holding this partition of a persisted RDD in the lineage."""
        found = self.cache.get((rdd.id, split.index))
        if found:
            return {self.executor_agents[e] for e in found if e in self.executor_agents}
        source = rdd.source
        if isinstance(source, MapPartitionsRDD):
            return self._preferred(source.prev, split)
        if isinstance(source, UnionRDD) and isinstance(split, UnionPartition):
            assert split.split is not None
            return self._preferred(source.rdds[split.parent], split.split)
        if isinstance(split, CoalescedPartition):
            agents: set[str] = set()
            for s in split.splits:
                agents |= self._preferred(source.prev, s)
            return agents
        if isinstance(source, ShuffledRDD):
            return self._reduce_preferred(source.dep.shuffle_id, split.index)
        return set()

    def _reduce_preferred(self, shuffle_id: int, reduce_id: int) -> set[str]:
        """Agents holding at least :data:`REDUCE_LOCALITY_FRACTION` of a reduce task's input
        (Spark's rule; with few maps only: each map output is counted)."""
        outputs = self.outputs.get(shuffle_id, [])
        if not outputs or len(outputs) > 1000:
            return set()
        by_executor: dict[str, int] = {}
        for output in outputs:
            if output is not None:
                size = output.sizes[reduce_id]
                by_executor[output.executor_id] = by_executor.get(output.executor_id, 0) + size
        total = sum(by_executor.values())
        if total == 0:
            return set()
        return {
            self.executor_agents[e]
            for e, size in by_executor.items()
            if size >= REDUCE_LOCALITY_FRACTION * total and e in self.executor_agents
        }

    def _stage_done(self, stage: Stage, now: float) -> None:
        self.tasksets.pop(stage.id, None)
        for waiting in list(self.waiting.values()):
            if all(self.available(p) for p in waiting.parents):
                del self.waiting[waiting.id]
                self._start(waiting, now)
            elif stage in waiting.parents:
                for parent in waiting.parents:
                    if not self.available(parent):
                        self._submit(parent, now)

    def _fail_job(self, job: Job, error: BatchJobError, now: float) -> None:
        if job.done:
            return
        job.error = error
        job.finished = now
        self._cancel_unneeded(now)

    def _cancel_unneeded(self, now: float) -> None:
        """Drop task sets and waiting stages no unfinished job needs; kill their tasks."""
        needed: set[int] = set()
        for job in self.jobs.values():
            if not job.done:
                stack = [job.stage]
                while stack:
                    s = stack.pop()
                    if s.id not in needed:
                        needed.add(s.id)
                        stack.extend(s.parents)
        for stage_id in list(self.tasksets):
            if stage_id not in needed:
                taskset = self.tasksets.pop(stage_id)
                for attempts in taskset.running.values():
                    self.kills.extend(a for a in attempts if not a.done)
        for stage_id in list(self.waiting):
            if stage_id not in needed:
                del self.waiting[stage_id]
        for stage_id in list(self.waiting_jobs):
            if self.waiting_jobs[stage_id].done:
                del self.waiting_jobs[stage_id]

    # -- offers -------------------------------------------------------------------------------

    def wants_offers(self) -> bool:
        """Whether a task is waiting for a slot (pending or speculatable)."""
        return any(
            (ts.pending or ts.speculatable) and not ts.zombie for ts in self.tasksets.values()
        )

    def busy(self) -> bool:
        """Whether any job is unfinished."""
        return any(not job.done for job in self.jobs.values())

    def offer(
        self, agent_id: str, executor_id: str, slots: int, now: float, agents: int = 1
    ) -> list[TaskAttempt]:
        """Up to ``slots`` task attempts for the executor ``executor_id`` on ``agent_id``.

        ``agents``: how many agents the framework knows, so a task that failed on this one
        goes elsewhere when there is an elsewhere.
        """
        chosen: list[TaskAttempt] = []
        for taskset in sorted(self.tasksets.values(), key=_taskset_order):
            if taskset.zombie:
                continue
            while len(chosen) < slots:
                p = self._pick(taskset, agent_id, now, agents)
                speculative = False
                if p is None:
                    p = self._pick_speculative(taskset, agent_id)
                    speculative = p is not None
                if p is None:
                    break
                chosen.append(
                    self._launch(taskset, p, agent_id, executor_id, now, speculative=speculative)
                )
            if len(chosen) >= slots:
                break
        return chosen

    def _pick(self, taskset: TaskSet, agent_id: str, now: float, agents: int) -> int | None:
        if not taskset.pending:
            return None
        may_wait = now - taskset.last_launch < self.locality_wait
        fallback: int | None = None
        for i, p in enumerate(taskset.pending):
            failed = taskset.failed_agents.get(p, set())
            if agent_id in failed and len(failed) < agents:
                continue
            preferred = taskset.preferred.get(p)
            if preferred and agent_id in preferred:
                del taskset.pending[i]
                return p
            if fallback is None and (not preferred or not may_wait or not self._alive(preferred)):
                fallback = i
        if fallback is None:
            return None
        return taskset.pending.pop(fallback)

    def _alive(self, agents: set[str]) -> bool:
        return bool(agents & set(self.executor_agents.values()))

    def _pick_speculative(self, taskset: TaskSet, agent_id: str) -> int | None:
        for p in sorted(taskset.speculatable):
            running = taskset.running.get(p, [])
            if p in taskset.succeeded or len(running) != 1 or running[0].agent_id == agent_id:
                continue
            taskset.speculatable.discard(p)
            return p
        return None

    def _launch(
        self,
        taskset: TaskSet,
        p: int,
        agent_id: str,
        executor_id: str,
        now: float,
        *,
        speculative: bool,
    ) -> TaskAttempt:
        serial = next(self._task_serial)
        task_id = f"s{taskset.stage.id}-p{p}-{serial}"
        number = taskset.launches.get(p, 0)
        taskset.launches[p] = number + 1
        attempt = TaskAttempt(
            task_id, taskset, p, number, agent_id, executor_id, now, speculative=speculative
        )
        taskset.running.setdefault(p, []).append(attempt)
        taskset.last_launch = now
        if speculative:
            taskset.speculated += 1
            self.speculative_tasks += 1
        self.attempts[task_id] = attempt
        self.executor_agents.setdefault(executor_id, agent_id)
        return attempt

    def launch_failed(self, task_id: str, now: float) -> None:
        """The glue could not launch an attempt it was given: back to pending."""
        self.task_lost(task_id, now)

    # -- outcomes -----------------------------------------------------------------------------

    def _finish_attempt(self, task_id: str) -> TaskAttempt | None:
        attempt = self.attempts.pop(task_id, None)
        if attempt is None or attempt.done:
            return None
        attempt.done = True
        running = attempt.taskset.running.get(attempt.partition, [])
        if attempt in running:
            running.remove(attempt)
        if not running:
            attempt.taskset.running.pop(attempt.partition, None)
        return attempt

    def task_succeeded(
        self, task_id: str, value: Any, now: float, cached: Iterable[tuple[int, int]] = ()
    ) -> bool:
        """A task attempt's result (a map task's: its :class:`MapOutput`). True when it is the
        partition's first success (the caller then applies its accumulator updates)."""
        attempt = self._finish_attempt(task_id)
        if attempt is None:
            return False
        for key in cached:
            self.cache.setdefault(key, set()).add(attempt.executor_id)
        taskset, p = attempt.taskset, attempt.partition
        stage = taskset.stage
        if p in taskset.succeeded:
            return False
        self.finished_tasks += 1
        taskset.durations.append(now - attempt.started)
        taskset.succeeded.add(p)
        taskset.speculatable.discard(p)
        for other in taskset.running.pop(p, []):  # The losing copies of a speculated task.
            self.attempts.pop(other.task_id, None)
            other.done = True
            self.kills.append(other)
        if stage.is_map:
            assert stage.shuffle_dep is not None
            if attempt.executor_id in self.executor_agents:
                self.outputs[stage.shuffle_dep.shuffle_id][p] = value
            else:  # Its executor was lost since: the output is gone with it.
                taskset.succeeded.discard(p)
                taskset.pending.append(p)
                return True
            if (self.available(stage) and self.tasksets.get(stage.id) is taskset) or (
                taskset.zombie and self.available(stage)
            ):
                self._stage_done(stage, now)
        else:
            job = taskset.job
            assert job is not None
            if p not in job.results and not job.done:
                job.results[p] = value
                if len(job.results) == len(job.partitions):
                    job.finished = now
                    self.tasksets.pop(stage.id, None)
                    self.waiting_jobs.pop(stage.id, None)
        return True

    def task_failed(self, task_id: str, error: BatchJobError, now: float, agents: int = 1) -> None:
        """The task raised: retry it (elsewhere if possible) or fail its jobs."""
        attempt = self._finish_attempt(task_id)
        if attempt is None:
            return
        taskset, p = attempt.taskset, attempt.partition
        self.failed_tasks += 1
        taskset.failed_tasks += 1
        if p in taskset.succeeded:
            return
        taskset.failures[p] = taskset.failures.get(p, 0) + 1
        taskset.failed_agents.setdefault(p, set()).add(attempt.agent_id)
        if taskset.failures[p] >= self.max_attempts:
            error.attempts = taskset.failures[p]
            for job in self._jobs_needing(taskset.stage):
                self._fail_job(job, error, now)
            return
        if p not in taskset.running and p not in taskset.pending and not taskset.zombie:
            taskset.pending.append(p)

    def task_lost(self, task_id: str, now: float, reason: str = "") -> None:
        """The attempt died with its executor, was killed, or never started: run it again
        (not counted as a failure of the task, as in Spark, up to a generous bound)."""
        attempt = self._finish_attempt(task_id)
        if attempt is None:
            return
        taskset, p = attempt.taskset, attempt.partition
        if p in taskset.succeeded or taskset.zombie:
            return
        taskset.lost[p] = taskset.lost.get(p, 0) + 1
        if taskset.lost[p] > 4 * self.max_attempts:
            error = BatchJobError(
                f"task {p} of stage {taskset.stage.id} was lost {taskset.lost[p]} times"
                f" (its executors keep dying); the last time: {reason or 'no reason given'}"
            )
            for job in self._jobs_needing(taskset.stage):
                self._fail_job(job, error, now)
            return
        if p not in taskset.running and p not in taskset.pending:
            taskset.pending.append(p)

    def fetch_failed(self, task_id: str, shuffle_id: int, executor_id: str, now: float) -> None:
        """A reduce task could not fetch from ``executor_id``: its outputs are gone; the stage
        waits while the parent's missing map tasks run again."""
        attempt = self._finish_attempt(task_id)
        self.executor_lost(executor_id, now)
        if attempt is None:
            return
        stage = attempt.taskset.stage
        stage.fetch_failures += 1
        if stage.fetch_failures > 4 * self.max_attempts:
            error = BatchJobError(
                f"stage {stage.id} failed to fetch shuffle {shuffle_id} too many times"
            )
            for job in self._jobs_needing(stage):
                self._fail_job(job, error, now)
            return
        self._resubmit(stage, now)

    def _resubmit(self, stage: Stage, now: float) -> None:
        taskset = self.tasksets.pop(stage.id, None)
        if taskset is not None:
            taskset.zombie = True
            for attempts in taskset.running.values():
                for a in attempts:
                    self.attempts.pop(a.task_id, None)
                    a.done = True
                    self.kills.append(a)
            taskset.running.clear()
        self._submit(stage, now)

    def executor_lost(self, executor_id: str, now: float) -> None:
        """Forget what the executor held; rerun what needed it."""
        if executor_id not in self.executor_agents:
            return
        del self.executor_agents[executor_id]
        for key in list(self.cache):
            self.cache[key].discard(executor_id)
            if not self.cache[key]:
                del self.cache[key]
        for outputs in self.outputs.values():
            for i, o in enumerate(outputs):
                if o is not None and o.executor_id == executor_id:
                    outputs[i] = None
        for attempt in [a for a in self.attempts.values() if a.executor_id == executor_id]:
            self.task_lost(attempt.task_id, now)
        for taskset in list(self.tasksets.values()):
            stage = taskset.stage
            if stage.is_map:
                assert stage.shuffle_dep is not None
                outputs = self.outputs[stage.shuffle_dep.shuffle_id]
                for p in list(taskset.succeeded):
                    if outputs[p] is None:
                        taskset.succeeded.discard(p)
                        if p not in taskset.pending and p not in taskset.running:
                            taskset.pending.append(p)
            if any(not self.available(parent) for parent in stage.parents):
                self._resubmit(stage, now)

    def _jobs_needing(self, stage: Stage) -> list[Job]:
        found = []
        for job in self.jobs.values():
            if job.done:
                continue
            stack = [job.stage]
            while stack:
                s = stack.pop()
                if s is stage:
                    found.append(job)
                    break
                stack.extend(s.parents)
        return found

    # -- time ---------------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Mark slow tasks speculatable (when speculation is on)."""
        if not self.speculation:
            return
        for taskset in self.tasksets.values():
            if taskset.zombie:
                continue
            total = len(taskset.partitions)
            running = {
                p: attempts[0].started
                for p, attempts in taskset.running.items()
                if len(attempts) == 1 and p not in taskset.succeeded
            }
            taskset.speculatable |= speculatable(
                taskset.durations,
                running,
                total,
                now,
                quantile=self.speculation_quantile,
                multiplier=self.speculation_multiplier,
                minimum=self.speculation_minimum,
            )

    def unpersist(self, rdd_id: int) -> None:
        for key in [k for k in self.cache if k[0] == rdd_id]:
            del self.cache[key]


def _taskset_order(taskset: TaskSet) -> tuple[int, int]:
    return (taskset.job.id if taskset.job is not None else -1, taskset.stage.id)
