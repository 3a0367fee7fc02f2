"""What the DAG scheduler keeps: stages, jobs, task sets and task attempts, and the
speculation rule (plain data and one pure function; :mod:`.dag` drives them)."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from examples.batch.errors import BatchJobError
from examples.batch.rdds import ShuffleDependency

__all__ = ["Job", "Stage", "TaskAttempt", "TaskSet", "speculatable"]


@dataclass(eq=False)
class Stage:
    """The tasks between shuffles: ``rdd``'s partitions, pipelined from the shuffles it reads."""

    id: int
    rdd: Any
    shuffle_dep: ShuffleDependency | None
    parents: list[Stage]
    reads: list[int]
    """Ids of the shuffles this stage's tasks fetch."""
    num_partitions: int
    fetch_failures: int = 0
    attempts: int = 0

    @property
    def is_map(self) -> bool:
        return self.shuffle_dep is not None


@dataclass(eq=False)
class Job:
    id: int
    stage: Stage
    func: Callable[[Any], Any]
    partitions: list[int]
    results: dict[int, Any] = field(default_factory=dict)
    error: BatchJobError | None = None
    started: float = 0.0
    finished: float | None = None

    @property
    def done(self) -> bool:
        return self.error is not None or len(self.results) == len(self.partitions)


@dataclass(eq=False)
class TaskAttempt:
    task_id: str
    taskset: TaskSet
    partition: int
    attempt: int
    """PySpark's attemptNumber: 0 for a partition's first attempt in its stage, then 1, 2..."""
    agent_id: str
    executor_id: str
    started: float
    speculative: bool = False
    done: bool = False


@dataclass(eq=False)
class TaskSet:
    """One attempt of one stage: its missing partitions and their task attempts."""

    stage: Stage
    job: Job | None
    """The job of a result stage (None for a map stage)."""
    partitions: list[int]
    preferred: dict[int, set[str]]
    """Agents holding a partition's cached input."""
    created: float
    pending: list[int] = field(default_factory=list)
    running: dict[int, list[TaskAttempt]] = field(default_factory=dict)
    succeeded: set[int] = field(default_factory=set)
    failures: dict[int, int] = field(default_factory=dict)
    lost: dict[int, int] = field(default_factory=dict)
    failed_agents: dict[int, set[str]] = field(default_factory=dict)
    durations: list[float] = field(default_factory=list)
    speculatable: set[int] = field(default_factory=set)
    last_launch: float = 0.0
    zombie: bool = False
    failed_tasks: int = 0
    speculated: int = 0
    launches: dict[int, int] = field(default_factory=dict)


def speculatable(
    durations: list[float],
    running: dict[int, float],
    total: int,
    now: float,
    *,
    quantile: float = 0.75,
    multiplier: float = 1.5,
    minimum: float = 0.1,
) -> set[int]:
    """Partitions whose only attempt (started at ``running[p]``) deserves a copy.

    Once ``quantile`` of the ``total`` tasks succeeded (``durations`` of those), a task running
    longer than ``multiplier`` x their median, and at least ``minimum`` seconds, is slow.
    """
    if total == 0 or len(durations) < quantile * total or not durations:
        return set()
    threshold = max(multiplier * statistics.median(durations), minimum)
    return {p for p, started in running.items() if now - started > threshold}
