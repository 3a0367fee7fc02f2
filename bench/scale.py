"""Scale: one master and many emulated agents, size after size.

``python -m bench.scale --agents 1000,5000,10000,25000,50000`` runs, for each size, a fresh
master in its own process (``python -m master``, file registry in a temporary work dir) and
``--emulator-processes`` agent emulators (``python -m emporion.testing.agent_emulator``, each
its share of the agents, all told to begin at the same instant with ``--start-at``), and prints
one JSON object per size:

* ``registration_s``, ``agents_per_s``: from that instant until the last emulator has every
  agent registered.
* ``tasks_per_s``: ``--frameworks`` frameworks (those of :mod:`bench.launch_throughput`, in
  this process) launch ``--tasks`` small tasks, packing each offer; the N-th TASK_RUNNING seen
  over the time since the first ACCEPT. The tasks keep running; the frameworks then suppress.
* ``offer_latency_p50_s`` / ``_p99_s``: resources freed → offered to a framework that wants
  them. A probe framework keeps ``--probe-agents`` small tasks, one per agent, and declines
  everything else for an hour; it kills a task (``--probe-inflight`` at a time) and, when the
  TASK_KILLED update arrives (the master freed the resources as it handled that update), waits
  for the offer of that agent, which it takes with a new task. ``kill_to_offer_*`` counts from
  the KILL call instead.
* ``state_summary_s``, ``slaves_s``, ``agents_page_s``: the slowest of ``--http-tries`` GETs of
  ``/master/state-summary``, of ``/master/slaves`` (every agent), and of one page
  (``limit`` 100, from the middle) of the operator API's ``GET_AGENTS``; with their sizes.
* ``master_rss_mb`` (and the peak, ``master_peak_rss_mb``) at the end; with
  ``--agent-gateways N`` (the master's flag: N processes end the agents' streams and relay
  them, docs/scale.md) also ``gateways_rss_mb`` and ``gateways_cpu_s``, their sum.
* ``idle_master_cpu_pct``: the master's CPU over ``--idle-seconds`` once nothing happens but
  liveness checks and heartbeats, with the emulators' beside it. An answering agent is pinged
  once per 24 ``--agent-ping-timeout`` (``master.core.liveness``; spread over that interval, so
  ``--idle-seconds`` shorter than it sees a share of them); HTTP/2 keepalive PINGs every
  ``--agent-ping-timeout`` cost no Python, and here go over the emulators' few connections
  (one per 1,000 agents), not one per agent as with real agents.

Every child dies with the benchmark however it ends (:func:`bench._common.start_child`). On a
small machine the emulators and the master compete for the same cores: ``emulator_cpu_s``
says how much the agents' side took while registering.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import grpc
import grpc.aio

from bench._common import emit, kill_children_on_signals, machine, percentile, rounded, start_child
from bench.launch_throughput import BenchFramework, Totals, process_cpu_seconds
from protos.resources import Resources
from protos.v1 import mesos_pb2, scheduler_pb2
from protos.v1 import scheduler_pb2_grpc as sched_grpc

Call = scheduler_pb2.Call
Event = scheduler_pb2.Event
_ADDRESS = re.compile(r"(\d{1,3}(?:\.\d{1,3}){3}|localhost):(\d{1,5})\b")
_HOUR = mesos_pb2.Filters(refuse_seconds=3600.0)
_TERMINAL = frozenset(
    {
        mesos_pb2.TASK_FINISHED,
        mesos_pb2.TASK_FAILED,
        mesos_pb2.TASK_KILLED,
        mesos_pb2.TASK_ERROR,
        mesos_pb2.TASK_LOST,
        mesos_pb2.TASK_DROPPED,
        mesos_pb2.TASK_GONE,
        mesos_pb2.TASK_UNREACHABLE,
    }
)
_CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 256 * 1024 * 1024)]


# -- processes ------------------------------------------------------------------------------------


@dataclass
class Child:
    """A child process whose stdout a thread reads, noting when a line starting with
    ``marker`` came."""

    process: subprocess.Popen[str]
    marker: str
    seen_at: float | None = None
    seen_line: str = ""
    seen: threading.Event = field(default_factory=threading.Event)
    lines: list[str] = field(default_factory=list)

    def read(self, stream: IO[str]) -> None:
        with stream:
            for line in stream:
                if self.seen_at is None and line.startswith(self.marker):
                    self.seen_at = time.time()
                    self.seen_line = line
                    self.seen.set()
                if len(self.lines) < 20:
                    self.lines.append(line)
        self.seen.set()  # ended (perhaps without the marker): stop waiting

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def spawn(args: list[str], marker: str, log: IO[bytes]) -> Child:
    """Start ``args`` (dying with this process), reading its stdout in a thread."""
    process = start_child(args, stdout=subprocess.PIPE, stderr=log, text=True)
    child = Child(process, marker)
    assert process.stdout is not None
    threading.Thread(target=child.read, args=(process.stdout,), daemon=True).start()
    return child


@contextlib.contextmanager
def cluster(ns: argparse.Namespace, agents: int, work: Path) -> Iterator[dict[str, Any]]:
    """A master and its emulators for ``agents``; yields what :func:`measure` needs."""
    children: list[Child] = []
    with contextlib.ExitStack() as stack:
        log = stack.enter_context((work / "processes.log").open("wb"))
        args = [sys.executable, "-m", "master", "--port", "0", "--http-port", "0"]
        args += ["--work-dir", str(work / "master"), "--log-level", "WARNING"]
        args += ["--agent-ping-timeout", ns.agent_ping_timeout, *ns.master_arg]
        if ns.agent_gateways:
            args += ["--agent-gateways", str(ns.agent_gateways)]
        master = spawn(args, "Emporion master", log)
        stack.callback(master.stop, signal.SIGINT)  # Last: the emulators stop first.
        stack.callback(_stop_all, children)
        if not master.seen.wait(60) or master.seen_at is None:
            raise RuntimeError(f"the master did not start: {''.join(master.lines)}")
        found = _ADDRESS.findall(master.seen_line)
        if len(found) < 2:
            raise RuntimeError(f"no gRPC and HTTP address in {master.seen_line!r}")
        grpc_address, http_address = (f"{h}:{p}" for h, p in found[:2])
        # With gateways the master prints the agents' port third: the emulators go there.
        agents_address = f"{found[2][0]}:{found[2][1]}" if len(found) > 2 else grpc_address
        processes = ns.emulator_processes or max(1, math.ceil(agents / 12500))
        start_at = time.time() + ns.emulator_start_s
        first = 0
        for i in range(processes):
            count = agents // processes + (i < agents % processes)
            args = [sys.executable, "-m", "emporion.testing.agent_emulator"]
            args += [
                "--master",
                agents_address,
                "--agents",
                str(count),
                "--first-index",
                str(first),
            ]
            args += ["--mode", "run", "--resources", ns.agent_resources]
            channels = ns.emulator_channels or max(1, math.ceil(count / 1000))
            args += ["--channels", str(channels)]
            args += ["--register-timeout", f"{ns.timeout}secs", "--start-at", repr(start_at)]
            children.append(spawn(args, "registered", log))
            first += count
        yield {
            "grpc": grpc_address,
            "http": http_address,
            "master": master.process.pid,
            "emulators": children,
            "start_at": start_at,
            "processes": processes,
        }


def _stop_all(children: list[Child]) -> None:
    for child in children:
        child.process.send_signal(signal.SIGTERM)  # All at once; then wait for each.
    for child in children:
        child.stop()


def gateway_pids(master_pid: int) -> list[int]:
    """The master's agent gateway processes (``--agent-gateways``), by their command line."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == master_pid and b"master.gateway" in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


