"""BatchContext: PySpark's SparkContext for the batch framework on Emporion.

Creating one registers a framework with the master (``HOST:PORT`` or ``zk://...``), starts the
driver's HTTP server (status page, broadcasts) and waits for the first offers, which also start
one executor per agent. Actions block the calling thread while the job runs; the thread ticks
the scheduler (speculation, locality waits) and draws the progress display. Closing the context
(``stop()``, or leaving the ``with`` block) tells the executors to exit, waits for them, and
tears the framework down: nothing of the job stays running or on disk, except what
``saveAsTextFile`` wrote.
"""

from __future__ import annotations

import glob as _glob
import os
import pickle
import socket
import threading
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

import cloudpickle  # type: ignore[import-untyped]

from examples.batch.dag import DAGScheduler
from examples.batch.errors import BatchJobError
from examples.batch.progress import Progress
from examples.batch.rdd import RDD
from examples.batch.rdds import ParallelCollectionRDD, TextFileRDD, UnionRDD
from examples.batch.scheduler import BatchConfig, BatchScheduler
from examples.batch.shared import (
    Accumulator,
    AccumulatorParam,
    AddingAccumulatorParam,
    Broadcast,
)
from examples.batch.web import DriverServer
from framework_sdk import SchedulerDriver, Status, messages

__all__ = ["BatchContext"]

SPLIT_BLOCK = 32 * 1024 * 1024
"""Largest textFile split, as Hadoop's local file system block (Spark's default on local)."""


