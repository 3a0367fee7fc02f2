"""A worker process of a batch executor: runs one task at a time, as its executor asks.

Started by :mod:`.executor` as ``python -m examples.batch.worker IN_FD OUT_FD EXECUTOR_ID
BLOCK_DIR`` with ``PYTHONHASHSEED=0`` (so string hashes, hence hash partitions, agree across
workers). It reads framed requests on ``IN_FD`` and writes framed answers on ``OUT_FD``; its
stdout and stderr stay free for the user's prints (they land in the executor's sandbox). A
frame is a 4-byte big-endian length and a body: the request is the task's payload (its
TaskInfo's data), the answer :func:`run_task`'s bytes. Imports are kept few: start-up is on
the critical path.
"""

from __future__ import annotations

import gc
import os
import pickle
import struct
import sys
import time
import traceback
from collections import OrderedDict
from typing import Any, BinaryIO

import cloudpickle  # type: ignore[import-untyped]

from examples.batch.errors import FetchFailedError
from examples.batch.shared import TaskContext, accumulator_updates, set_current_task
from examples.batch.shuffle import write_map_output

_LEN = struct.Struct(">I")
_stage_cache: OrderedDict[tuple[str, int], Any] = OrderedDict()


def read_frame(stream: BinaryIO) -> bytes | None:
    """One frame's body, or None at end of stream."""
    header = stream.read(4)
    if len(header) < 4:
        return None
    (length,) = _LEN.unpack(header)
    body = stream.read(length)
    if len(body) < length:
        return None
    return body


def write_frame(stream: BinaryIO, body: bytes) -> None:
    stream.write(_LEN.pack(len(body)))
    stream.write(body)
    stream.flush()


def _dumps(value: Any) -> bytes:
    try:
        return pickle.dumps(value, 5)
    except (pickle.PicklingError, TypeError, AttributeError):
        return cloudpickle.dumps(value, 5)  # type: ignore[no-any-return]


def _stage(payload: dict[str, Any], task: TaskContext) -> Any:
    """The stage's (rdd, dependency or function), unpickled once per stage per worker.

    The accumulators in its closures were registered with the task that unpickled them; a
    later task of the stage gets them back at zero, registered with itself.
    """
    key = (payload["app"], payload["stage_key"])
    found = _stage_cache.get(key)
    if found is None:
        stage = cloudpickle.loads(payload["stage_bytes"])
        found = (stage, dict(task.accumulators))
        _stage_cache[key] = found
        while len(_stage_cache) > 16:
            _stage_cache.popitem(last=False)
    else:
        for aid, accumulator in found[1].items():
            accumulator.reset()
            task.accumulators[aid] = accumulator
    return found[0]


def run_task(task_id: str, payload: dict[str, Any], executor_id: str, block_dir: str) -> bytes:
    """Run one task. The answer is one byte and a pickle: ``O`` and ``(value, accumulators,
    cached blocks, metrics)``; ``E`` and ``(type, message, traceback, pickled exception or
    None)`` for the user's exception; ``F`` and ``(shuffle, map, executor, message)`` when a
    shuffle block could not be fetched."""
    started = time.perf_counter()
    task = TaskContext(
        stage_id=payload["stage"],
        partition_index=payload["index"],
        attempt=payload["attempt"],
        executor_id=executor_id,
        block_dir=block_dir,
        driver_url=payload["driver_url"],
        shuffle_locations=payload["shuffles"],
    )
    set_current_task(task)
    try:
        rdd, extra = _stage(payload, task)
        split = pickle.loads(payload["split"])
        records = rdd.iterator(split, task)
        if payload["kind"] == "map":
            dep = extra
            aggregator = dep.aggregator if dep.map_side_combine else None
            value: Any = write_map_output(
                records,
                partitioner=dep.partitioner,
                aggregator=aggregator,
                block_dir=block_dir,
                shuffle_id=dep.shuffle_id,
                map_index=payload["index"],
                tag=task_id,
            )
        else:
            value = extra(records)
        metrics = {
            "seconds": time.perf_counter() - started,
            "shuffle_read_bytes": task.shuffle_read_bytes,
            "shuffle_write_bytes": sum(value) if payload["kind"] == "map" else 0,
        }
        return b"O" + _dumps((value, accumulator_updates(task), task.cached_blocks, metrics))
    except FetchFailedError as error:
        return b"F" + pickle.dumps(
            (error.shuffle_id, error.map_index, error.executor_id, str(error))
        )
    except BaseException as error:  # The user's exception, whatever it is, goes back.
        text = traceback.format_exc()
        try:
            pickled: bytes | None = cloudpickle.dumps(error)
            pickle.loads(pickled)  # type: ignore[arg-type]
        except Exception:
            pickled = None
        return b"E" + pickle.dumps((type(error).__name__, str(error), text, pickled))
    finally:
        set_current_task(None)


def main(argv: list[str]) -> int:
    """Serve tasks until the executor closes our input."""
    in_fd, out_fd, executor_id, block_dir = int(argv[0]), int(argv[1]), argv[2], argv[3]
    requests = os.fdopen(in_fd, "rb")
    answers = os.fdopen(out_fd, "wb")
    gc.freeze()  # What is imported stays: collections need not scan it again.
    while True:
        body = read_frame(requests)
        if body is None:
            return 0
        payload = pickle.loads(body)
        # A task makes millions of containers that live until it ends (dicts of combiners,
        # lists of records): the collector's passes over them are pure loss (20-30 % of a
        # join's reduce side). Cyclic garbage is collected between tasks instead.
        gc.disable()
        try:
            answer = run_task(payload["tag"], payload, executor_id, block_dir)
        finally:
            gc.enable()
        write_frame(answers, answer)
        gc.collect()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