def rss_mb(pid: int) -> tuple[float | None, float | None]:
    """Resident and peak resident memory of ``pid`` in MB."""
    values: dict[str, float] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0]) / 1024
    return values.get("VmRSS"), values.get("VmHWM")


# -- the probe framework ----------------------------------------------------------------------


class Prober:
    """Keeps one small task on each of ``agents`` agents, kills them in turn and times how long
    the freed resources take to come back as an offer (see the module doc)."""

    def __init__(
        self, channel: grpc.aio.Channel, agents: int, samples: int, inflight: int, task: str
    ) -> None:
        self.stub = sched_grpc.SchedulerStub(channel)
        self.agents = agents
        self.samples = samples
        self.inflight = inflight
        self.task_resources = Resources.parse(task)
        self.framework_id = mesos_pb2.FrameworkID()
        self.metadata: tuple[tuple[str, str], ...] = ()
        self.running: dict[str, str] = {}  # task id -> agent id
        self.placed = 0
        self.killed_at: dict[str, float] = {}  # task id -> when KILL was sent
        self.freed_at: dict[str, tuple[float, float]] = {}  # agent -> (killed, freed)
        self.latency: list[float] = []
        self.kill_latency: list[float] = []
        self.next_task = 0
        self.ready = asyncio.Event()
        self.done = asyncio.Event()
        self.failure: str | None = None
        self.background: set[asyncio.Task[Any]] = set()

    async def run(self) -> None:
        info = mesos_pb2.FrameworkInfo(user="bench", name="scale-probe")
        call = self.stub.Subscribe(
            Call(type=Call.SUBSCRIBE, subscribe=Call.Subscribe(framework_info=info))
        )
        stream_id = dict(await call.initial_metadata()).get("mesos-stream-id", "")
        self.metadata = (("mesos-stream-id", str(stream_id)),)
        async for event in call:
            self._on_event(event)

    def _on_event(self, event: Event) -> None:
        now = time.time()
        if event.type == Event.SUBSCRIBED:
            self.framework_id.CopyFrom(event.subscribed.framework_id)
        elif event.type == Event.OFFERS:
            unused = []
            for offer in event.offers.offers:
                agent = offer.agent_id.value
                freed = self.freed_at.pop(agent, None)
                if freed is not None:
                    self.latency.append(now - freed[1])
                    self.kill_latency.append(now - freed[0])
                    self._launch(offer)
                elif self.placed < self.agents and self._fits(offer):
                    self.placed += 1
                    self._launch(offer)
                else:
                    unused.append(offer.id)
            if unused:
                decline = Call.Decline(offer_ids=unused, filters=_HOUR)
                self._call(self.stub.Decline, Call(type=Call.DECLINE, decline=decline))
        elif event.type == Event.UPDATE:
            self._on_update(event.update.status, now)
        elif event.type == Event.ERROR:
            self._fail(f"probe framework: ERROR {event.error.message}")

    def _fits(self, offer: mesos_pb2.Offer) -> bool:
        available = Resources.from_protos(offer.resources)
        needs = self.task_resources.scalar_totals().items()
        return all(available.get(name) >= need for name, need in needs)

    def _launch(self, offer: mesos_pb2.Offer) -> None:
        role = offer.allocation_info.role if offer.HasField("allocation_info") else None
        task = mesos_pb2.TaskInfo(
            name="probe",
            resources=self.task_resources.to_protos(allocation_role=role),
            command=mesos_pb2.CommandInfo(value="sleep 3600"),
        )
        task.task_id.value = f"probe.{self.next_task}"
        self.next_task += 1
        task.agent_id.CopyFrom(offer.agent_id)
        launch = mesos_pb2.Offer.Operation(
            type=mesos_pb2.Offer.Operation.LAUNCH,
            launch=mesos_pb2.Offer.Operation.Launch(task_infos=[task]),
        )
        accept = Call.Accept(offer_ids=[offer.id], operations=[launch], filters=_HOUR)
        self._call(self.stub.Accept, Call(type=Call.ACCEPT, accept=accept))

    def _on_update(self, status: mesos_pb2.TaskStatus, now: float) -> None:
        if status.uuid:
            ack = Call(type=Call.ACKNOWLEDGE)
            ack.acknowledge.agent_id.CopyFrom(status.agent_id)
            ack.acknowledge.task_id.CopyFrom(status.task_id)
            ack.acknowledge.uuid = status.uuid
            self._call(self.stub.Acknowledge, ack)
        task_id = status.task_id.value
        if status.state == mesos_pb2.TASK_RUNNING and task_id not in self.running:
            self.running[task_id] = status.agent_id.value
            if len(self.running) >= self.agents:
                self.ready.set()
            self._kill_more()
        elif status.state == mesos_pb2.TASK_KILLED and task_id in self.killed_at:
            self.running.pop(task_id, None)
            self.freed_at[status.agent_id.value] = (self.killed_at.pop(task_id), now)
        elif status.state in _TERMINAL and task_id not in self.killed_at:
            state = mesos_pb2.TaskState.Name(status.state)
            self._fail(f"probe task {task_id}: {state}: {status.message}")

    def start_probing(self) -> None:
        """Begin the kills (once every probe task runs)."""
        self._kill_more()

    def _kill_more(self) -> None:
        if not self.ready.is_set():
            return
        if len(self.latency) >= self.samples:
            self.done.set()
            return
        started = len(self.latency) + len(self.killed_at) + len(self.freed_at)
        room = min(self.inflight - len(self.killed_at) - len(self.freed_at), self.samples - started)
        candidates = (t for t in self.running if t not in self.killed_at)
        for task_id in list(_take(candidates, room)):
            self.killed_at[task_id] = time.time()
            kill = Call(type=Call.KILL)
            kill.kill.task_id.value = task_id
            kill.kill.agent_id.value = self.running[task_id]
            self._call(self.stub.Kill, kill)

    def _call(self, method: Any, call: Call) -> None:
        call.framework_id.CopyFrom(self.framework_id)
        task = asyncio.create_task(self._checked(method, call))
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def _checked(self, method: Any, call: Call) -> None:
        try:
            await method(call, metadata=self.metadata)
        except grpc.aio.AioRpcError as error:
            self._fail(f"probe {Call.Type.Name(call.type)}: {error.code().name}: {error.details()}")

    def _fail(self, why: str) -> None:
        self.failure = why
        self.ready.set()
        self.done.set()