class BatchContext:
    """The entry point: makes RDDs, runs their jobs on an Emporion cluster.

    ``master``: ``HOST:PORT`` of the master or ``zk://host:port/path``. ``task_cpus`` and
    ``task_mem`` are what each task takes from an offer, ``executor_cpus``/``executor_mem``
    what each agent's executor takes besides; the defaults make one task slot a core
    (0.1 + 0.9 for an agent's first slot). ``max_attempts``: failures of one task before its
    job fails. ``locality_wait``: seconds a task waits for an offer where its input is cached
    (Spark waits 3 s; jobs here are often short, and a cached block is quick to recompute
    compared to idling a core, so 0.5 s). ``speculation``: launch copies of slow tasks.
    ``progress``: draw a live progress display on the terminal and a summary per job.
    ``default_parallelism``: partitions of ``parallelize`` and ``range`` when not given
    (default: the task slots of the cluster at start, at least 2).
    """

    def __init__(
        self,
        master: str,
        app_name: str = "batch",
        *,
        executor_cpus: float = 0.1,
        executor_mem: float = 256.0,
        task_cpus: float = 0.9,
        task_mem: float = 1024.0,
        max_attempts: int = 4,
        speculation: bool = True,
        locality_wait: float = 0.5,
        progress: bool = True,
        default_parallelism: int | None = None,
        role: str = "*",
        start_timeout: float = 60.0,
        warmup: bool = True,
        host: str | None = None,
    ) -> None:
        if not isinstance(master, str) or not master:
            raise ValueError(f"master must be 'HOST:PORT' or 'zk://...', not {master!r}")
        if default_parallelism is not None and default_parallelism < 1:
            raise ValueError(f"default_parallelism must be >= 1, not {default_parallelism}")
        self.master = master
        self.appName = app_name
        self._ids = iter(range(1 << 62))
        self._shuffle_ids = iter(range(1 << 62))
        self._broadcast_ids = iter(range(1 << 62))
        self._accumulators: dict[int, Accumulator[Any]] = {}
        self._default_parallelism = default_parallelism
        self._stopped = False
        self._job_lock = threading.Lock()
        config = BatchConfig(
            executor_cpus=executor_cpus,
            executor_mem=executor_mem,
            task_cpus=task_cpus,
            task_mem=task_mem,
            role=role,
            warmup=warmup,
        )
        self.dag = DAGScheduler(max_attempts, speculation=speculation, locality_wait=locality_wait)
        host = host or _own_address(master)
        self._server = DriverServer(host, self._status)
        self._scheduler = BatchScheduler(self.dag, config, self._server.url, self._accumulators)
        self._progress = Progress(self) if progress else None
        self._started = time.monotonic()
        info = messages.framework_info(
            app_name, roles=[role] if role != "*" else (), webui_url=self._server.url
        )
        self._driver = SchedulerDriver(self._scheduler, info, master)
        self._scheduler.driver = self._driver
        self._driver.start()
        try:
            self._await_start(start_timeout)
        except BaseException:
            self._shutdown(wait_executors=0.0)
            raise

    def _await_start(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        scheduler = self._scheduler
        if not scheduler.registered_event.wait(timeout):
            errors = "; ".join(scheduler.errors) or "no answer"
            raise BatchJobError(f"could not register with the master at {self.master}: {errors}")
        offers_by = min(deadline, time.monotonic() + 5.0)
        with scheduler.lock:  # The first offers tell the cluster's size (defaultParallelism).
            while not scheduler.agent_slots and time.monotonic() < offers_by:
                scheduler.changed.wait(0.05)
            if scheduler.errors:
                raise BatchJobError(f"the master refused the framework: {scheduler.errors[-1]}")

    # -- ids for RDDs and shuffles ------------------------------------------------------------

    def _new_rdd_id(self) -> int:
        return next(self._ids)

    def _new_shuffle_id(self) -> int:
        return next(self._shuffle_ids)

    # -- properties ---------------------------------------------------------------------------

    @property
    def defaultParallelism(self) -> int:
        """Partitions of parallelize/range by default: the cluster's task slots, at least 2."""
        if self._default_parallelism is not None:
            return self._default_parallelism
        with self._scheduler.lock:
            return max(2, sum(self._scheduler.agent_slots.values()))

    @property
    def defaultMinPartitions(self) -> int:
        return min(self.defaultParallelism, 2)

    @property
    def applicationId(self) -> str:
        return self._scheduler.framework_id

    @property
    def uiWebUrl(self) -> str:
        return self._server.url

    # -- making RDDs --------------------------------------------------------------------------

    def parallelize(self, c: Iterable[Any], numSlices: int | None = None) -> RDD[Any]:
        """An RDD of the driver's collection, cut into ``numSlices`` contiguous slices."""
        n = self.defaultParallelism if numSlices is None else numSlices
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"numSlices must be a positive int, not {numSlices!r}")
        data = c if isinstance(c, range | list | tuple) else list(c)
        return RDD(self, ParallelCollectionRDD(data, n))

    def range(
        self, start: int, end: int | None = None, step: int = 1, numSlices: int | None = None
    ) -> RDD[Any]:
        """``range(start, end, step)`` as an RDD (``range(n)`` counts from 0)."""
        if end is None:
            start, end = 0, start
        return self.parallelize(range(start, end, step), numSlices)

    def textFile(
        self, name: str, minPartitions: int | None = None, use_unicode: bool = True
    ) -> RDD[Any]:
        """The lines of text files: a file, a directory (its files) or a glob, comma-separated
        lists of these too; local paths or any ``fsspec`` URL. Files are split by byte ranges
        on line boundaries, at least ``minPartitions`` splits in all."""
        n = self.defaultMinPartitions if minPartitions is None else minPartitions
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"minPartitions must be a positive int, not {minPartitions!r}")
        files = _list_files(name)
        total = sum(size for _, size in files)
        goal = max(1, total // n + (1 if total % n else 0))
        split_size = max(1, min(goal, SPLIT_BLOCK))
        splits: list[tuple[str, int, int]] = []
        for path, size in files:
            start = 0
            while size - start > split_size * 1.1:
                splits.append((path, start, start + split_size))
                start += split_size
            if size - start > 0 or size == 0:
                splits.append((path, start, size))
        return RDD(self, TextFileRDD(splits))

    def union(self, rdds: list[RDD[Any]]) -> RDD[Any]:
        """The records of all of ``rdds``, one after the other."""
        rdds = list(rdds)
        if not rdds:
            raise ValueError("union needs at least one RDD")
        for rdd in rdds:
            if not isinstance(rdd, RDD):
                raise TypeError(f"union needs RDDs, not {type(rdd).__name__}")
        return RDD(self, UnionRDD(rdds))

    def emptyRDD(self) -> RDD[Any]:
        return RDD(self, ParallelCollectionRDD([], 1)).filter(lambda _: False)

    def _forget_broadcast(self, bid: int) -> None:
        self._server.broadcasts.pop(bid, None)

    def broadcast(self, value: Any) -> Broadcast[Any]:
        """A read-only value the tasks read with ``.value``, sent to each worker once."""
        bid = next(self._broadcast_ids)
        self._server.broadcasts[bid] = cloudpickle.dumps(value, 5)
        return Broadcast(bid, value, self._server.url, True, self._forget_broadcast)

    def accumulator(
        self, value: Any, accum_param: AccumulatorParam[Any] | None = None
    ) -> Accumulator[Any]:
        """A variable tasks add to and the driver reads (numbers, or any with accum_param)."""
        if accum_param is None:
            if isinstance(value, bool) or not isinstance(value, int | float | complex):
                raise TypeError(
                    f"no default AccumulatorParam for {type(value).__name__}; pass accum_param"
                )
            accum_param = AddingAccumulatorParam(type(value)())
        aid = len(self._accumulators)
        accumulator = Accumulator(aid, value, accum_param, on_driver=True)
        self._accumulators[aid] = accumulator
        return accumulator

    # -- jobs ---------------------------------------------------------------------------------

    def runJob(
        self,
        rdd: RDD[Any],
        partitionFunc: Callable[[Any], Any],
        partitions: list[int] | None = None,
    ) -> list[Any]:
        """``partitionFunc(iterator)`` on each partition (all, or those listed), in order."""
        if self._stopped:
            raise RuntimeError("this BatchContext was stopped")
        if partitions is None:
            partitions = list(range(rdd.getNumPartitions()))
        with self._job_lock:
            if self._progress is not None:
                self._progress.job_started()
            job = self._scheduler.submit(rdd, partitionFunc, partitions)
            scheduler = self._scheduler
            try:
                with scheduler.lock:
                    while not job.done:
                        if scheduler.errors and not self._driver_running():
                            raise BatchJobError(f"the framework was ended: {scheduler.errors[-1]}")
                        scheduler.changed.wait(0.1)
                        scheduler.tick()
                        if self._progress is not None:
                            self._progress.update()
            finally:
                if self._progress is not None:
                    self._progress.job_finished(job)
            if job.error is not None:
                raise job.error
            return [job.results[p] for p in partitions]

    def _driver_running(self) -> bool:
        return self._driver.status is Status.DRIVER_RUNNING

    def _unpersist(self, rdd_id: int) -> None:
        with self._scheduler.lock:
            self.dag.unpersist(rdd_id)
            for record in self._scheduler.executors.values():
                self._driver.sendFrameworkMessage(
                    messages.ExecutorID(value=record.executor_id),
                    messages.AgentID(value=record.agent_id),
                    f"unpersist:{rdd_id}".encode(),
                )

    # -- status -------------------------------------------------------------------------------

    def _status(self) -> dict[str, Any]:
        """Jobs, stages, executors and recent tasks (for the status page and the progress)."""
        s = self._scheduler
        now = time.monotonic()
        with s.lock:
            jobs = [
                {
                    "id": j.id,
                    "state": "FAILED" if j.error else "DONE" if j.done else "RUNNING",
                    "seconds": (j.finished or now) - j.started,
                    "partitions": len(j.partitions),
                    "error": str(j.error).split("\n")[0] if j.error else None,
                }
                for j in s.dag.jobs.values()
            ]
            stages = []
            for stage_id, stats in s.stage_stats.items():
                stage = s.dag.stages[stage_id]
                taskset = s.dag.tasksets.get(stage_id)
                state = "RUNNING" if taskset else "WAITING" if stage_id in s.dag.waiting else "DONE"
                stages.append(
                    {
                        "id": stage_id,
                        "kind": "shuffle-map" if stage.is_map else "result",
                        "state": state,
                        "tasks": len(taskset.partitions) if taskset else stage.num_partitions,
                        "done": stats.done,
                        "running": sum(len(a) for a in taskset.running.values()) if taskset else 0,
                        "failed": stats.failed,
                        "shuffle_write": stats.shuffle_write,
                        "shuffle_read": stats.shuffle_read,
                        "seconds": (stats.finished or time.time()) - stats.started,
                    }
                )
            tasks = [
                {
                    "id": t.task_id,
                    "stage": t.stage,
                    "partition": t.partition,
                    "executor": t.executor,
                    "host": t.host,
                    "state": t.state,
                    "seconds": None if t.finished is None else t.finished - t.started,
                    "speculative": t.speculative,
                }
                for t in list(s.tasks.values())[-200:]
            ]
            executors = [
                {"id": e.executor_id, "agent": e.agent_id, "address": e.address, "alive": e.alive}
                for e in s.by_executor.values()
            ]
            return {
                "app": self.appName,
                "framework_id": s.framework_id,
                "uptime": now - self._started,
                "jobs": jobs,
                "stages": stages,
                "tasks": tasks,
                "executors": executors,
                "speculative_tasks": s.dag.speculative_tasks,
                "failed_tasks": s.dag.failed_tasks,
            }

    # -- closing ------------------------------------------------------------------------------

    def stop(self) -> None:
        """Executors exit (deleting their blocks), then the framework is torn down."""
        if self._stopped:
            return
        self._shutdown(wait_executors=5.0)

    def _shutdown(self, wait_executors: float) -> None:
        self._stopped = True
        s = self._scheduler
        with s.lock:
            s.stopping = True
            live = [r for r in s.by_executor.values() if r.alive]
            deadline = time.monotonic() + wait_executors
            while any(r.alive for r in live) and time.monotonic() < deadline:
                # Again every half second: a message to an executor still starting is dropped.
                for record in live:
                    if record.alive:
                        self._driver.sendFrameworkMessage(
                            messages.ExecutorID(value=record.executor_id),
                            messages.AgentID(value=record.agent_id),
                            b"exit",
                        )
                s.changed.wait(0.5)
        self._driver.stop()
        self._driver.join()
        self._server.close()
        if self._progress is not None:
            self._progress.close()

    def __enter__(self) -> BatchContext:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __getstate__(self) -> None:
        raise pickle.PicklingError(
            "a BatchContext cannot be used inside a task (it lives in the driver only);"
            " broadcast a value or pass data explicitly instead"
        )


def _list_files(name: str) -> list[tuple[str, int]]:
    """(path, size) of every file named by a path, directory, glob, or comma list of these."""
    found: list[tuple[str, int]] = []
    for raw in name.split(","):
        part = raw.strip()
        if "://" in part and not part.startswith("file://"):
            import fsspec  # type: ignore[import-untyped]

            fs, root = fsspec.core.url_to_fs(part)
            protocol = part.split("://", 1)[0]
            paths = sorted(fs.glob(root)) if any(c in root for c in "*?[") else [root]
            for path in paths:
                if fs.isdir(path):
                    entries = sorted(e for e in fs.find(path) if not _hidden(e))
                else:
                    entries = [path]
                for entry in entries:
                    found.append((f"{protocol}://{entry}", int(fs.size(entry))))
            continue
        local = part.removeprefix("file://")
        paths = sorted(_glob.glob(local)) if any(c in local for c in "*?[") else [local]
        if not paths or not all(os.path.exists(p) for p in paths):
            raise FileNotFoundError(f"Input path does not exist: {part}")
        for path in paths:
            if os.path.isdir(path):
                for entry in sorted(os.listdir(path)):
                    full = os.path.join(path, entry)
                    if os.path.isfile(full) and not _hidden(entry):
                        found.append((os.path.abspath(full), os.path.getsize(full)))
            else:
                found.append((os.path.abspath(path), os.path.getsize(path)))
    return found


def _hidden(path: str) -> bool:
    """Hadoop's input filter: names starting with ``_`` or ``.`` are not input."""
    base = path.rstrip("/").rsplit("/", 1)[-1]
    return base.startswith(("_", "."))


def _own_address(master: str) -> str:
    """This host's address as the master's network sees it (where workers reach the driver)."""
    target = master
    if master.startswith("zk://"):
        target = master[5:].split("/", 1)[0].split(",", maxsplit=1)[0]
    host, _, port = target.rpartition(":")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((host or "127.0.0.1", int(port or 80)))
            return str(probe.getsockname()[0])
    except (OSError, ValueError):
        return "127.0.0.1"
