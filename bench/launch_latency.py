"""Launch latency: from ACCEPT to TASK_RUNNING for trivial command tasks on a real agent.

``python -m bench.launch_latency --tasks N`` starts a real master (``python -m master --port
0``) and a real agent (``python -m agent``, isolation ``auto``: cgroups and namespaces when run
as root) in a temporary directory, subscribes one framework over the raw ``Scheduler`` gRPC
stub, and launches N command tasks (``true`` by default), one ACCEPT at a time: for each it
waits for an offer, sends ACCEPT with one task, and times until that task's TASK_RUNNING reaches
the framework. Every update is acknowledged. It prints one JSON object:

* ``accept_to_running_p50_s`` / ``_p99_s`` / ``_max_s``: the latency figures.
* ``isolation``: the isolation the agent reported at start (its log line).
* ``tasks``, ``command``, ``checkpoint`` and the machine it ran on.

``--concurrency C`` keeps C launches in flight (separate offers) instead of one.
``--checkpoint`` makes the framework checkpointing (the agent then fsyncs each update first).

``--tasks-per-s N`` measures throughput instead: a real master and two real agents
(``cpus:4;mem:8192`` each), and a framework written with the SDK's asyncio client that packs
every offer with as many ``cpus:0.1;mem:32`` tasks as fit (40 per agent in flight) until N
tasks were launched, acknowledging every update. It prints ``tasks_per_s`` (N over the time
from the first ACCEPT to the N-th terminal update), ``failed`` (tasks that did not finish),
the accept-to-RUNNING ``p50``/``p99``/``max`` over all N, the isolation line, and
``cpu_ms_per_task``: the CPU used from the first ACCEPT to the N-th end, per task, by the
framework (this process), the master, the agents' own processes, their launch fork servers and
the agents' reaped children (the launch helpers, namespace inits and tasks), read from
``/proc``: on a machine whose CPUs are saturated, throughput is two cores over their total.

Every process the benchmark starts (master, agents and their tasks) is stopped when it ends,
also by an exception, SIGTERM/SIGHUP or SIGINT, and, through the kernel's parent-death signal,
when it is SIGKILLed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from bench._common import (
    cpu_seconds,
    emit,
    kill_children_on_signals,
    machine,
    percentile,
    rounded,
    start_child,
)
from framework_sdk import CallRefusedError, SchedulerClient, events, messages
from protos.resources import Resources
from protos.v1 import mesos_pb2, scheduler_pb2
from protos.v1 import scheduler_pb2_grpc as sched_grpc

Call = scheduler_pb2.Call
Event = scheduler_pb2.Event
ROOT = Path(__file__).resolve().parents[1]
TASK_RESOURCES = "cpus:0.1;mem:32"
WAIT = 120.0


def start_process(
    args: list[str], log: Path, pattern: str, stop: signal.Signals = signal.SIGKILL
) -> tuple[subprocess.Popen[str], re.Match[str]]:
    """Start a child that dies with the benchmark (``stop``: how it is asked to, at most 30 s
    before SIGKILL); its first stdout line must match ``pattern``."""
    with log.open("ab") as err:
        process = start_child(
            args,
            death_signal=stop,
            stop_signal=stop,
            grace=30.0,
            stdout=subprocess.PIPE,
            stderr=err,
            cwd=ROOT,
            text=True,
        )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(pattern, line)
    if match is None:
        process.kill()
        process.wait()
        raise SystemExit(f"could not start {args[2]}: {line!r}\n{log.read_text()[-2000:]}")
    return process, match


class Framework:
    """A raw-stub framework that launches one task per offer and times it to TASK_RUNNING."""

    def __init__(self, address: str, checkpoint: bool) -> None:
        self.channel = grpc.insecure_channel(address)
        self.stub = sched_grpc.SchedulerStub(self.channel)
        self.info = mesos_pb2.FrameworkInfo(user="", name="launch-latency", checkpoint=checkpoint)
        self.metadata: tuple[tuple[str, str], ...] = ()
        self.offers: list[mesos_pb2.Offer] = []
        self.accepted_at: dict[str, float] = {}
        self.latencies: dict[str, float] = {}
        self.cond = threading.Condition()
        self.subscribed = threading.Event()

    def run(self) -> None:
        call = Call(type=Call.SUBSCRIBE)
        call.subscribe.framework_info.CopyFrom(self.info)
        stream = self.stub.Subscribe(call)
        self.metadata = (
            ("mesos-stream-id", str(dict(stream.initial_metadata()).get("mesos-stream-id", ""))),
        )
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()
        if not self.subscribed.wait(WAIT):
            raise SystemExit("the framework did not get SUBSCRIBED")

    def _read(self, stream: Any) -> None:
        try:
            for event in stream:
                now = time.perf_counter()
                if event.type == Event.SUBSCRIBED:
                    self.info.id.CopyFrom(event.subscribed.framework_id)
                    self.subscribed.set()
                elif event.type == Event.OFFERS:
                    with self.cond:
                        self.offers.extend(event.offers.offers)
                        self.cond.notify_all()
                elif event.type == Event.UPDATE:
                    self._update(event.update.status, now)
        except grpc.RpcError:
            pass

    def _update(self, status: mesos_pb2.TaskStatus, now: float) -> None:
        task_id = status.task_id.value
        with self.cond:
            if status.state == mesos_pb2.TASK_RUNNING and task_id not in self.latencies:
                self.latencies[task_id] = now - self.accepted_at[task_id]
                self.cond.notify_all()
        if status.uuid:
            ack = Call(type=Call.ACKNOWLEDGE)
            ack.acknowledge.agent_id.CopyFrom(status.agent_id)
            ack.acknowledge.task_id.CopyFrom(status.task_id)
            ack.acknowledge.uuid = status.uuid
            self._call("Acknowledge", ack)

    def _call(self, method: str, call: scheduler_pb2.Call) -> None:
        call.framework_id.CopyFrom(self.info.id)
        getattr(self.stub, method)(call, metadata=self.metadata)

    def launch(self, task_id: str, command: str) -> None:
        """Take an offer (waiting for one) and launch one task on it."""
        with self.cond:
            if not self.cond.wait_for(lambda: self.offers, WAIT):
                raise SystemExit("no offer came")
            offer = self.offers.pop(0)
        role = offer.allocation_info.role if offer.HasField("allocation_info") else None
        operation = mesos_pb2.Offer.Operation(type=mesos_pb2.Offer.Operation.LAUNCH)
        task = operation.launch.task_infos.add(name=task_id)
        task.task_id.value = task_id
        task.agent_id.CopyFrom(offer.agent_id)
        task.resources.extend(Resources.parse(TASK_RESOURCES).to_protos(allocation_role=role))
        task.command.value = command
        accept = Call(type=Call.ACCEPT)
        accept.accept.offer_ids.append(offer.id)
        accept.accept.operations.append(operation)
        accept.accept.filters.refuse_seconds = 0
        with self.cond:
            self.accepted_at[task_id] = time.perf_counter()
        self._call("Accept", accept)

    def wait_running(self, count: int) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.latencies) >= count, WAIT):
                raise SystemExit(f"only {len(self.latencies)} of {count} tasks reached RUNNING")

    def close(self) -> None:
        self.channel.close()


@dataclass
class Cluster:
    """A running cluster: the master's address, the work directory, and the process ids."""

    address: str
    work: Path
    master_pid: int = 0
    agent_pids: list[int] = field(default_factory=list)

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far, by part: the master, the agents' own processes, their
        launch fork servers, and the agents' reaped children (the helpers, the namespace
        inits and the tasks, which all count there once reaped)."""
        master = _proc_cpu(self.master_pid)
        agents = helpers = servers = 0.0
        for pid in self.agent_pids:
            own, children = _proc_cpu(pid), _proc_cpu(pid, children=True)
            agents += own
            helpers += children
            for child in _children(pid):
                if "--fork-server" in _cmdline(child):
                    servers += _proc_cpu(child)
        return {"master": master, "agents": agents, "fork_servers": servers, "helpers": helpers}


def _proc_cpu(pid: int, *, children: bool = False) -> float:
    """utime + stime (or cutime + cstime: reaped children) of ``pid`` in seconds; 0 if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(b")") + 2 :].split()
    first = 13 if children else 11  # utime, stime are fields 14 and 15; cutime, cstime 16, 17
    return (int(fields[first]) + int(fields[first + 1])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError, ValueError):
            found.extend(int(c) for c in (task / "children").read_text().split())
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@contextlib.contextmanager
def cluster(agents: int) -> Iterator[Cluster]:
    """A real master and ``agents`` real agents in a temporary directory (the cluster);
    everything is stopped and removed at the end."""
    work = Path(tempfile.mkdtemp(prefix="launch-latency-"))
    processes: list[subprocess.Popen[str]] = []
    try:
        master, found = start_process(
            [
                sys.executable,
                "-m",
                "master",
                "--port",
                "0",
                "--http-port",
                "0",
                "--registry",
                "memory",
                "--allocation-interval",
                "10ms",
            ],
            work / "master.log",
            r"listening on (\S+)",
        )
        processes.append(master)
        address = found.group(1)
        running = Cluster(address, work, master.pid)
        for index in range(agents):
            agent, _ = start_process(
                [
                    sys.executable,
                    "-m",
                    "agent",
                    "--master",
                    address,
                    "--work-dir",
                    str(work / f"agent{index}"),
                    "--port",
                    "0",
                    "--ip",
                    "127.0.0.1",
                    "--resources",
                    "cpus:4;mem:8192;disk:8192",
                    "--registration-backoff-factor",
                    "10ms",
                ],
                work / f"agent{index}.log",
                r"emporion agent: http=",
                signal.SIGUSR1,  # The agent's shutdown: its tasks are killed too.
            )
            processes.insert(0, agent)  # Agents stop first, killing their tasks.
            running.agent_pids.append(agent.pid)
        yield running
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM if process is master else signal.SIGUSR1)
                try:
                    process.wait(60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.stdout is not None:
                process.stdout.close()
        shutil.rmtree(work, ignore_errors=True)


def isolation_line(work: Path, agent: str = "agent0") -> str:
    """The isolation an agent reported at start (its log line)."""
    found = re.search(r"INFO agent: (isolation .*)", (work / f"{agent}.log").read_text())
    return found.group(1) if found else "unknown"


def measure(tasks: int, concurrency: int, command: str, checkpoint: bool) -> dict[str, Any]:
    """Run the benchmark in a fresh master + agent; the figures."""
    with cluster(1) as running:
        work = running.work
        framework = Framework(running.address, checkpoint)
        framework.run()
        for index in range(tasks):
            framework.wait_running(max(0, index - concurrency + 1))
            framework.launch(f"task-{index}", command)
        framework.wait_running(tasks)
        framework.close()
        values = list(framework.latencies.values())
        isolation = isolation_line(work)
        return {
            "benchmark": "launch_latency",
            "tasks": tasks,
            "concurrency": concurrency,
            "command": command,
            "checkpoint": checkpoint,
            "accept_to_running_p50_s": rounded(percentile(values, 50)),
            "accept_to_running_p99_s": rounded(percentile(values, 99)),
            "accept_to_running_max_s": rounded(max(values)),
            "isolation": isolation,
            "driver": "real master, real agent, raw scheduler stub",
            "machine": machine(),
        }


class Throughput:
    """The SDK framework of ``--tasks-per-s``: packs offers with tasks until N were launched."""

    def __init__(
        self, tasks: int, command: str, agents: int, cpu: Callable[[], dict[str, float]]
    ) -> None:
        self.tasks = tasks
        self.cpu = cpu
        """CPU seconds so far by part; taken at the first ACCEPT and at the N-th end."""
        self.cpu_at_start: dict[str, float] = {}
        self.cpu_at_end: dict[str, float] = {}
        self.command = command
        self.agents = agents
        self.resources = Resources.parse(TASK_RESOURCES)
        self.launched = 0
        self.accepted_at: dict[str, float] = {}
        self.latencies: list[float] = []
        self.ended: set[str] = set()
        self.failed: dict[str, str] = {}
        self.offered_agents: set[str] = set()
        self.first_accept: float | None = None
        self.last_end: float | None = None

    async def run(self, address: str) -> None:
        info = messages.framework_info("launch-throughput")
        async with SchedulerClient(address, info) as client:
            async for event in client.events():
                now = time.perf_counter()
                match event:
                    case events.Offers(offers=offers):
                        await self._offers(client, offers)
                    case events.Update(status=status):
                        self._update(status, now)
                        if status.uuid:
                            await client.acknowledge(status)
                        if len(self.ended) >= self.tasks:
                            self.last_end = now
                            self.cpu_at_end = self.cpu()
                            # Refused only when an earlier try (its answer lost on a loaded
                            # machine, then retried) already tore the framework down.
                            with contextlib.suppress(CallRefusedError):
                                await client.teardown()
                            return

    async def _offers(self, client: SchedulerClient, offers: Sequence[mesos_pb2.Offer]) -> None:
        self.offered_agents.update(offer.agent_id.value for offer in offers)
        for offer in offers:
            tasks = []
            available = messages.offer_resources(offer)
            # Start once every agent offered, so both take part from the first launch.
            ready = len(self.offered_agents) >= self.agents or self.launched
            while ready and self.launched < self.tasks and available.contains(self.resources):
                task_id = f"task-{self.launched}"
                tasks.append(
                    messages.task_info(task_id, offer, self.resources, command=self.command)
                )
                available -= self.resources
                self.launched += 1
            if not tasks:
                await client.decline([offer.id], messages.filters(refuse_seconds=0.05))
                continue
            now = time.perf_counter()
            if self.first_accept is None:
                self.first_accept = now
                self.cpu_at_start = self.cpu()
            for task in tasks:
                self.accepted_at[task.task_id.value] = now
            await client.launch([offer.id], tasks, messages.filters(refuse_seconds=0))

    def _update(self, status: mesos_pb2.TaskStatus, now: float) -> None:
        task_id = status.task_id.value
        accepted = self.accepted_at.pop(task_id, None)
        if status.state == mesos_pb2.TASK_RUNNING and accepted is not None:
            self.latencies.append(now - accepted)
        if messages.is_terminal(status.state) and task_id not in self.ended:
            self.ended.add(task_id)
            if status.state != mesos_pb2.TASK_FINISHED:
                self.failed[task_id] = f"{mesos_pb2.TaskState.Name(status.state)}: {status.message}"


def measure_throughput(tasks: int, command: str, agents: int = 2) -> dict[str, Any]:
    """``--tasks-per-s``: N tasks through ``agents`` real agents, as many in flight as fit."""
    with cluster(agents) as running:

        def cpu() -> dict[str, float]:
            return {"framework": cpu_seconds(), **running.cpu()}

        framework = Throughput(tasks, command, agents, cpu)
        asyncio.run(asyncio.wait_for(framework.run(running.address), WAIT * 10))
        if framework.first_accept is None or framework.last_end is None:
            raise SystemExit(f"only {len(framework.ended)} of {tasks} tasks ended")
        elapsed = framework.last_end - framework.first_accept
        values = framework.latencies
        cpu_ms = {
            part: round((framework.cpu_at_end[part] - start) * 1000 / tasks, 2)
            for part, start in framework.cpu_at_start.items()
        }
        work = running.work
        return {
            "benchmark": "launch_throughput_real_agents",
            "tasks": tasks,
            "agents": agents,
            "command": command,
            "tasks_per_s": round(tasks / elapsed, 1),
            "elapsed_s": rounded(elapsed, 3),
            "failed": len(framework.failed),
            "failures": sorted(set(framework.failed.values()))[:5],
            "accept_to_running_p50_s": rounded(percentile(values, 50)),
            "accept_to_running_p99_s": rounded(percentile(values, 99)),
            "accept_to_running_max_s": rounded(max(values)) if values else None,
            "cpu_ms_per_task": {**cpu_ms, "total": round(sum(cpu_ms.values()), 2)},
            "isolation": isolation_line(work),
            "driver": "real master, two real agents, SDK asyncio framework",
            "machine": machine(),
        }


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags, measure, print the JSON line."""
    parser = argparse.ArgumentParser(prog="python -m bench.launch_latency", description=__doc__)
    parser.add_argument("--tasks", type=int, default=100, help="tasks to launch [100]")
    parser.add_argument("--concurrency", type=int, default=1, help="launches in flight [1]")
    parser.add_argument("--command", default="true", help="the tasks' command [true]")
    parser.add_argument("--checkpoint", action="store_true", help="a checkpointing framework")
    parser.add_argument(
        "--tasks-per-s",
        type=int,
        metavar="N",
        help="throughput instead: N tasks through two real agents, as many in flight as fit",
    )
    ns = parser.parse_args(argv)
    if ns.tasks < 1 or ns.concurrency < 1:
        parser.error("--tasks and --concurrency must be at least 1")
    if ns.tasks_per_s is not None:
        if ns.tasks_per_s < 1:
            parser.error("--tasks-per-s must be at least 1")
        emit(measure_throughput(ns.tasks_per_s, ns.command))
        return 0
    emit(measure(ns.tasks, ns.concurrency, ns.command, ns.checkpoint))
    return 0


if __name__ == "__main__":
    kill_children_on_signals()  # Killed by a timeout, it still stops its master and agent.
    raise SystemExit(main())
