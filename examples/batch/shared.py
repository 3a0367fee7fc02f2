"""Shared variables (Broadcast, Accumulator), StorageLevel, and the TaskContext of a running task.

A :class:`Broadcast` pickles to its id and the driver's address only: a worker fetches the value
once over HTTP from the driver's small server and keeps it for the following tasks, instead of
the value travelling inside every task through the master. An :class:`Accumulator` pickles to
its id and zero: the copy a task uses starts from zero, and what it added goes back with the
task's result; the driver adds it in once per successful partition (first attempt that wins).
"""

from __future__ import annotations

import copy
import pickle
import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

__all__ = [
    "Accumulator",
    "AccumulatorParam",
    "Broadcast",
    "StorageLevel",
    "TaskContext",
    "current_task",
]

T = TypeVar("T")


class StorageLevel:
    """PySpark's StorageLevel names. Every level keeps partitions in the executor's block store
    (a directory of its sandbox, read back through the page cache), so they behave alike."""

    MEMORY_ONLY: StorageLevel
    MEMORY_AND_DISK: StorageLevel
    DISK_ONLY: StorageLevel
    MEMORY_ONLY_2: StorageLevel
    MEMORY_AND_DISK_2: StorageLevel
    DISK_ONLY_2: StorageLevel
    OFF_HEAP: StorageLevel

    def __init__(
        self,
        useDisk: bool,
        useMemory: bool,
        useOffHeap: bool,
        deserialized: bool,
        replication: int = 1,
    ) -> None:
        self.useDisk, self.useMemory, self.useOffHeap = useDisk, useMemory, useOffHeap
        self.deserialized, self.replication = deserialized, replication

    def _key(self) -> tuple[bool, bool, bool, bool, int]:
        return (self.useDisk, self.useMemory, self.useOffHeap, self.deserialized, self.replication)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StorageLevel) and other._key() == self._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return "StorageLevel({}, {}, {}, {}, {})".format(*self._key())


StorageLevel.MEMORY_ONLY = StorageLevel(False, True, False, False)
StorageLevel.MEMORY_AND_DISK = StorageLevel(True, True, False, False)
StorageLevel.DISK_ONLY = StorageLevel(True, False, False, False)
StorageLevel.MEMORY_ONLY_2 = StorageLevel(False, True, False, False, 2)
StorageLevel.MEMORY_AND_DISK_2 = StorageLevel(True, True, False, False, 2)
StorageLevel.DISK_ONLY_2 = StorageLevel(True, False, False, False, 2)
StorageLevel.OFF_HEAP = StorageLevel(True, True, True, False)


@dataclass
class TaskContext:
    """What a task sees of its executor while it runs in a worker (worker side only)."""

    stage_id: int
    partition_index: int
    attempt: int
    executor_id: str
    block_dir: str
    driver_url: str
    shuffle_locations: dict[int, list[Any]] = field(default_factory=dict)
    accumulators: dict[int, Accumulator[Any]] = field(default_factory=dict)
    cached_blocks: list[tuple[int, int]] = field(default_factory=list)
    shuffle_read_bytes: int = 0
    records_read: int = 0

    def partitionId(self) -> int:
        """PySpark's name for the partition this task computes."""
        return self.partition_index

    def stageId(self) -> int:
        return self.stage_id

    def attemptNumber(self) -> int:
        return self.attempt


_local = threading.local()


def current_task() -> TaskContext | None:
    """The task running in this worker process, or None in the driver."""
    return getattr(_local, "task", None)


def set_current_task(task: TaskContext | None) -> None:
    _local.task = task


# -- broadcast ------------------------------------------------------------------------------

_broadcast_cache: dict[tuple[str, int], Any] = {}


