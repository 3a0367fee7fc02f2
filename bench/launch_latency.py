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
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

from bench._common import (
    emit,
    kill_children_on_signals,
    machine,
    percentile,
    rounded,
    start_child,
)
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


def measure(tasks: int, concurrency: int, command: str, checkpoint: bool) -> dict[str, Any]:
    """Run the benchmark in a fresh master + agent; the figures."""
    work = Path(tempfile.mkdtemp(prefix="launch-latency-"))
    master = agent = None
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
        address = found.group(1)
        agent, _ = start_process(
            [
                sys.executable,
                "-m",
                "agent",
                "--master",
                address,
                "--work-dir",
                str(work / "agent"),
                "--port",
                "0",
                "--ip",
                "127.0.0.1",
                "--resources",
                "cpus:4;mem:8192;disk:8192",
                "--registration-backoff-factor",
                "10ms",
            ],
            work / "agent.log",
            r"emporion agent: http=",
            signal.SIGUSR1,  # The agent's shutdown: its tasks are killed too.
        )
        isolation = re.search(r"INFO agent: (isolation .*)", (work / "agent.log").read_text())
        framework = Framework(address, checkpoint)
        framework.run()
        for index in range(tasks):
            framework.wait_running(max(0, index - concurrency + 1))
            framework.launch(f"task-{index}", command)
        framework.wait_running(tasks)
        framework.close()
        values = list(framework.latencies.values())
        return {
            "benchmark": "launch_latency",
            "tasks": tasks,
            "concurrency": concurrency,
            "command": command,
            "checkpoint": checkpoint,
            "accept_to_running_p50_s": rounded(percentile(values, 50)),
            "accept_to_running_p99_s": rounded(percentile(values, 99)),
            "accept_to_running_max_s": rounded(max(values)),
            "isolation": isolation.group(1) if isolation else "unknown",
            "driver": "real master, real agent, raw scheduler stub",
            "machine": machine(),
        }
    finally:
        for process in (agent, master):
            if process is not None and process.poll() is None:
                process.send_signal(10 if process is agent else 15)  # SIGUSR1: kill all tasks
                try:
                    process.wait(60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process is not None and process.stdout is not None:
                process.stdout.close()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags, measure, print the JSON line."""
    parser = argparse.ArgumentParser(prog="python -m bench.launch_latency", description=__doc__)
    parser.add_argument("--tasks", type=int, default=100, help="tasks to launch [100]")
    parser.add_argument("--concurrency", type=int, default=1, help="launches in flight [1]")
    parser.add_argument("--command", default="true", help="the tasks' command [true]")
    parser.add_argument("--checkpoint", action="store_true", help="a checkpointing framework")
    ns = parser.parse_args(argv)
    if ns.tasks < 1 or ns.concurrency < 1:
        parser.error("--tasks and --concurrency must be at least 1")
    emit(measure(ns.tasks, ns.concurrency, ns.command, ns.checkpoint))
    return 0


if __name__ == "__main__":
    kill_children_on_signals()  # Killed by a timeout, it still stops its master and agent.
    raise SystemExit(main())
