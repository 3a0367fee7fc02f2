"""The operator API's costs on the master's core, in-process (no sockets): prints one JSON line.

::

    python -m bench.operator_api --agents 10000 --tasks 100000 --updates 20000

Builds a cluster through the real state machine (agents register, frameworks subscribe, tasks
are launched through offers), then measures:

* ``update_us``: CPU microseconds per status update through the core (history included; each
  one changes its task's state) with 0, 1 and 10 operator event subscribers;
  ``event_build_us``: what the first subscriber adds (the event is built once), and
  ``event_us_per_extra_subscriber``: what each further one adds (queueing it);
  ``listener_us``: what one in-process listener adds (``update_us["-1"]``; no JSON built);
* ``pages``: time and JSON bytes of one page of GET_TASKS (100 tasks, with and without a
  filter), GET_AGENTS (100 agents sorted by cpu use), GET_FRAMEWORKS, and of the unpaged
  GET_STATE (what Mesos's UI fetches; the paged calls are what Emporion's UI fetches);
* ``utilization_sample_ms`` and ``prometheus_scrape_ms``.

The figures are CPU time of this process (``bench._common.cpu_seconds``) or wall time of one
call; they are for comparing changes on one machine, not targets asserted by tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

from bench._common import cpu_seconds, emit, machine, rounded
from master.config import MasterConfig
from master.core import Master, SendEvent, SendToAgent
from master.http import create_app
from master.http.operator import OperatorApi
from master.registry import RegistryState
from protos.resources import Resources
from protos.v1 import agent_internal_pb2, mesos_pb2, scheduler_pb2

AGENT_RESOURCES = "cpus:16;mem:65536;disk:100000"
TASK_RESOURCES = Resources.parse("cpus:0.1;mem:32")


class View:
    """A MasterView over one in-process Master."""

    master_id, version, elected_time = "bench", "bench", None

    def __init__(self, master: Master) -> None:
        self.master = master
        self.start_time = time.time()

    def leading_master(self) -> Master | None:
        return self.master

    def leader_http_address(self) -> str | None:
        return "127.0.0.1:0"


class Cluster:
    """A master driven directly: agents, frameworks and tasks."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0
        self.master = Master(MasterConfig(registry="memory", allocation_interval=3600.0))
        self.master.recover(RegistryState(), self.now)
        self.connections: dict[str, str] = {}
        self.streams: dict[str, str] = {}
        self.tasks: list[tuple[str, str, str]] = []  # (framework, agent, task)

    def add_agent(self, index: int) -> None:
        message = agent_internal_pb2.AgentMessage()
        info = message.register_agent.agent_info
        info.hostname = f"node-{index:05}"
        info.resources.extend(Resources.parse(AGENT_RESOURCES).to_protos())
        connection = f"conn-{index}"
        for effect in self.master.agent_connected(connection, message, self.now):
            if isinstance(effect, SendToAgent) and effect.message.HasField("agent_registered"):
                self.connections[effect.message.agent_registered.agent_id.value] = connection

    def add_framework(self, index: int) -> str:
        call = scheduler_pb2.Call(type=scheduler_pb2.Call.SUBSCRIBE)
        call.subscribe.framework_info.user = "bench"
        call.subscribe.framework_info.name = f"framework-{index}"
        stream = f"stream-{index}"
        self.master.subscribe(stream, call, self.now)
        framework_id = self.master.state.streams[stream]
        self.streams[framework_id] = stream
        return framework_id

    def launch(self, total: int) -> None:
        """Launch ``total`` tasks, filling each offer."""
        while len(self.tasks) < total:
            effects = self.master.allocate(self.now)
            offers = [
                (e.framework_id, offer)
                for e in effects
                if isinstance(e, SendEvent) and e.event.type == scheduler_pb2.Event.OFFERS
                for offer in e.event.offers.offers
            ]
            if not offers:
                raise SystemExit("the cluster is full: add agents or launch fewer tasks")
            for framework_id, offer in offers:
                if len(self.tasks) >= total:
                    break
                available = Resources.from_protos(offer.resources)
                call = scheduler_pb2.Call(type=scheduler_pb2.Call.ACCEPT)
                call.framework_id.value = framework_id
                call.accept.offer_ids.add().CopyFrom(offer.id)
                call.accept.filters.refuse_seconds = 0
                op = call.accept.operations.add(type=mesos_pb2.Offer.Operation.LAUNCH)
                while len(self.tasks) < total and available.contains(TASK_RESOURCES):
                    task_id = f"task-{len(self.tasks):06}"
                    task = op.launch.task_infos.add(name=task_id)
                    task.task_id.value = task_id
                    task.agent_id.CopyFrom(offer.agent_id)
                    task.resources.extend(TASK_RESOURCES.to_protos())
                    task.command.value = "sleep 1000"
                    available -= TASK_RESOURCES
                    self.tasks.append((framework_id, offer.agent_id.value, task_id))
                self.master.call(self.streams[framework_id], call, self.now)

    def update(self, index: int, state: int) -> None:
        framework_id, agent_id, task_id = self.tasks[index % len(self.tasks)]
        message = agent_internal_pb2.AgentMessage()
        update = message.status_update
        update.framework_id.value = framework_id
        status = update.status
        status.task_id.value = task_id
        status.agent_id.value = agent_id
        status.state = state  # type: ignore[assignment]
        status.source = mesos_pb2.TaskStatus.SOURCE_EXECUTOR
        status.timestamp = self.now
        status.uuid = index.to_bytes(16, "big")
        self.master.agent_messages(self.connections[agent_id], [message], self.now)


