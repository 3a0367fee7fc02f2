"""Agent back-pressure: one ACCEPT of thousands of tiny tasks onto one real agent.

``python -m bench.agent_backpressure --tasks 5000`` starts a real master (``--max-tasks-per-accept``
raised to ``--tasks``, so that one ACCEPT carries them all, as in issue 10) and a real agent
(``--max-concurrent-launches``, default the agent's own), subscribes a "flood" framework that
launches ``--tasks`` tasks of ``cpus:0.0001;mem:0.001`` running ``sleep 3600`` in one ACCEPT,
then an "other" framework that launches one task, and samples the agent's HTTP ``/state``
every 0.2 s throughout (its event loop's responsiveness: the same loop answers the master's
pings). After ``--flood-seconds`` the flood is torn down. It prints one JSON object:

* ``other_accept_to_running_s``: the other framework's ACCEPT to its TASK_RUNNING.
* ``agent_http_p50_s`` / ``_p99_s`` / ``_max_s``: the agent's ``/state`` answer times.
* ``agent_marked_unreachable``: whether the master ever marked the agent unreachable (it does
  after three unanswered pings, 15 s by default); ``agent_missed_pings``: whether the agent
  ever gave up on the master's pings.
* ``containers_at_teardown`` / ``containers_after_teardown``: containers the agent had started
  for the flood when the TEARDOWN was sent, and in the end (a launch cancelled while queued
  starts none), and ``teardown_to_gone_s``: the TEARDOWN to the agent holding nothing of it.
* ``flood_running_at_teardown``: the flood's tasks that had reached TASK_RUNNING.

Every process dies with the benchmark however it ends (:mod:`bench._common`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench._common import (
    emit,
    kill_children,
    kill_children_on_signals,
    machine,
    percentile,
    rounded,
)
from bench.launch_latency import Framework, start_process
from protos.resources import Resources
from protos.v1 import mesos_pb2, scheduler_pb2

Call = scheduler_pb2.Call
TINY = "cpus:0.0001;mem:0.001"
WAIT = 120.0


def _accept(framework: Framework, prefix: str, count: int, resources: str) -> float:
    """Launch ``count`` tasks in one ACCEPT on the next offer; when it was sent."""
    with framework.cond:
        if not framework.cond.wait_for(lambda: framework.offers, WAIT):
            raise SystemExit("no offer came")
        offer = framework.offers.pop(0)
    role = offer.allocation_info.role if offer.HasField("allocation_info") else None
    protos = Resources.parse(resources).to_protos(allocation_role=role)
    operation = mesos_pb2.Offer.Operation(type=mesos_pb2.Offer.Operation.LAUNCH)
    for index in range(count):
        task = operation.launch.task_infos.add(name=f"{prefix}{index}")
        task.task_id.value = f"{prefix}{index}"
        task.agent_id.CopyFrom(offer.agent_id)
        task.resources.extend(protos)
        task.command.value = "sleep 3600"
    accept = Call(type=Call.ACCEPT)
    accept.accept.offer_ids.append(offer.id)
    accept.accept.operations.append(operation)
    sent = time.perf_counter()
    with framework.cond:
        for task in operation.launch.task_infos:
            framework.accepted_at[task.task_id.value] = sent
    framework._call("Accept", accept)
    return sent


class Sampler:
    """Times the agent's ``/state`` every ``interval`` seconds in a thread."""

    def __init__(self, http: str, interval: float = 0.2) -> None:
        self.url = f"http://{http}/state"
        self.interval = interval
        self.times: list[float] = []
        self.last: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            began = time.perf_counter()
            try:
                with urllib.request.urlopen(self.url, timeout=60) as response:
                    self.last = json.load(response)
            except OSError:
                continue
            self.times.append(time.perf_counter() - began)

    def holds(self, framework_id: str) -> bool:
        """Whether the latest ``/state`` lists ``framework_id``."""
        return any(f["id"] == framework_id for f in self.last.get("frameworks", ()))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _started(work: Path, framework_id: str) -> int:
    """Containers started for ``framework_id``: sandboxes the launch helper wrote stderr into."""
    pattern = f"agents/*/frameworks/{framework_id}/executors/*/runs/*/stderr"
    return sum(1 for _ in work.glob(pattern))


