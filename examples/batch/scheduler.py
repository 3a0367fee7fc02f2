"""The batch framework's Mesos side: offers in, tasks out, status updates back to the DAG.

:class:`BatchScheduler` is a ``framework_sdk.Scheduler`` whose callbacks (on the driver's
callback thread) and the user's thread (submitting jobs, ticking time) share one lock around
the sans-I/O :class:`.dag.DAGScheduler`. Offers are *held* while jobs run, so a task that
becomes runnable (a retry, a speculative copy, a locality wait that ran out) launches at once
instead of waiting for the master's next allocation; when no job runs they are declined and
offers suppressed, and a new job revives them. The first offer of each agent starts the
agent's executor right away with a no-op warm-up task, so its Python start-up and worker pool
overlap with the driver building the first job. One executor per agent; its id changes when
a new one replaces a lost one (so a dead executor's id never comes back).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import pickle
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudpickle  # type: ignore[import-untyped]

from examples.batch.dag import DAGScheduler, Job, Stage, TaskAttempt
from examples.batch.errors import BatchJobError
from examples.batch.shuffle import MapOutput
from framework_sdk import Scheduler, SchedulerDriver, messages
from protos.resources import Resources

__all__ = ["BatchConfig", "BatchScheduler", "ExecutorRecord"]

log = logging.getLogger("examples.batch.scheduler")
ROOT = Path(__file__).resolve().parents[2]
EXECUTOR_MODULE = "examples.batch.executor"
REVIVE_EVERY = 1.0


@dataclass(frozen=True)
class BatchConfig:
    """What a context asks of the cluster (see BatchContext's arguments)."""

    executor_cpus: float = 0.1
    executor_mem: float = 256.0
    task_cpus: float = 0.9
    task_mem: float = 1024.0
    role: str = "*"
    python: str = sys.executable
    pythonpath: str = str(ROOT)
    warmup: bool = True
    decline_seconds: float = 5.0

    def __post_init__(self) -> None:
        for name in ("executor_cpus", "executor_mem", "task_mem", "decline_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, not {getattr(self, name)}")
        if self.task_cpus <= 0:
            raise ValueError(f"task_cpus must be > 0, not {self.task_cpus}")


@dataclass
class ExecutorRecord:
    executor_id: str
    agent_id: str
    host: str
    port: int
    info: messages.ExecutorInfo
    launched: bool = False
    alive: bool = True

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass
class TaskRecord:
    """One task attempt, for the status page and the summary."""

    task_id: str
    stage: int
    partition: int
    executor: str
    host: str
    started: float
    speculative: bool
    state: str = "RUNNING"
    finished: float | None = None


@dataclass
class StageStats:
    shuffle_write: int = 0
    shuffle_read: int = 0
    done: int = 0
    failed: int = 0
    started: float = 0.0
    finished: float | None = None


class BatchScheduler(Scheduler):
    """Offers, launches and status updates around a :class:`DAGScheduler`."""

    def __init__(
        self,
        dag: DAGScheduler,
        config: BatchConfig,
        driver_url: str,
        accumulators: dict[int, Any],
    ) -> None:
        self.dag = dag
        self.config = config
        self.driver_url = driver_url
        self.accumulators = accumulators
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.driver: SchedulerDriver | None = None
        self.app = f"{time.time():.6f}"
        self.framework_id = ""
        self.registered_event = threading.Event()
        self.offers: dict[str, messages.Offer] = {}
        self.executors: dict[str, ExecutorRecord] = {}  # agent id -> live executor
        self.by_executor: dict[str, ExecutorRecord] = {}
        self.agent_slots: dict[str, int] = {}
        self.errors: list[str] = []
        self.tasks: dict[str, TaskRecord] = {}
        self.stage_stats: dict[int, StageStats] = {}
        self._stage_bytes: dict[tuple[int, int], bytes] = {}
        self._ids = itertools.count()
        self._suppressed = False
        self._last_revive = 0.0
        self._warm: set[str] = set()
        self.stopping = False

    # -- callbacks ----------------------------------------------------------------------------

    def registered(
        self, driver: SchedulerDriver, frameworkId: messages.FrameworkID, masterInfo: Any
    ) -> None:
        self.framework_id = frameworkId.value
        self.registered_event.set()

    def reregistered(self, driver: SchedulerDriver, masterInfo: Any) -> None:
        driver.reconcileTasks([])

    def error(self, driver: SchedulerDriver, message: str) -> None:
        with self.lock:
            self.errors.append(message)
            self.changed.notify_all()

    def resourceOffers(self, driver: SchedulerDriver, offers: list[messages.Offer]) -> None:
        now = time.monotonic()
        with self.lock:
            for offer in offers:
                self.offers[offer.id.value] = offer
                agent = offer.agent_id.value
                if agent not in self.agent_slots:
                    cpus = messages.offer_resources(offer).get("cpus")
                    usable = cpus - self.config.executor_cpus
                    self.agent_slots[agent] = max(1, int(usable / self.config.task_cpus + 1e-9))
            self._schedule(driver, now)
            self.changed.notify_all()

    def offerRescinded(self, driver: SchedulerDriver, offerId: messages.OfferID) -> None:
        with self.lock:
            self.offers.pop(offerId.value, None)

    def statusUpdate(self, driver: SchedulerDriver, status: messages.TaskStatus) -> None:
        now = time.monotonic()
        task_id = status.task_id.value
        if status.data[:1] == b"P" and status.executor_id.value:
            with self.lock:
                reporter = self.by_executor.get(status.executor_id.value)
                if reporter is not None:
                    reporter.port = int(status.data[1:])
        if task_id.startswith("warmup-"):
            if status.state in (messages.TASK_FAILED, messages.TASK_ERROR):
                with self.lock:
                    self.errors.append(f"warm-up task {task_id}: {status.message}")
            return
        if status.state in (messages.TASK_RUNNING, messages.TASK_STARTING, messages.TASK_STAGING):
            return
        with self.lock:
            attempt = self.dag.attempts.get(task_id)
            record = self.tasks.get(task_id)
            if record is not None and record.finished is None:
                record.finished = now
                record.state = messages.state_name(status.state).removeprefix("TASK_")
            if attempt is None:
                return
            executor = self.by_executor.get(attempt.executor_id)
            data = status.data
            if data[:1] == b"R" and executor is not None:
                data = self._fetch_result(executor, task_id)
            kind = data[:1]
            stats = self._stats(attempt.taskset.stage.id)
            if status.state == messages.TASK_FINISHED and kind == b"O":
                value, accumulated, cached, metrics = pickle.loads(data[1:])
                if attempt.taskset.stage.is_map and executor is not None:
                    value = MapOutput(executor.executor_id, executor.address, task_id, value)
                stats.shuffle_write += metrics.get("shuffle_write_bytes", 0)
                stats.shuffle_read += metrics.get("shuffle_read_bytes", 0)
                if self.dag.task_succeeded(task_id, value, now, cached):
                    stats.done += 1
                    for aid, term in accumulated.items():
                        if aid in self.accumulators:
                            self.accumulators[aid].merge(term)
            elif status.state == messages.TASK_FAILED and kind == b"E":
                stats.failed += 1
                exc_type, message, text, pickled = pickle.loads(data[1:])
                error = BatchJobError(
                    f"Job aborted: task {attempt.partition} of stage {attempt.taskset.stage.id}"
                    f" failed {self.dag.max_attempts} times; the last failure: {exc_type}:"
                    f" {message}",
                    exc_type=exc_type,
                    exc_message=message,
                    remote_traceback=text,
                )
                if pickled is not None:
                    with contextlib.suppress(Exception):
                        error.__cause__ = pickle.loads(pickled)
                self.dag.task_failed(task_id, error, now, agents=max(1, len(self.agent_slots)))
            elif status.state == messages.TASK_FAILED and kind == b"F":
                stats.failed += 1
                shuffle_id, _map_index, lost_executor, _message = pickle.loads(data[1:])
                self._forget_executor(lost_executor)
                self.dag.fetch_failed(task_id, shuffle_id, lost_executor, now)
            elif status.state == messages.TASK_FAILED and kind == b"W":
                stats.failed += 1
                code = pickle.loads(data[1:])
                how = f"signal {-code}" if code is not None and code < 0 else f"status {code}"
                if code == -9:
                    how += (
                        " (SIGKILL: the kernel's OOM killer, most likely, at the container's"
                        f" limit of executor_mem {self.config.executor_mem:g} MB + task_mem"
                        f" {self.config.task_mem:g} MB per running task; raise task_mem)"
                    )
                error = BatchJobError(
                    f"Job aborted: task {attempt.partition} of stage {attempt.taskset.stage.id}"
                    f" failed {self.dag.max_attempts} times; the last time its worker process"
                    f" died: {how}",
                    exc_type="MemoryError" if code == -9 else "WorkerCrashed",
                    exc_message=f"worker process died: {how}",
                )
                self.dag.task_failed(task_id, error, now, agents=max(1, len(self.agent_slots)))
            elif status.reason in _LIMITS:
                # The container hit a limit (the kernel's OOM killer, most often): the task's
                # own doing, likely again next time, so it counts as a failure.
                stats.failed += 1
                limit = (
                    f"executor_mem {self.config.executor_mem:g} MB + task_mem"
                    f" {self.config.task_mem:g} MB per running task"
                )
                error = BatchJobError(
                    f"Job aborted: task {attempt.partition} of stage {attempt.taskset.stage.id}"
                    f" was killed {self.dag.max_attempts} times for exceeding its container's"
                    f" limits ({limit}; raise task_mem): {status.message}",
                    exc_type="MemoryError",
                    exc_message=status.message,
                )
                self.dag.task_failed(task_id, error, now, agents=max(1, len(self.agent_slots)))
                self._forget_executor(attempt.executor_id)
                self.dag.executor_lost(attempt.executor_id, now)
            else:
                log.info(
                    "task %s on %s: %s (%s) %s",
                    task_id,
                    attempt.executor_id,
                    messages.state_name(status.state),
                    messages.TaskStatus.Reason.Name(status.reason),
                    status.message,
                )
                if status.reason in (
                    messages.TaskStatus.REASON_EXECUTOR_TERMINATED,
                    messages.TaskStatus.REASON_AGENT_REMOVED,
                    messages.TaskStatus.REASON_AGENT_RESTARTED,
                ):
                    self._forget_executor(attempt.executor_id)
                    self.dag.executor_lost(attempt.executor_id, now)
                reason = messages.TaskStatus.Reason.Name(status.reason)
                self.dag.task_lost(task_id, now, f"{reason}: {status.message}")
            self._after(driver, now)

    def executorLost(
        self,
        driver: SchedulerDriver,
        executorId: messages.ExecutorID,
        agentId: messages.AgentID,
        status: int,
    ) -> None:
        now = time.monotonic()
        with self.lock:
            self._forget_executor(executorId.value)
            self.dag.executor_lost(executorId.value, now)
            self._after(driver, now)

    def slaveLost(self, driver: SchedulerDriver, agentId: messages.AgentID) -> None:
        now = time.monotonic()
        with self.lock:
            self.agent_slots.pop(agentId.value, None)
            record = self.executors.get(agentId.value)
            if record is not None:
                self._forget_executor(record.executor_id)
                self.dag.executor_lost(record.executor_id, now)
            self._after(driver, now)

    # -- the user's thread --------------------------------------------------------------------

    def submit(self, rdd: Any, func: Any, partitions: list[int]) -> Job:
        now = time.monotonic()
        with self.lock:
            job = self.dag.submit_job(rdd, func, partitions, now)
            for taskset in self.dag.tasksets.values():
                self._stats(taskset.stage.id)
            if self.driver is not None:
                self._after(self.driver, now)
            return job

    def tick(self) -> None:
        """Time passing: speculation, locality waits running out, revives."""
        now = time.monotonic()
        with self.lock:
            self.dag.tick(now)
            if self.driver is not None:
                self._after(self.driver, now)

    # -- internals ----------------------------------------------------------------------------

    def _stats(self, stage_id: int) -> StageStats:
        stats = self.stage_stats.get(stage_id)
        if stats is None:
            stats = self.stage_stats[stage_id] = StageStats(started=time.time())
        return stats

    def _after(self, driver: SchedulerDriver, now: float) -> None:
        kills, self.dag.kills = self.dag.kills, []
        for attempt in kills:
            driver.killTask(messages.TaskID(value=attempt.task_id))
        for stage_id, stats in self.stage_stats.items():
            if stats.finished is None and stage_id not in self.dag.tasksets:
                stage = self.dag.stages.get(stage_id)
                if stage is not None and stage.id not in self.dag.waiting:
                    stats.finished = time.time()
        self._schedule(driver, now)
        self.changed.notify_all()

    def _forget_executor(self, executor_id: str) -> None:
        record = self.by_executor.get(executor_id)
        if record is None:
            return
        record.alive = False
        if self.executors.get(record.agent_id) is record:
            del self.executors[record.agent_id]

    def _schedule(self, driver: SchedulerDriver, now: float) -> None:
        if self.stopping:
            return
        wants = self.dag.wants_offers()
        if wants and self._suppressed:
            driver.reviveOffers()
            self._suppressed, self._last_revive = False, now
        elif wants and not self.offers and now - self._last_revive > REVIVE_EVERY:
            driver.reviveOffers()
            self._last_revive = now
        by_agent: dict[str, list[messages.Offer]] = {}
        for offer in self.offers.values():
            by_agent.setdefault(offer.agent_id.value, []).append(offer)
        for agent, offers in by_agent.items():
            if not wants:
                fresh = agent not in self._warm and agent not in self.executors
                if self.config.warmup and fresh and self._warm_up(driver, offers):
                    for offer in offers:
                        del self.offers[offer.id.value]
                continue
            if self._launch_on(driver, offers, now):
                for offer in offers:
                    del self.offers[offer.id.value]
        if not wants and not self.dag.busy() and self.offers:
            driver.declineOffer(
                [o.id for o in self.offers.values()],
                messages.filters(refuse_seconds=self.config.decline_seconds),
            )
            self.offers.clear()
            driver.suppressOffers()
            self._suppressed = True

    def _new_executor(self, offer: messages.Offer, resources: Resources) -> ExecutorRecord | None:
        need = Resources.parse(f"cpus:{self.config.executor_cpus};mem:{self.config.executor_mem}")
        if not resources.contains(need):
            return None
        port = _first_port(resources)
        if port is None:
            return None
        executor_id = f"batch-{self.app.replace('.', '')}-{next(self._ids)}"
        info = messages.ExecutorInfo(type=messages.ExecutorInfo.CUSTOM, name="batch executor")
        info.executor_id.value = executor_id
        info.command.shell = False
        info.command.value = self.config.python
        slots = self.agent_slots.get(offer.agent_id.value, 1)
        info.command.arguments.extend(
            [
                self.config.python, "-m", EXECUTOR_MODULE,
                "--workers", str(slots), "--port", str(port),
            ]
        )  # fmt: skip
        env = info.command.environment.variables
        env.add(name="PYTHONPATH", value=self.config.pythonpath)
        env.add(name="PYTHONHASHSEED", value="0")
        role = offer.allocation_info.role if offer.HasField("allocation_info") else self.config.role
        text = f"mem:{self.config.executor_mem};ports:[{port}-{port}]"
        if self.config.executor_cpus > 0:
            text = f"cpus:{self.config.executor_cpus};" + text
        info.resources.extend(messages.parse_resources(text, allocation_role=role))
        return ExecutorRecord(executor_id, offer.agent_id.value, offer.hostname, port, info)

    def _executor_for(
        self, offer: messages.Offer, resources: Resources
    ) -> tuple[ExecutorRecord | None, bool]:
        record = self.executors.get(offer.agent_id.value)
        if record is not None:
            return record, False
        return self._new_executor(offer, resources), True

    def _warm_up(self, driver: SchedulerDriver, offers: list[messages.Offer]) -> bool:
        """Start the agent's executor now with a no-op task (all of the agent's offers)."""
        offer = offers[0]
        resources = _total(offers)
        record, new = self._executor_for(offer, resources)
        if record is None or not new:
            return False
        cost = "cpus:0.01;mem:8"
        if not (resources - Resources.from_protos(record.info.resources)).contains(
            Resources.parse(cost)
        ):
            return False
        task = messages.task_info(
            f"warmup-{record.executor_id}", offer, cost, executor=record.info, data=b"warmup"
        )
        driver.launchTasks([o.id for o in offers], [task])
        self._register(record)
        self._warm.add(offer.agent_id.value)
        return True

    def _register(self, record: ExecutorRecord) -> None:
        record.launched = True
        self.executors[record.agent_id] = record
        self.by_executor[record.executor_id] = record

    def _launch_on(self, driver: SchedulerDriver, offers: list[messages.Offer], now: float) -> bool:
        """Launch what fits on an agent's offers (accepted together: the master merges them)."""
        offer = offers[0]
        available = _total(offers)
        record, new = self._executor_for(offer, available)
        if record is None:
            return False
        cpus, mem = available.get("cpus"), available.get("mem")
        if new:
            cpus -= self.config.executor_cpus
            mem -= self.config.executor_mem
        slots = int(cpus / self.config.task_cpus + 1e-9)
        if self.config.task_mem > 0:
            slots = min(slots, int(mem / self.config.task_mem + 1e-9))
        if slots <= 0:
            return False
        agents = max(1, len(self.agent_slots))
        attempts = self.dag.offer(offer.agent_id.value, record.executor_id, slots, now, agents)
        if not attempts:
            return False
        if new:
            self._register(record)
        need = f"cpus:{self.config.task_cpus};mem:{self.config.task_mem}"
        infos = []
        for attempt in attempts:
            data = self._payload(attempt)
            infos.append(
                messages.task_info(attempt.task_id, offer, need, executor=record.info, data=data)
            )
            self.tasks[attempt.task_id] = TaskRecord(
                attempt.task_id, attempt.taskset.stage.id, attempt.partition,
                record.executor_id, offer.hostname, now, attempt.speculative,
            )  # fmt: skip
        driver.launchTasks([o.id for o in offers], infos)
        return True

    def _payload(self, attempt: TaskAttempt) -> bytes:
        taskset = attempt.taskset
        stage: Stage = taskset.stage
        job = taskset.job
        key = (stage.id, job.id if job is not None else -1)
        stage_bytes = self._stage_bytes.get(key)
        if stage_bytes is None:
            extra = stage.shuffle_dep if stage.is_map else job.func  # type: ignore[union-attr]
            stage_bytes = cloudpickle.dumps((stage.rdd, extra), 5)
            self._stage_bytes[key] = stage_bytes
        split = stage.rdd.partitions()[attempt.partition]
        shuffles = {sid: list(self.dag.outputs[sid]) for sid in stage.reads}
        payload = {
            "kind": "map" if stage.is_map else "result",
            "app": self.app,
            "stage": stage.id,
            "stage_key": hash(key),
            "stage_bytes": stage_bytes,
            "split": cloudpickle.dumps(split, 5),
            "index": attempt.partition,
            "attempt": attempt.attempt,
            "tag": attempt.task_id,
            "shuffles": shuffles,
            "driver_url": self.driver_url,
        }
        return pickle.dumps(payload, 5)

    def _fetch_result(self, executor: ExecutorRecord, task_id: str) -> bytes:
        url = f"http://{executor.address}/result/{task_id}"
        try:
            with urllib.request.urlopen(url, timeout=120) as response:
                return response.read()  # type: ignore[no-any-return]
        except OSError as error:
            return b"F" + pickle.dumps((-1, -1, executor.executor_id, str(error)))


_LIMITS = (
    messages.TaskStatus.REASON_CONTAINER_LIMITATION,
    messages.TaskStatus.REASON_CONTAINER_LIMITATION_MEMORY,
    messages.TaskStatus.REASON_CONTAINER_LIMITATION_DISK,
)


def _total(offers: list[messages.Offer]) -> Resources:
    total = messages.offer_resources(offers[0])
    for offer in offers[1:]:
        total = total + messages.offer_resources(offer)
    return total


def _first_port(resources: Resources) -> int | None:
    for resource in resources.to_protos():
        if resource.name == "ports" and resource.ranges.range:
            return int(resource.ranges.range[0].begin)
    return None