class Broadcast(Generic[T]):
    """A read-only value shipped once to each worker (``sc.broadcast(value)``)."""

    def __init__(
        self,
        bid: int,
        value: T | None,
        driver_url: str,
        on_driver: bool,
        release: Callable[[int], None] | None = None,
    ) -> None:
        self._release = release
        self.bid = bid
        self._value = value
        self._driver_url = driver_url
        self._on_driver = on_driver
        self._destroyed = False

    @property
    def value(self) -> T:
        """The value: in the driver as given; in a worker fetched from the driver once."""
        if self._destroyed:
            raise RuntimeError(f"broadcast {self.bid} was destroyed")
        if self._on_driver:
            return self._value  # type: ignore[return-value]
        key = (self._driver_url, self.bid)
        if key not in _broadcast_cache:
            url = f"{self._driver_url}/broadcast/{self.bid}"
            with urllib.request.urlopen(url, timeout=60) as response:
                _broadcast_cache[key] = pickle.loads(response.read())
        return _broadcast_cache[key]  # type: ignore[no-any-return]

    def unpersist(self, blocking: bool = False) -> None:
        """Workers drop their copy at the next fetch; the driver keeps it (PySpark's meaning)."""

    def destroy(self, blocking: bool = False) -> None:
        """Forget the value everywhere; using it afterwards raises."""
        self._destroyed = True
        self._value = None
        if self._release is not None:
            self._release(self.bid)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_worker_broadcast, (self.bid, self._driver_url))

    def __repr__(self) -> str:
        return f"Broadcast({self.bid})"


def _worker_broadcast(bid: int, driver_url: str) -> Broadcast[Any]:
    return Broadcast(bid, None, driver_url, on_driver=False)


# -- accumulators ---------------------------------------------------------------------------


class AccumulatorParam(Generic[T]):
    """How an accumulator's values start and add up (PySpark's AccumulatorParam)."""

    def zero(self, value: T) -> T:
        raise NotImplementedError

    def addInPlace(self, value1: T, value2: T) -> T:
        raise NotImplementedError


class AddingAccumulatorParam(AccumulatorParam[Any]):
    """Numbers: zero is ``type(value)()`` (0, 0.0, 0j); adding is ``+``."""

    def __init__(self, zero_value: Any) -> None:
        self.zero_value = zero_value

    def zero(self, value: Any) -> Any:
        return self.zero_value

    def addInPlace(self, value1: Any, value2: Any) -> Any:
        value1 += value2
        return value1


class Accumulator(Generic[T]):
    """A shared variable tasks add to; only the driver reads it (``sc.accumulator(0)``)."""

    def __init__(self, aid: int, value: T, accum_param: AccumulatorParam[T], on_driver: bool):
        self.aid = aid
        self._value = value
        self.accum_param = accum_param
        self._on_driver = on_driver
        self._lock = threading.Lock()
        self._zero: Any = None

    @property
    def value(self) -> T:
        """The accumulated value (driver only, as in PySpark)."""
        if not self._on_driver:
            raise RuntimeError("Accumulator.value cannot be accessed inside tasks")
        return self._value

    @value.setter
    def value(self, value: T) -> None:
        if not self._on_driver:
            raise RuntimeError("Accumulator.value cannot be accessed inside tasks")
        self._value = value

    def add(self, term: T) -> None:
        """Add ``term`` (in a task: to this task's copy, sent back with its result)."""
        with self._lock:
            self._value = self.accum_param.addInPlace(self._value, term)

    def __iadd__(self, term: T) -> Accumulator[T]:
        self.add(term)
        return self

    def reset(self) -> None:
        """Worker side: back to zero for the next task using this copy."""
        self._value = copy.deepcopy(self._zero)

    def merge(self, term: T) -> None:
        """Driver side: add what a task accumulated."""
        self.add(term)

    def __reduce__(self) -> tuple[Any, ...]:
        zero = self.accum_param.zero(self._value)
        return (_worker_accumulator, (self.aid, zero, self.accum_param))

    def __repr__(self) -> str:
        return f"Accumulator<id={self.aid}, value={self._value!r}>"


def _worker_accumulator(aid: int, zero: Any, param: AccumulatorParam[Any]) -> Accumulator[Any]:
    task = current_task()
    if task is not None and aid in task.accumulators:
        return task.accumulators[aid]
    accumulator = Accumulator(aid, copy.deepcopy(zero), param, on_driver=False)
    accumulator._zero = zero
    if task is not None:
        task.accumulators[aid] = accumulator
    return accumulator


def accumulator_updates(task: TaskContext) -> dict[int, Any]:
    """What a finished task's accumulators hold (sent back with its result)."""
    return {aid: acc._value for aid, acc in task.accumulators.items()}