class Quiet:
    """An in-process listener that does nothing (what listening itself costs)."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args: None


def update_cost(
    cluster: Cluster, api: OperatorApi, subscribers: int, updates: int, state: int
) -> float:
    """CPU microseconds per status update to ``state`` with ``subscribers`` subscriptions
    (-1: one in-process listener instead)."""

    async def run() -> float:
        listening = api.events.listen(Quiet()) if subscribers < 0 else None
        subs = [api.events.subscribe(include_state=False) for _ in range(max(0, subscribers))]
        cluster.now += 1.0
        start = cpu_seconds()
        for i in range(updates):
            cluster.update(i, state)
            if i % 1000 == 999:
                for sub in subs:  # A subscriber keeping up: its queue is drained.
                    sub._queue.clear()
        spent = cpu_seconds() - start
        for sub in subs:
            sub.close()
        if listening is not None:
            listening.close()
        return spent / updates * 1e6

    return asyncio.run(run())


def timed_call(api: OperatorApi, body: dict[str, Any]) -> dict[str, Any]:
    """The least time of three calls, and the answer's size."""
    elapsed = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        result = api.call(body)
        elapsed = min(elapsed, time.perf_counter() - start)
    size = len(json.dumps(result, separators=(",", ":")))
    return {"ms": rounded(elapsed * 1000, 2), "bytes": size}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.operator_api")
    parser.add_argument("--agents", type=int, default=2000)
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--frameworks", type=int, default=10)
    parser.add_argument("--updates", type=int, default=10000)
    args = parser.parse_args(argv)
    cluster = Cluster()
    for i in range(args.agents):
        cluster.add_agent(i)
    for i in range(args.frameworks):
        cluster.add_framework(i)
    cluster.launch(args.tasks)
    view = View(cluster.master)
    api: OperatorApi = create_app(view).state.operator
    costs: dict[int, float] = {}
    states = [mesos_pb2.TASK_STARTING, mesos_pb2.TASK_RUNNING]
    for _ in range(3):  # The least of three runs: other processes share the machine.
        for n in (0, -1, 1, 10):
            states.reverse()  # Every update of every run changes its task's state.
            cost = update_cost(cluster, api, n, min(args.updates, args.tasks), states[0])
            costs[n] = min(costs.get(n, cost), cost)
    pages = {
        "GET_TASKS page": timed_call(api, {"type": "GET_TASKS", "get_tasks": {"limit": 100}}),
        "GET_TASKS table page": timed_call(
            api, {"type": "GET_TASKS", "get_tasks": {"limit": 100, "max_statuses": 1}}
        ),
        "GET_TASKS filtered page": timed_call(
            api, {"type": "GET_TASKS", "get_tasks": {"limit": 100, "query": "task-0001"}}
        ),
        "GET_AGENTS page by cpus": timed_call(
            api,
            {"type": "GET_AGENTS", "get_agents": {"limit": 100, "order_by": "cpus"}},
        ),
        "GET_FRAMEWORKS page": timed_call(
            api, {"type": "GET_FRAMEWORKS", "get_frameworks": {"limit": 20}}
        ),
        "GET_STATE (unpaged)": timed_call(api, {"type": "GET_STATE"}),
    }
    start = time.perf_counter()
    cluster.master.state.history.utilization.sample(cluster.master.state, cluster.now)
    sample_ms = (time.perf_counter() - start) * 1000
    from prometheus_client import CollectorRegistry, generate_latest

    from master.http.routes.prometheus import MasterCollector

    registry = CollectorRegistry(auto_describe=False)
    registry.register(MasterCollector(view, time.time))
    start = time.perf_counter()
    generate_latest(registry)
    scrape_ms = (time.perf_counter() - start) * 1000
    emit(
        {
            "benchmark": "operator_api",
            "agents": args.agents,
            "tasks": args.tasks,
            "frameworks": args.frameworks,
            "updates": args.updates,
            "update_us": {str(n): rounded(c, 2) for n, c in costs.items()},
            "listener_us": rounded(costs[-1] - costs[0], 2),
            "event_build_us": rounded(costs[1] - costs[0], 2),
            "event_us_per_extra_subscriber": rounded((costs[10] - costs[1]) / 9, 2),
            "pages": pages,
            "utilization_sample_ms": rounded(sample_ms, 2),
            "prometheus_scrape_ms": rounded(scrape_ms, 2),
            "machine": machine(),
        }
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