def measure(ns: argparse.Namespace) -> dict[str, Any]:
    """Run the scenario in a fresh master and agent; the figures."""
    work = Path(tempfile.mkdtemp(prefix="agent-backpressure-"))
    master_args = [sys.executable, "-m", "master", "--port", "0", "--http-port", "0"]
    master_args += ["--registry", "memory", "--allocation-interval", "50ms"]
    master_args += ["--max-tasks-per-accept", str(ns.tasks)]
    sampler: Sampler | None = None
    try:
        _, found = start_process(master_args, work / "master.log", r"listening on (\S+)")
        address = found.group(1)
        agent_args = [sys.executable, "-m", "agent", "--master", address]
        agent_args += ["--work-dir", str(work / "agent"), "--port", "0", "--ip", "127.0.0.1"]
        agent_args += ["--resources", "cpus:4;mem:8192;disk:8192"]
        if ns.max_concurrent_launches:
            agent_args += ["--max-concurrent-launches", str(ns.max_concurrent_launches)]
        _, banner = start_process(
            agent_args, work / "agent.log", r"emporion agent: http=(\S+)", signal.SIGUSR1
        )
        sampler = Sampler(banner.group(1))
        flood = Framework(address, checkpoint=False)
        flood.info.name = "flood"
        flood.run()
        _accept(flood, "flood-", ns.tasks, TINY)
        other = Framework(address, checkpoint=False)
        other.info.name = "other"
        other.run()
        _accept(other, "other-", 1, "cpus:0.1;mem:32")
        with other.cond:
            if not other.cond.wait_for(lambda: "other-0" in other.latencies, WAIT):
                raise SystemExit("the other framework's task never ran")
        time.sleep(max(0.0, ns.flood_seconds - other.latencies["other-0"]))
        fid = flood.info.id.value
        with flood.cond:
            running = len(flood.latencies)
        at_teardown = _started(work / "agent", fid)
        torn = time.perf_counter()
        flood._call("Teardown", Call(type=Call.TEARDOWN))
        deadline = time.monotonic() + WAIT
        while sampler.holds(fid) or not sampler.last:
            if time.monotonic() > deadline:
                raise SystemExit("the agent still holds the flood after the teardown")
            time.sleep(0.05)
        gone = time.perf_counter() - torn
        sampler.stop()
        times = sampler.times
        master_log = (work / "master.log").read_text(errors="replace")
        agent_log = (work / "agent.log").read_text(errors="replace")
        return {
            "benchmark": "agent_backpressure",
            "tasks_in_one_accept": ns.tasks,
            "max_concurrent_launches": ns.max_concurrent_launches or "default",
            "other_accept_to_running_s": rounded(other.latencies["other-0"]),
            "agent_http_p50_s": rounded(statistics.median(times) if times else None),
            "agent_http_p99_s": rounded(percentile(times, 99)),
            "agent_http_max_s": rounded(max(times) if times else None),
            "agent_http_samples": len(times),
            "agent_marked_unreachable": "is unreachable" in master_log,
            "agent_missed_pings": "No ping from the master" in agent_log,
            "flood_running_at_teardown": running,
            "containers_at_teardown": at_teardown,
            "containers_after_teardown": _started(work / "agent", fid),
            "teardown_to_gone_s": rounded(gone),
            "driver": "real master, real agent, raw scheduler stubs",
            "machine": machine(),
        }
    finally:
        if sampler is not None:
            sampler.stop()
        kill_children()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the flags, run, print the JSON line."""
    parser = argparse.ArgumentParser(prog="python -m bench.agent_backpressure", description=__doc__)
    parser.add_argument("--tasks", type=int, default=5000, help="tasks in the one ACCEPT [5000]")
    parser.add_argument(
        "--flood-seconds", type=float, default=20.0, help="from the ACCEPT to the TEARDOWN [20]"
    )
    parser.add_argument(
        "--max-concurrent-launches", type=int, default=0, help="the agent's flag [its default]"
    )
    ns = parser.parse_args(argv)
    if ns.tasks < 1:
        parser.error("--tasks must be >= 1")
    emit(measure(ns))
    return 0


if __name__ == "__main__":
    kill_children_on_signals()
    raise SystemExit(main())
