"""Launch throughput: how many tasks per second one master launches onto emulated agents.

``python -m bench.launch_throughput --agents A --frameworks F --tasks N`` starts a master in its
own process (``python -m master --port 0``), registers A emulated agents with it
(:class:`emporion.testing.AgentEmulator`, in this process), subscribes F frameworks over raw gRPC
stubs that accept every offer and pack it with as many small tasks (``--task-resources``) as fit
until N tasks were launched in total, and acknowledge every update. With ``--api batched``
(default) the frameworks use Emporion's extension of the scheduler API: ``SubscribeBatched``
(events in groups) and ``Batch`` (every acknowledgement queued while the previous Batch was on
its way goes in the next one). ``--api plain`` uses only Mesos's methods: ``Subscribe`` and one
unary ACKNOWLEDGE per update (``--ack-workers`` of them in flight). ``--api http`` uses Mesos's v1
scheduler HTTP API as pymesos does (:mod:`bench.http_frameworks`): SUBSCRIBE as a RecordIO event
stream and one POST per call, JSON bodies (``--http-content protobuf``: protobuf). It prints one
JSON object:

* ``tasks_per_s``: N / (time of the N-th TASK_RUNNING seen by the frameworks - first ACCEPT).
* ``tasks_finished_per_s``: the same up to the N-th TASK_FINISHED (``--mode finish``, default:
  the agents finish each task as soon as TASK_RUNNING is acknowledged).
* ``offer_to_launch_p50_s`` / ``_p99_s``: from the OFFERS event reaching the framework to the
  RunTask reaching the emulated agent, per task.
* ``accept_to_running_p50_s`` / ``_p99_s``: from sending ACCEPT to TASK_RUNNING at the framework.
* ``master_cpu_s`` / ``bench_cpu_s``: CPU used by the master and by this process (emulator and
  frameworks) while measuring: on a small machine both compete for the same cores.
* ``ack_batches``: the Batch calls the frameworks sent (``--api batched``).

``--master HOST:PORT`` measures an already-running master instead of starting one.
``--profile FILE`` starts the master with ``--profile FILE`` (cProfile statistics at exit);
``--py-spy FILE`` samples the master with py-spy while measuring (``--format raw``: collapsed
stacks, native frames included, so gRPC's C and Cython layers show up).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import grpc
import grpc.aio

from bench._common import (
    cpu_seconds,
    emit,
    kill_children_on_signals,
    machine,
    percentile,
    rounded,
    start_child,
)
from bench.security import BenchSecurity, bench_security
from emporion.testing import AgentEmulator
from protos.resources import Resources
from protos.security import open_aio_channel
from protos.v1 import mesos_pb2, scheduler_pb2
from protos.v1 import scheduler_pb2_grpc as sched_grpc

Call = scheduler_pb2.Call
Calls = scheduler_pb2.Calls
Event = scheduler_pb2.Event
_ADDRESS = re.compile(r"(\d{1,3}(?:\.\d{1,3}){3}|localhost|\[[0-9a-fA-F:]+\]):(\d{1,5})\b")
_TERMINAL_BEFORE_RUNNING = frozenset(
    {mesos_pb2.TASK_ERROR, mesos_pb2.TASK_DROPPED, mesos_pb2.TASK_LOST, mesos_pb2.TASK_FAILED}
)


@dataclass
class Totals:
    """Progress and timestamps shared by all frameworks of one run."""

    target: int
    launched: int = 0
    running: int = 0
    finished: int = 0
    relaunched: int = 0
    offers: int = 0
    accepts: int = 0
    ack_batches: int = 0
    first_accept_at: float | None = None
    running_done_at: float | None = None
    finished_done_at: float | None = None
    offer_at: dict[tuple[str, str], float] = field(default_factory=dict)
    accept_at: dict[str, float] = field(default_factory=dict)
    finished_ids: set[str] = field(default_factory=set)
    accept_to_running: list[float] = field(default_factory=list)
    running_done: asyncio.Event = field(default_factory=asyncio.Event)
    finished_done: asyncio.Event = field(default_factory=asyncio.Event)
    failure: str | None = None


class BenchFramework:
    """A framework that packs every offer with small tasks until its share is launched."""

    def __init__(
        self,
        index: int,
        channel: grpc.aio.Channel,
        share: int,
        task_resources: Resources,
        totals: Totals,
        *,
        batched: bool = True,
        ack_workers: int = 16,
        max_tasks_per_offer: int = 0,
    ) -> None:
        self.index = index
        self.batched = batched
        self.stub = sched_grpc.SchedulerStub(channel)
        self.to_launch = share
        self.task_resources = task_resources
        self.totals = totals
        self.max_tasks_per_offer = max_tasks_per_offer
        self.framework_id = mesos_pb2.FrameworkID()
        self.metadata: tuple[tuple[str, str], ...] = ()
        self.acks: asyncio.Queue[Call] = asyncio.Queue()
        self.ack_workers = ack_workers
        self.next_task = 0
        self.suppressed = False
        self.background: set[asyncio.Task[Any]] = set()
        self.subscribed = asyncio.Event()

    async def run(self) -> None:
        """Subscribe and handle events until cancelled."""
        info = mesos_pb2.FrameworkInfo(user="bench", name=f"bench-{self.index}")
        subscribe = Call(type=Call.SUBSCRIBE, subscribe=Call.Subscribe(framework_info=info))
        method = self.stub.SubscribeBatched if self.batched else self.stub.Subscribe
        call: Any = method(subscribe)
        metadata = await call.initial_metadata()
        stream_id = dict(metadata).get("mesos-stream-id", "")
        self.metadata = (("mesos-stream-id", str(stream_id)),)
        worker = self._batch_worker if self.batched else self._ack_worker
        workers = [asyncio.create_task(worker()) for _ in range(self.ack_workers)]
        try:
            if self.batched:
                async for message in call:
                    for event in message.events:
                        self._on_event(event)
            else:
                async for event in call:
                    self._on_event(event)
        finally:
            for task in [*workers, *self.background]:
                task.cancel()

    def _on_event(self, event: Event) -> None:
        kind = event.type
        if kind == Event.UPDATE:
            self._on_update(event.update.status)
        elif kind == Event.OFFERS:
            now = time.time()
            unused = [o.id for o in event.offers.offers if not self._on_offer(o, now)]
            if unused:  # one DECLINE for all of them: each call costs both sides dearly
                self._call(self.stub.Decline, self._decline(unused))
            if self.to_launch <= 0 and not self.suppressed:
                self.suppressed = True
                self._call(self.stub.Suppress, Call(type=Call.SUPPRESS, suppress=Call.Suppress()))
        elif kind == Event.SUBSCRIBED:
            self.framework_id.CopyFrom(event.subscribed.framework_id)
            self.subscribed.set()
        elif kind == Event.ERROR:
            self.totals.failure = f"framework {self.index}: ERROR {event.error.message}"
            self.totals.running_done.set()
            self.totals.finished_done.set()

    def _on_offer(self, offer: mesos_pb2.Offer, now: float) -> bool:
        """Launch what fits into ``offer``; False if nothing does (the caller declines it)."""
        totals = self.totals
        totals.offers += 1
        available = Resources.from_protos(offer.resources)
        fit = min(
            math.floor(available.get(name) / need + 1e-9)
            for name, need in self.task_resources.scalar_totals().items()
        )
        count = min(fit, self.to_launch)
        if self.max_tasks_per_offer:
            count = min(count, self.max_tasks_per_offer)
        if count <= 0:
            return False
        role = offer.allocation_info.role if offer.HasField("allocation_info") else None
        template = mesos_pb2.TaskInfo(
            resources=self.task_resources.to_protos(allocation_role=role),
            command=mesos_pb2.CommandInfo(value="true"),
        )
        template.agent_id.CopyFrom(offer.agent_id)
        launch = mesos_pb2.Offer.Operation.Launch()
        fw = self.framework_id.value
        for _ in range(count):
            task_id = f"{self.index}.{self.next_task}"
            self.next_task += 1
            task = launch.task_infos.add()
            task.CopyFrom(template)
            task.name = task.task_id.value = task_id
            totals.offer_at[(fw, task_id)] = now
        self.to_launch -= count
        totals.launched += count
        operation = mesos_pb2.Offer.Operation(type=mesos_pb2.Offer.Operation.LAUNCH, launch=launch)
        accept = Call(
            type=Call.ACCEPT,
            accept=Call.Accept(offer_ids=[offer.id], operations=[operation]),
        )
        sent = time.time()
        if totals.first_accept_at is None:
            totals.first_accept_at = sent
        for task in launch.task_infos:
            totals.accept_at[task.task_id.value] = sent
        totals.accepts += 1
        self._call(self.stub.Accept, accept)
        return True

    def _decline(self, offer_ids: list[mesos_pb2.OfferID]) -> Call:
        # Done frameworks refuse for long; others only for Mesos's default 5 s.
        refuse = 3600.0 if self.to_launch <= 0 else 5.0
        return Call(
            type=Call.DECLINE,
            decline=Call.Decline(
                offer_ids=offer_ids, filters=mesos_pb2.Filters(refuse_seconds=refuse)
            ),
        )

    def _on_update(self, status: mesos_pb2.TaskStatus) -> None:
        if status.uuid:
            call = Call(type=Call.ACKNOWLEDGE)
            call.acknowledge.agent_id.CopyFrom(status.agent_id)
            call.acknowledge.task_id.CopyFrom(status.task_id)
            call.acknowledge.uuid = status.uuid
            self.acks.put_nowait(call)
        self._count(status.task_id.value, status.state, status.message)

    def _count(self, task_id: str, state: int, message: str) -> None:
        """Count update ``state`` of ``task_id`` in the totals (resent updates count once)."""
        totals = self.totals
        if state == mesos_pb2.TASK_RUNNING:
            accepted = totals.accept_at.pop(task_id, None)
            if accepted is None:
                return  # a resent update
            totals.accept_to_running.append(time.time() - accepted)
            totals.running += 1
            if totals.running == totals.target:
                totals.running_done_at = time.time()
                totals.running_done.set()
        elif state == mesos_pb2.TASK_FINISHED:
            if task_id in totals.finished_ids:
                return  # a resent update (its acknowledgement was late)
            totals.finished_ids.add(task_id)
            totals.finished += 1
            if totals.finished == totals.target:
                totals.finished_done_at = time.time()
                totals.finished_done.set()
        elif state in _TERMINAL_BEFORE_RUNNING and task_id in totals.accept_at:
            # Never ran (e.g. TASK_ERROR): launch another in its place so N still run.
            del totals.accept_at[task_id]
            self.to_launch += 1
            totals.relaunched += 1
            if totals.relaunched > totals.target:
                totals.failure = f"too many tasks failed to launch: last {message!r}"
                totals.running_done.set()
                totals.finished_done.set()

    def _call(self, method: Any, call: Call) -> None:
        call.framework_id.CopyFrom(self.framework_id)
        task = asyncio.create_task(self._checked(method, call))
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def _checked(self, method: Any, call: Call) -> None:
        try:
            await method(call, metadata=self.metadata)
        except grpc.aio.AioRpcError as error:
            name = Call.Type.Name(call.type)
            self.totals.failure = f"{name} refused: {error.code().name}: {error.details()}"

    async def _ack_worker(self) -> None:
        while True:
            call = await self.acks.get()
            call.framework_id.CopyFrom(self.framework_id)
            try:
                await self.stub.Acknowledge(call, metadata=self.metadata)
            except grpc.aio.AioRpcError as error:
                self.totals.failure = f"ACKNOWLEDGE refused: {error.code().name}"

    async def _batch_worker(self) -> None:
        """Send every acknowledgement queued so far in one Batch, again and again."""
        acks = self.acks
        while True:
            batch = [await acks.get()]
            while not acks.empty():
                batch.append(acks.get_nowait())
            for call in batch:
                call.framework_id.CopyFrom(self.framework_id)
            try:
                reply = await self.stub.Batch(Calls(calls=batch), metadata=self.metadata)
            except grpc.aio.AioRpcError as error:
                self.totals.failure = f"Batch refused: {error.code().name}: {error.details()}"
                continue
            self.totals.ack_batches += 1
            for result in reply.results:
                if result.code:
                    self.totals.failure = f"ACKNOWLEDGE refused: {result.code}: {result.message}"


# -- the master process ---------------------------------------------------------------------------


@contextlib.contextmanager
def master_process(
    extra_args: Sequence[str] = (),
    *,
    profile: str | None = None,
    port: int = 0,
    work_dir: str | None = None,
    http: list[str] | None = None,
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """Run ``python -m master`` (in a temporary work dir unless given); yield (address, process).

    The address is the first ``host:port`` the master prints; the second, its HTTP address, is
    appended to ``http`` when given. On exit the master gets SIGINT
    (so that ``--profile`` writes its statistics), then SIGKILL if it lingers; it dies with
    this process however that ends (:func:`bench._common.start_child`).
    """
    with contextlib.ExitStack() as stack:
        if work_dir is None:
            work_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="emporion-bench-"))
        args = [sys.executable, "-m", "master", "--port", str(port), "--http-port", "0"]
        args += ["--work-dir", work_dir]
        if profile:
            args += ["--profile", str(Path(profile).resolve())]
        log_path = Path(work_dir) / f"master-{time.time_ns()}.log"
        log = stack.enter_context(log_path.open("wb"))
        process = start_child([*args, *extra_args], stdout=subprocess.PIPE, stderr=log, text=True)
        stack.callback(_end, process)
        assert process.stdout is not None
        address = None
        while address is None:
            line = process.stdout.readline()
            if not line:
                process.stdout.close()
                process.wait(10)
                raise RuntimeError(
                    f"the master exited ({process.returncode}) without printing its address:\n"
                    + log_path.read_text(errors="replace")[-4000:]
                )
            found = _ADDRESS.findall(line)
            if found:
                address = f"{found[0][0]}:{found[0][1]}"
                if http is not None and len(found) > 1:
                    http.append(f"{found[1][0]}:{found[1][1]}")
        # Keep reading what it prints, so that a chatty master never blocks on a full pipe.
        threading.Thread(target=_drain, args=(process.stdout,), daemon=True).start()
        yield address, process


def _drain(stream: IO[str]) -> None:
    with stream:
        for _ in stream:
            pass


def _end(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def py_spy(pid: int | None, output: str | None) -> Iterator[None]:
    """Sample process ``pid`` with py-spy into ``output`` (collapsed stacks) while inside."""
    if pid is None or not output:
        yield
        return
    with py_spy_record(pid, output, "--rate", "100", "--native"):
        yield


@contextlib.contextmanager
def py_spy_record(pid: int, output: str | Path, *flags: str) -> Iterator[None]:
    """Run ``py-spy record`` on ``pid`` with ``flags`` while inside; raw (collapsed) stacks.

    py-spy writes its output only when told to stop (SIGINT), so it is stopped that way and
    waited for; one that does not finish in a minute is killed.
    """
    binary = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    process = start_child(
        [binary, "record", "--pid", str(pid), *flags, "--format", "raw", "--output", str(output)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        process.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of another process (from /proc; 0.0 where unavailable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the run --------------------------------------------------------------------------------------


async def measure(address: str, master_pid: int | None, ns: argparse.Namespace) -> dict[str, Any]:
    """Register the agents, run the frameworks until N tasks finished, and compute figures.

    ``ns.http_address`` is the master's HTTP address (needed by ``--api http``)."""
    task_resources = Resources.parse(ns.task_resources)
    totals = Totals(target=ns.tasks)
    emulator = AgentEmulator(
        address,
        agents=ns.agents,
        resources=ns.agent_resources,
        mode=ns.mode,
        channels=ns.channels,
        register_timeout=ns.timeout,
        status_update_retry_min=ns.update_retry,
        status_update_retry_max=max(600.0, ns.update_retry),
        tls=ns.security.tls,
        credential=ns.security.agent_credential,
    )
    started = time.monotonic()
    await emulator.start()
    registration_s = time.monotonic() - started
    channel = open_aio_channel(
        address,
        [("grpc.max_receive_message_length", 256 * 1024 * 1024)],
        tls=ns.security.tls,
        credential=ns.security.framework_credential,
    )
    shares = [
        ns.tasks // ns.frameworks + (i < ns.tasks % ns.frameworks) for i in range(ns.frameworks)
    ]
    frameworks: list[BenchFramework] = []
    if ns.api == "http":
        from bench.http_frameworks import HttpBenchFramework  # It imports this module.

        if not ns.http_address:
            raise SystemExit("--api http needs the master's HTTP address (--master-http)")
        frameworks += [
            HttpBenchFramework(
                i,
                channel,
                ns.http_address,
                share,
                task_resources,
                totals=totals,
                content=ns.http_content,
                ack_workers=ns.ack_workers or 4,
                max_tasks_per_offer=ns.max_tasks_per_offer,
            )
            for i, share in enumerate(shares)
        ]
    else:
        frameworks += [
            BenchFramework(
                i,
                channel,
                share,
                task_resources,
                totals,
                batched=ns.api == "batched",
                ack_workers=ns.ack_workers or (2 if ns.api == "batched" else 16),
                max_tasks_per_offer=ns.max_tasks_per_offer,
            )
            for i, share in enumerate(shares)
        ]
    master_cpu0 = process_cpu_seconds(master_pid) if master_pid else 0.0
    bench_cpu0 = cpu_seconds()
    runs = [asyncio.create_task(f.run()) for f in frameworks]
    target = totals.finished_done if ns.mode == "finish" else totals.running_done
    timed_out = False
    with py_spy(master_pid, ns.py_spy):
        try:
            await asyncio.wait_for(target.wait(), ns.timeout)
        except TimeoutError:
            timed_out = True
    master_cpu = (process_cpu_seconds(master_pid) - master_cpu0) if master_pid else None
    bench_cpu = cpu_seconds() - bench_cpu0
    for run in runs:
        run.cancel()
    await asyncio.gather(*runs, return_exceptions=True)
    await channel.close(None)
    counters = emulator.counters
    await emulator.stop()

    launch_latency = [
        counters.run_task_at[key] - offered
        for key, offered in totals.offer_at.items()
        if key in counters.run_task_at
    ]
    first = totals.first_accept_at

    def rate(done_at: float | None) -> float | None:
        if first is None or done_at is None or done_at <= first:
            return None
        return round(float(ns.tasks) / (done_at - first), 1)

    figures: dict[str, Any] = {
        "benchmark": "launch_throughput",
        "agents": ns.agents,
        "frameworks": ns.frameworks,
        "tasks": ns.tasks,
        "mode": ns.mode,
        "api": ns.api,
        **({"http_content": ns.http_content} if ns.api == "http" else {}),
        "task_resources": ns.task_resources,
        "agent_resources": ns.agent_resources,
        "tasks_per_s": rate(totals.running_done_at),
        "tasks_finished_per_s": rate(totals.finished_done_at),
        "offer_to_launch_p50_s": rounded(percentile(launch_latency, 50)),
        "offer_to_launch_p99_s": rounded(percentile(launch_latency, 99)),
        "accept_to_running_p50_s": rounded(percentile(totals.accept_to_running, 50)),
        "accept_to_running_p99_s": rounded(percentile(totals.accept_to_running, 99)),
        "registration_s": round(registration_s, 3),
        "running_window_s": rounded(
            None
            if first is None or totals.running_done_at is None
            else totals.running_done_at - first
        ),
        "master_cpu_s": rounded(master_cpu, 2),
        "bench_cpu_s": round(bench_cpu, 2),
        "offers": totals.offers,
        "accept_calls": totals.accepts,
        "ack_batches": totals.ack_batches,
        "relaunched": totals.relaunched,
        "updates_sent": counters.updates_sent,
        "updates_retried": counters.updates_retried,
        **machine(),
    }
    if timed_out:
        figures["error"] = (
            f"timed out after {ns.timeout} s: {totals.running} running, "
            f"{totals.finished} finished of {ns.tasks}"
        )
    if totals.failure:
        figures["error"] = totals.failure
    return figures


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The benchmark's flags."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.launch_throughput",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--frameworks", type=int, default=10)
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument(
        "--mode",
        choices=["finish", "run"],
        default="finish",
        help="finish: tasks end once RUNNING is acked; run: they keep running",
    )
    parser.add_argument("--task-resources", default="cpus:0.01;mem:1")
    parser.add_argument(
        "--agent-resources", default="cpus:8;mem:32768;disk:100000;ports:[31000-32000]"
    )
    parser.add_argument("--max-tasks-per-offer", type=int, default=0, help="0: as many as fit")
    parser.add_argument(
        "--api",
        choices=["batched", "plain", "http"],
        default="batched",
        help="batched: SubscribeBatched and Batch (Emporion); plain: Mesos's gRPC methods only;"
        " http: Mesos's v1 scheduler HTTP API (/api/v1/scheduler), one POST per call",
    )
    parser.add_argument(
        "--http-content",
        choices=["json", "protobuf"],
        default="json",
        help="--api http: the bodies' and events' encoding (json: as pymesos sends them)",
    )
    parser.add_argument(
        "--ack-workers",
        type=int,
        default=0,
        help="acknowledgement calls in flight per framework (0: 2 Batches, 16 ACKNOWLEDGEs over"
        " gRPC, or 4 over HTTP: one connection each)",
    )
    parser.add_argument("--channels", type=int, default=1, help="gRPC channels of the emulator")
    parser.add_argument(
        "--update-retry",
        type=float,
        default=10.0,
        help="seconds before an agent resends an unacknowledged update (Mesos: 10)",
    )
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--master", help="measure this running master (host:port) instead")
    parser.add_argument("--master-http", help="with --master: its HTTP address (--api http)")
    parser.add_argument(
        "--master-arg",
        action="append",
        default=[],
        help="extra flag for the started master (repeatable; default --log-level WARNING)",
    )
    parser.add_argument("--profile", help="have the started master write cProfile stats here")
    parser.add_argument("--py-spy", help="sample the master with py-spy into this file")
    parser.add_argument("--tls", action="store_true", help="the master serves TLS (bench.security)")
    parser.add_argument("--auth", action="store_true", help="frameworks and agents authenticate")
    ns = parser.parse_args(argv)
    ns.security = BenchSecurity()
    for name in ("agents", "frameworks", "tasks"):
        if getattr(ns, name) < 1:
            parser.error(f"--{name} must be at least 1")
    try:
        Resources.parse(ns.task_resources)
    except ValueError as error:
        parser.error(f"--task-resources: {error}")
    return ns


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its JSON figures."""
    ns = parse_args(argv)
    ns.http_address = ns.master_http
    if ns.master:
        figures = asyncio.run(measure(ns.master, None, ns))
    else:
        with tempfile.TemporaryDirectory(prefix="emporion-bench-security-") as files:
            ns.security = bench_security(Path(files), tls=ns.tls, auth=ns.auth)
            master_args = [*(ns.master_arg or ["--log-level", "WARNING"])]
            master_args += ns.security.master_args
            http: list[str] = []
            with master_process(master_args, profile=ns.profile, http=http) as (address, process):
                ns.http_address = http[0] if http else None
                figures = asyncio.run(measure(address, process.pid, ns))
    emit(figures)
    return 1 if "error" in figures else 0


if __name__ == "__main__":
    kill_children_on_signals()  # A timeout's SIGTERM must not leave the master running.
    raise SystemExit(main())
