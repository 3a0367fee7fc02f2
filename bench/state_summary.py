"""``/master/state-summary`` and ``/master/slaves`` at scale, in-process: one JSON line per size.

::

    python -m bench.state_summary --agents 10000,50000 --tasks 20000 --changed 100

Builds a cluster through the real state machine (the :class:`bench.operator_api.Cluster`:
agents register, frameworks subscribe, tasks are launched through offers), serves it with the
real HTTP app (``master.http.create_app``) through ``httpx.ASGITransport`` (no sockets), and
times each endpoint:

* ``cold``: the least of ``--tries`` first GETs, each from an app of its own (nothing
  remembered yet: what the first request after taking the lead costs);
* ``warm``: the least of ``--tries`` GETs with nothing changed in between;
* ``changed``: the least of ``--tries`` GETs, each after ``--changed`` tasks (on as many
  agents) changed state and ``--changed`` other agents lost their connection (their phase
  and offers change), then an allocation cycle ran.

Each figure is wall seconds and CPU seconds of this process (``_cpu_s``; on a shared machine
the steadier one) and the body's bytes; ``same_bytes`` says whether a last GET of each equals
``json.dumps`` of the uncached snapshot functions (:mod:`master.core.snapshot`), as the
endpoint's answer must. Figures are for comparing changes on one machine, not targets asserted
by tests.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import time
from collections.abc import Sequence
from typing import Any

import httpx

from bench._common import cpu_seconds, emit, machine, rounded
from bench.operator_api import Cluster, View
from master.core import agents_snapshot, state_summary
from master.http import create_app
from protos.v1 import mesos_pb2

ENDPOINTS = {"state_summary": "/master/state-summary", "slaves": "/master/slaves"}


def _encoded(data: Any) -> bytes:
    """``data`` as the read-only endpoints encode it (``protos.mesos_json.answer``)."""
    return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


async def _get(client: httpx.AsyncClient, path: str) -> tuple[float, float, bytes]:
    """Wall and CPU seconds of one GET of ``path``, and its body."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    response = await client.get(path)
    spent = time.perf_counter() - wall, cpu_seconds() - cpu
    response.raise_for_status()
    return spent[0], spent[1], response.content


def _change(cluster: Cluster, count: int, round_: int) -> None:
    """``count`` tasks (on distinct agents, where there are as many) change state, the
    connections of ``count`` other agents (the last registered, new ones each round) break,
    and an allocation cycle runs."""
    by_agent: dict[str, int] = {}
    for index, (_, agent_id, _) in enumerate(cluster.tasks):
        by_agent.setdefault(agent_id, index)
        if len(by_agent) >= count:
            break
    state = mesos_pb2.TASK_RUNNING if round_ % 2 == 0 else mesos_pb2.TASK_STARTING
    cluster.now += 1.0
    for index in by_agent.values():
        cluster.update(index, state)
    connections = list(cluster.connections.values())
    for connection in connections[len(connections) - (round_ + 1) * count :][:count]:
        cluster.master.agent_disconnected(connection, cluster.now)
    cluster.master.allocate(cluster.now)


def _client(cluster: Cluster) -> httpx.AsyncClient:
    """A client of a new app serving ``cluster``'s master."""
    transport = httpx.ASGITransport(app=create_app(View(cluster.master)))
    return httpx.AsyncClient(transport=transport, base_url="http://bench")


async def measure(cluster: Cluster, tries: int, changed: int) -> dict[str, Any]:
    """The figures for one cluster (module docstring)."""
    figures: dict[str, Any] = {}
    for name, path in ENDPOINTS.items():
        colds = []
        for _ in range(tries):
            gc.collect()  # What the previous apps left: not the endpoint's garbage.
            async with _client(cluster) as client:
                wall, cpu, body = await _get(client, path)
            colds.append((wall, cpu))
        figures[f"{name}_cold_s"] = rounded(min(c[0] for c in colds))
        figures[f"{name}_cold_cpu_s"] = rounded(min(c[1] for c in colds))
        figures[f"{name}_bytes"] = len(body)
    async with _client(cluster) as client:
        bodies: dict[str, bytes] = {}
        rounds = 0
        for label in ("warm", "changed"):
            best: dict[str, tuple[float, float]] = {}
            for _ in range(tries):
                for name, path in ENDPOINTS.items():
                    if label == "changed":  # Before each endpoint: the second one finds
                        _change(cluster, changed, rounds)  # nothing the first re-encoded.
                        rounds += 1
                    wall, cpu, bodies[name] = await _get(client, path)
                    old = best.get(name, (wall, cpu))
                    best[name] = (min(old[0], wall), min(old[1], cpu))
            for name, (wall, cpu) in best.items():
                figures[f"{name}_{label}_s"] = rounded(wall)
                figures[f"{name}_{label}_cpu_s"] = rounded(cpu)
        for name, path in ENDPOINTS.items():
            _, _, bodies[name] = await _get(client, path)
        figures["same_bytes"] = bodies["state_summary"] == _encoded(
            state_summary(cluster.master)
        ) and bodies["slaves"] == _encoded(agents_snapshot(cluster.master))
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.state_summary")
    parser.add_argument("--agents", default="10000,50000", help="comma-separated sizes")
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--frameworks", type=int, default=10)
    parser.add_argument("--changed", type=int, default=100, help="agents changed per round")
    parser.add_argument("--tries", type=int, default=3)
    args = parser.parse_args(argv)
    for size in (int(n) for n in args.agents.split(",")):
        started = time.perf_counter()
        cluster = Cluster()
        for i in range(size):
            cluster.add_agent(i)
        for i in range(args.frameworks):
            cluster.add_framework(i)
        cluster.launch(args.tasks)
        figures: dict[str, Any] = {
            "agents": size,
            "frameworks": args.frameworks,
            "tasks": len(cluster.tasks),
            "changed": args.changed,
            "build_s": rounded(time.perf_counter() - started, 2),
        }
        figures.update(asyncio.run(measure(cluster, args.tries, args.changed)))
        figures["machine"] = machine()
        emit(figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
