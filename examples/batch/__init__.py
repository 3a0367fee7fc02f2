"""examples.batch: PySpark's RDD API as a framework on Emporion (issue 12).

::

    from examples.batch import BatchContext

    with BatchContext("127.0.0.1:5050", app_name="wordcount") as sc:
        counts = (sc.textFile("/data/books/*.txt")
                    .flatMap(str.split)
                    .map(lambda w: (w, 1))
                    .reduceByKey(lambda a, b: a + b))
        print(counts.takeOrdered(10, key=lambda kv: -kv[1]))

Public names: :class:`BatchContext` (SparkContext), :class:`RDD`, :class:`Broadcast`,
:class:`Accumulator`, :class:`AccumulatorParam`, :class:`StorageLevel`, :class:`BatchJobError`
(a job failed: ``exc_type``, ``exc_message``, ``remote_traceback`` of the user's exception;
``__cause__`` is the exception itself when it unpickles), :class:`TaskContext` and
:func:`current_task` (inside a task), :class:`ResultIterable` (grouped values: a list),
:func:`portable_hash`, :class:`HashPartitioner`.

How it runs (docs/batch.md has the whole story): the driver (:mod:`.context`,
:mod:`.scheduler`, :mod:`.dag`) cuts jobs into stages at shuffles and launches one Mesos task
per partition on a long-lived executor per agent (:mod:`.executor`), which runs it in a worker
process (:mod:`.worker`). Map tasks write hash-partitioned, compressed shuffle files
(:mod:`.shuffle`) that reduce tasks fetch from the executor that wrote them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from examples.batch.context import BatchContext
    from examples.batch.errors import BatchJobError
    from examples.batch.pairs import ResultIterable
    from examples.batch.partitioner import HashPartitioner, portable_hash
    from examples.batch.rdd import RDD
    from examples.batch.shared import (
        Accumulator,
        AccumulatorParam,
        Broadcast,
        StorageLevel,
        TaskContext,
        current_task,
    )

_WHERE = {
    "BatchContext": "context",
    "BatchJobError": "errors",
    "ResultIterable": "pairs",
    "HashPartitioner": "partitioner",
    "portable_hash": "partitioner",
    "RDD": "rdd",
    "Accumulator": "shared",
    "AccumulatorParam": "shared",
    "Broadcast": "shared",
    "StorageLevel": "shared",
    "TaskContext": "shared",
    "current_task": "shared",
}


def __getattr__(name: str) -> Any:
    """Import on first use: worker processes import this package and must start fast, without
    the driver's modules (gRPC, rich) that the public names pull in."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'examples.batch' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"examples.batch.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "RDD",
    "Accumulator",
    "AccumulatorParam",
    "BatchContext",
    "BatchJobError",
    "Broadcast",
    "HashPartitioner",
    "ResultIterable",
    "StorageLevel",
    "TaskContext",
    "current_task",
    "portable_hash",
]