def _take(items: Iterator[str], n: int) -> Iterator[str]:
    for _, item in zip(range(max(n, 0)), items, strict=False):
        yield item


# -- HTTP -----------------------------------------------------------------------------------------


def _http(url: str, body: dict[str, Any] | None = None) -> tuple[float, int]:
    """Seconds to fetch ``url`` whole (POSTing ``body`` as JSON if given), and the bytes read."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=300) as response:
        size = len(response.read())
    return time.perf_counter() - started, size


async def http_figures(http: str, agents: int, tries: int) -> dict[str, Any]:
    """The slowest of ``tries`` answers of each operator endpoint measured."""
    base = f"http://{http}"
    page = {"type": "GET_AGENTS", "get_agents": {"limit": 100, "offset": agents // 2}}
    out: dict[str, Any] = {}
    for name, url, body in (
        ("state_summary", f"{base}/master/state-summary", None),
        ("slaves", f"{base}/master/slaves", None),
        ("agents_page", f"{base}/api/v1", page),
    ):
        times, size = [], 0
        for _ in range(tries):
            seconds, size = await asyncio.to_thread(_http, url, body)
            times.append(seconds)
        out[f"{name}_s"] = round(max(times), 4)
        out[f"{name}_bytes"] = size
    return out


# -- one size -------------------------------------------------------------------------------------


async def measure(
    ns: argparse.Namespace, agents: int, run: dict[str, Any], figures: dict[str, Any]
) -> None:
    """Registration, launches, offer latency, HTTP, memory and idle CPU for one cluster, into
    ``figures`` (what was measured stays there if a later phase fails)."""
    figures["emulator_processes"] = run["processes"]
    emulators: list[Child] = run["emulators"]
    master_pid: int = run["master"]
    deadline = time.time() + ns.timeout
    await asyncio.sleep(max(0.0, run["start_at"] - time.time()))
    cpu0 = process_cpu_seconds(master_pid)
    gateways = gateway_pids(master_pid)
    gateways_cpu0 = sum(process_cpu_seconds(g) for g in gateways)
    for emulator in emulators:
        await asyncio.to_thread(emulator.seen.wait, max(1.0, deadline - time.time()))
        if emulator.seen_at is None:
            raise RuntimeError(f"an emulator failed: {''.join(emulator.lines)[-2000:]}")
    registered = max(e.seen_at for e in emulators if e.seen_at is not None)
    figures["registration_s"] = round(registered - run["start_at"], 3)
    figures["agents_per_s"] = round(agents / max(registered - run["start_at"], 1e-9), 1)
    # On a shared machine wall time depends on the load; CPU time much less.
    figures["registration_master_cpu_s"] = round(process_cpu_seconds(master_pid) - cpu0, 2)
    if gateways:
        gateways_cpu = sum(process_cpu_seconds(g) for g in gateways) - gateways_cpu0
        figures["registration_gateways_cpu_s"] = round(gateways_cpu, 2)
    figures["emulator_cpu_s"] = round(sum(process_cpu_seconds(e.process.pid) for e in emulators), 2)

    channel = grpc.aio.insecure_channel(run["grpc"], options=_CHANNEL_OPTIONS)
    totals = Totals(target=ns.tasks)
    shares = [
        ns.tasks // ns.frameworks + (i < ns.tasks % ns.frameworks) for i in range(ns.frameworks)
    ]
    task = Resources.parse(ns.task_resources)
    frameworks = [BenchFramework(i, channel, s, task, totals) for i, s in enumerate(shares)]
    runs = [asyncio.create_task(f.run()) for f in frameworks]
    cpu0 = process_cpu_seconds(master_pid)
    try:
        await asyncio.wait_for(totals.running_done.wait(), max(1.0, deadline - time.time()))
    except TimeoutError:
        totals.failure = f"{totals.running} of {ns.tasks} tasks running at the deadline"
    if totals.failure:
        raise RuntimeError(totals.failure)
    first = totals.first_accept_at
    done = totals.running_done_at
    figures["tasks"] = ns.tasks
    if first is not None and done is not None and done > first:
        figures["tasks_per_s"] = round(ns.tasks / (done - first), 1)
    figures["launch_master_cpu_s"] = round(process_cpu_seconds(master_pid) - cpu0, 2)

    probes = min(ns.probe_agents, agents)
    prober = Prober(channel, probes, ns.probes, ns.probe_inflight, ns.probe_resources)
    runs.append(asyncio.create_task(prober.run()))
    try:
        await asyncio.wait_for(prober.ready.wait(), max(1.0, deadline - time.time()))
        prober.start_probing()
        await asyncio.wait_for(prober.done.wait(), max(1.0, deadline - time.time()))
    except TimeoutError:
        prober.failure = f"{len(prober.latency)} of {ns.probes} probes at the deadline"
    if prober.failure:
        raise RuntimeError(prober.failure)
    figures["offer_latency_p50_s"] = rounded(percentile(prober.latency, 50))
    figures["offer_latency_p99_s"] = rounded(percentile(prober.latency, 99))
    figures["offer_latency_max_s"] = rounded(max(prober.latency, default=None))
    figures["kill_to_offer_p50_s"] = rounded(percentile(prober.kill_latency, 50))
    figures["kill_to_offer_p99_s"] = rounded(percentile(prober.kill_latency, 99))
    figures["probes"] = len(prober.latency)

    figures.update(await http_figures(run["http"], agents, ns.http_tries))
    await asyncio.sleep(ns.settle_seconds)
    master0 = process_cpu_seconds(master_pid)
    emulators0 = sum(process_cpu_seconds(e.process.pid) for e in emulators)
    await asyncio.sleep(ns.idle_seconds)
    master_cpu = process_cpu_seconds(master_pid) - master0
    emulator_cpu = sum(process_cpu_seconds(e.process.pid) for e in emulators) - emulators0
    figures["idle_master_cpu_pct"] = round(100 * master_cpu / ns.idle_seconds, 1)
    figures["idle_master_cpu_pct_per_1000_agents"] = round(
        100 * master_cpu / ns.idle_seconds / agents * 1000, 2
    )
    figures["idle_emulators_cpu_pct"] = round(100 * emulator_cpu / ns.idle_seconds, 1)
    rss, peak = rss_mb(master_pid)
    figures["master_rss_mb"] = rounded(rss, 1)
    figures["master_peak_rss_mb"] = rounded(peak, 1)
    gateways = gateway_pids(master_pid)
    if gateways:  # Their memory and CPU are the agents' streams' cost, outside the master.
        figures["agent_gateways"] = len(gateways)
        figures["gateways_rss_mb"] = rounded(sum(rss_mb(g)[0] or 0.0 for g in gateways), 1)
        figures["gateways_cpu_s"] = round(sum(process_cpu_seconds(g) for g in gateways), 2)
    for r in runs:
        r.cancel()
    await asyncio.gather(*runs, return_exceptions=True)
    await channel.close(None)


def one_size(ns: argparse.Namespace, agents: int) -> dict[str, Any]:
    """Figures of one cluster size (with ``error`` if it could not be measured whole)."""
    with tempfile.TemporaryDirectory(prefix="emporion-scale-") as tmp:
        work = Path(tmp)
        figures: dict[str, Any] = {"benchmark": "scale", "agents": agents}
        try:
            with cluster(ns, agents, work) as run:
                asyncio.run(measure(ns, agents, run, figures))
        except (RuntimeError, OSError, grpc.RpcError) as error:
            figures["error"] = str(error)
            figures["log"] = (work / "processes.log").read_text(errors="replace")[-3000:]
    figures.update(
        tasks=ns.tasks,
        frameworks=ns.frameworks,
        agent_resources=ns.agent_resources,
        agent_ping_timeout=ns.agent_ping_timeout,
        **machine(),
    )
    return figures


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The benchmark's flags."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--agents", default="1000,5000,10000,25000,50000")
    parser.add_argument("--emulator-processes", type=int, default=0, help="0: one per 12,500")
    parser.add_argument(
        "--emulator-start-s",
        type=float,
        default=5.0,
        help="seconds given to the emulators to start before they connect",
    )
    parser.add_argument(
        "--emulator-channels",
        type=int,
        default=0,
        help="gRPC channels (TCP connections) per emulator; 0: one per 1,000 of its agents",
    )
    parser.add_argument("--agent-resources", default="cpus:8;mem:32768;disk:100000")
    parser.add_argument("--frameworks", type=int, default=10)
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--task-resources", default="cpus:0.01;mem:1")
    parser.add_argument("--probe-agents", type=int, default=100)
    parser.add_argument("--probes", type=int, default=300)
    parser.add_argument("--probe-inflight", type=int, default=4)
    parser.add_argument("--probe-resources", default="cpus:0.5;mem:64")
    parser.add_argument("--http-tries", type=int, default=3)
    parser.add_argument("--settle-seconds", type=float, default=3.0)
    parser.add_argument("--idle-seconds", type=float, default=15.0)
    parser.add_argument("--agent-ping-timeout", default="5secs", help="the master's flag")
    parser.add_argument(
        "--agent-gateways",
        type=int,
        default=0,
        help="the master's --agent-gateways: processes that end the agents' streams (0: none)",
    )
    parser.add_argument(
        "--master-arg", action="append", default=[], help="another flag for the master (repeatable)"
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per size")
    ns = parser.parse_args(argv)
    try:
        ns.sizes = [int(n) for n in ns.agents.split(",")]
    except ValueError:
        parser.error(f"--agents: {ns.agents!r} is not a comma-separated list of integers")
    if any(n < 1 for n in ns.sizes):
        parser.error(f"--agents: every size must be at least 1, got {ns.agents!r}")
    for name in ("frameworks", "tasks", "probe_agents", "probes", "probe_inflight", "http_tries"):
        if getattr(ns, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if ns.emulator_processes < 0 or ns.emulator_channels < 0:
        parser.error("--emulator-processes and --emulator-channels must be >= 0")
    for name in ("agent_resources", "task_resources", "probe_resources"):
        try:
            Resources.parse(getattr(ns, name))
        except ValueError as error:
            parser.error(f"--{name.replace('_', '-')}: {error}")
    if ns.idle_seconds <= 0 or ns.timeout <= 0:
        parser.error("--idle-seconds and --timeout must be positive")
    return ns


def main(argv: Sequence[str] | None = None) -> int:
    """Measure every size in turn; one JSON object each."""
    ns = parse_args(argv)
    failed = False
    for agents in ns.sizes:
        figures = one_size(ns, agents)
        failed = failed or "error" in figures
        emit(figures)
    return 1 if failed else 0


if __name__ == "__main__":
    kill_children_on_signals()  # A timeout's SIGTERM must not leave a master or emulator behind.
    raise SystemExit(main())
