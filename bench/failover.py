"""Failover: how long a crashed leading master takes to be replaced, and what comes back.

``python -m bench.failover --agents K --frameworks F [--tasks T] [--session-timeout S]`` starts
ZooKeeper (:mod:`emporion.testing.zookeeper`: Debian's ``zookeeper`` package and Java), three
masters ``python -m master --zk ... --zk-session-timeout S`` in their own processes, K emulated
agents (:class:`emporion.testing.AgentEmulator`) and F frameworks (the SDK's asyncio client on
the ``zk://`` URL), each running T tasks that stay RUNNING. The agents follow the leader
through ZooKeeper (``--agent-master zk``, the default, as real agents given a ``zk://`` URL
do: one session for the emulator, every agent leaves a deposed leader at once and rejoins the
next within ``--reregister-spread``), or are given the three addresses (``--agent-master
list``: they try them in turn and follow the leader a refusal names). Once every task runs it
kills the leader with SIGKILL and prints one JSON object, times in seconds from the kill:

* ``elected_s``: until another master answers as the leader (its ZooKeeper session noticed the
  old leader's expiry, it was elected, loaded the registry and recovered): bounded below by
  the session timeout, since a crashed leader's znode lives until its session expires.
* ``frameworks_back_s``: until every framework is subscribed again, to the new leader.
* ``agents_back_s``: until every agent has reregistered with the new leader.
* ``tasks_back_s``: until the new leader, asked by every framework (implicit reconciliation,
  every 0.2 s), reports every task RUNNING.
* ``tasks_lost``: tasks that reached a terminal state, or were not reported RUNNING again.
* ``leader_cpu_s`` and ``bench_cpu_s``: CPU seconds the new leader and the benchmark's own
  process (the emulated agents and the frameworks) used from the kill until the tasks were
  back; on a shared machine they vary less than the times. ``load_1m`` is the machine's load
  average at the kill and at the end.

``--timeline S`` prints, every S seconds after the kill, a JSON line on stderr with the agents
and frameworks back so far and each surviving master's CPU seconds in the interval.

``--profile DIR`` has every master write cProfile statistics to ``DIR/master<N>.prof`` (they
are stopped with SIGTERM at the end, so the new leader's file covers its whole failover).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench._common import cpu_seconds, emit, kill_children_on_signals, machine, rounded
from emporion.testing import AgentEmulator
from emporion.testing.emulator_config import DEFAULT_REREGISTER_SPREAD
from emporion.testing.failover_job import FailoverFramework
from emporion.testing.master_processes import ZkMaster, probe
from emporion.testing.zookeeper import ZooKeeperCluster
from protos.v1 import mesos_pb2

WAIT = 120.0
"""Default bound on each phase (``--wait``; a failure, not a figure, if reached)."""


async def _wait_leader(masters: Sequence[ZkMaster], timeout: float) -> ZkMaster:
    deadline = time.monotonic() + timeout
    while True:
        for master in masters:
            if (
                master.process is not None
                and (await asyncio.to_thread(probe, master.address, 1.0)).leading
            ):
                return master
        if time.monotonic() > deadline:
            raise TimeoutError("no master leads")
        await asyncio.sleep(0.01)


async def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Run the whole scenario; the figures."""
    zk = ZooKeeperCluster(args.zk_nodes, base_dir=work / "zk")
    zk.start()
    masters = [
        ZkMaster(
            zk.url("/emporion-bench"),
            work,
            session_timeout=args.session_timeout,
            name=f"master{i}",
            extra_args=(
                "--log-level",
                "WARNING",
                *_profile_args(args.profile, i),
                *(("--agent-gateways", str(args.agent_gateways)) if args.agent_gateways else ()),
            ),
        )
        for i in range(3)
    ]
    try:
        for master in masters:
            master.start()
        return await _scenario(args, zk, masters)
    finally:
        for master in masters:
            if args.profile is not None:
                master.stop(signal.SIGTERM)  # writes its profile on the way out
            master.close()
        zk.close()


async def _timeline(
    killed: float,
    *,
    emulator: AgentEmulator,
    base: int,
    frameworks: Sequence[FailoverFramework],
    masters: Sequence[ZkMaster],
    every: float,
) -> None:
    """Every ``every`` seconds, one JSON line on stderr: seconds since the kill, agents and
    frameworks back, and the CPU seconds since the last line of each surviving master and of
    the benchmark's process (the emulated agents and the frameworks)."""
    cpu = {m.name: _process_cpu(m) for m in masters}
    cpu["bench"] = cpu_seconds()
    while True:
        await asyncio.sleep(every)
        now = {m.name: _process_cpu(m) for m in masters}
        now["bench"] = cpu_seconds()
        line = {
            "t": round(time.monotonic() - killed, 2),
            "agents": emulator.counters.reregistrations - base,
            "frameworks": sum(f.subscribed_at[-1] > killed for f in frameworks if f.subscribed_at),
            "cpu": {name: round(now[name] - cpu[name], 2) for name in now},
        }
        cpu = now
        print(json.dumps(line), file=sys.stderr, flush=True)


def _process_cpu(master: ZkMaster) -> float:
    """User + system CPU seconds of a master's process so far (0.0 once it is gone)."""
    process = master.process
    if process is None:
        return 0.0
    try:
        fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _profile_args(directory: Path | None, index: int) -> tuple[str, ...]:
    if directory is None:
        return ()
    directory.mkdir(parents=True, exist_ok=True)
    return ("--profile", str(directory.resolve() / f"master{index}.prof"))


async def _scenario(
    args: argparse.Namespace, zk: ZooKeeperCluster, masters: list[ZkMaster]
) -> dict[str, Any]:
    leader = await _wait_leader(masters, args.wait)
    url = zk.url("/emporion-bench")
    emulator = AgentEmulator(
        url if args.agent_master == "zk" else [m.address for m in masters],
        agents=args.agents,
        resources="cpus:8;mem:16384;disk:1000",
        mode="run",
        # Thousands of streams on one HTTP/2 connection slow every write on it to a crawl.
        channels=max(1, args.agents // 1000),
        backoff_min=0.05,
        backoff_max=0.5,
        tick_interval=0.1,
        register_timeout=args.wait,
        # The masters' timeout: a session lost with a ZooKeeper server is noticed as fast.
        zk_session_timeout=args.session_timeout,
        reregister_spread=args.reregister_spread,
    )
    suppress = args.idle_frameworks == "suppress"
    frameworks = [
        FailoverFramework(url, f"bench{i}", args.tasks, suppress=suppress)
        for i in range(args.frameworks)
    ]
    async with emulator:
        for framework in frameworks:
            await framework.start()
        timeline: asyncio.Task[None] | None = None
        try:
            await asyncio.gather(*(f.wait_running(args.wait) for f in frameworks))
            base = emulator.counters.reregistrations
            rest = [m for m in masters if m is not leader]
            cpu_before = {m.name: _process_cpu(m) for m in rest}
            bench_before = cpu_seconds()
            load_before = os.getloadavg()[0]
            killed = time.monotonic()
            leader.stop(signal.SIGKILL)
            timeline = (
                asyncio.get_running_loop().create_task(
                    _timeline(
                        killed,
                        emulator=emulator,
                        base=base,
                        frameworks=frameworks,
                        masters=rest,
                        every=args.timeline,
                    )
                )
                if args.timeline
                else None
            )
            new = await _wait_leader(rest, args.wait)
            elected = time.monotonic() - killed
            await asyncio.gather(*(f.wait_back(new.master_id, args.wait) for f in frameworks))
            frameworks_back = max(f.subscribed_at[-1] for f in frameworks) - killed
            await emulator.wait_for(
                lambda: emulator.counters.reregistrations >= base + args.agents, args.wait
            )
            agents_back = time.monotonic() - killed
            back = await asyncio.gather(
                *(f.wait_tasks_back(args.wait) for f in frameworks), return_exceptions=True
            )
            tasks_back = time.monotonic() - killed
            leader_cpu = _process_cpu(new) - cpu_before[new.name]
            bench_cpu = cpu_seconds() - bench_before
            load_after = os.getloadavg()[0]
            lost = 0
            for framework, outcome in zip(frameworks, back, strict=True):
                running = sum(
                    framework.states.get(t) == mesos_pb2.TASK_RUNNING for t in framework.task_ids
                )
                lost += (
                    len(framework.task_ids) - running
                    if isinstance(outcome, BaseException)
                    else len(framework.terminal)
                )
        finally:
            if timeline is not None:
                timeline.cancel()
            for framework in frameworks:
                await framework.close()
    return {
        "benchmark": "failover",
        "masters": 3,
        "zk_nodes": args.zk_nodes,
        "agents": args.agents,
        "frameworks": args.frameworks,
        "tasks": args.frameworks * args.tasks,
        "session_timeout_s": args.session_timeout,
        "agent_master": args.agent_master,
        "agent_gateways": args.agent_gateways,
        "idle_frameworks": args.idle_frameworks,
        "reregister_spread_s": args.reregister_spread if args.agent_master == "zk" else None,
        "elected_s": rounded(elected, 3),
        "frameworks_back_s": rounded(frameworks_back, 3),
        "agents_back_s": rounded(agents_back, 3),
        "tasks_back_s": rounded(tasks_back, 3),
        "tasks_lost": lost,
        "leader_cpu_s": rounded(leader_cpu, 2),
        "bench_cpu_s": rounded(bench_cpu, 2),
        "load_1m": [round(load_before, 2), round(load_after, 2)],
        "machine": machine(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the flags, run, print the JSON line."""
    parser = argparse.ArgumentParser(prog="python -m bench.failover", description=__doc__)
    parser.add_argument("--agents", type=int, default=10, help="emulated agents (default 10)")
    parser.add_argument("--frameworks", type=int, default=2, help="frameworks (default 2)")
    parser.add_argument("--tasks", type=int, default=5, help="tasks per framework (default 5)")
    parser.add_argument(
        "--session-timeout", type=float, default=10.0, help="masters' --zk-session-timeout (10)"
    )
    parser.add_argument("--zk-nodes", type=int, default=1, choices=(1, 3), help="ZooKeeper size")
    parser.add_argument(
        "--agent-master",
        choices=("zk", "list"),
        default="zk",
        help="agents follow the leader through ZooKeeper (zk, default) or are given the three "
        "masters' addresses (list)",
    )
    parser.add_argument(
        "--reregister-spread",
        type=float,
        default=DEFAULT_REREGISTER_SPREAD,
        help="with --agent-master zk: seconds over which agents rejoin a new leader "
        f"(default {DEFAULT_REREGISTER_SPREAD:g})",
    )
    parser.add_argument(
        "--idle-frameworks",
        choices=("decline", "suppress"),
        default="decline",
        help="once its tasks run, a framework declines every offer (default) or suppresses them",
    )
    parser.add_argument(
        "--timeline",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="print agents and frameworks back and the masters' CPU every SECONDS after the"
        " kill, on stderr (default: no timeline)",
    )
    parser.add_argument(
        "--profile", type=Path, default=None, help="masters write cProfile stats into this folder"
    )
    parser.add_argument(
        "--agent-gateways",
        type=int,
        default=0,
        help="the masters' --agent-gateways: each ends the agents' streams in that many gateway"
        " processes (docs/scale.md; default 0, none)",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=WAIT,
        help=f"bound in seconds on each phase, registration included (default {WAIT:g}; "
        "10,000 agents on a small machine need more)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # the clients' reconnection warnings are expected
    # Thousands of emulated agents keep many long-lived objects: with the default thresholds
    # the cyclic collector rescans them all again and again (a third of an emulator's time).
    gc.set_threshold(100_000, 50, 100)
    if args.agents < 1 or args.frameworks < 1 or args.tasks < 0:
        parser.error("--agents and --frameworks must be >= 1, --tasks >= 0")
    if not args.wait > 0:
        parser.error("--wait must be a positive number of seconds")
    if args.timeline < 0:
        parser.error("--timeline must be >= 0 seconds")
    if args.reregister_spread < 0:
        parser.error("--reregister-spread must be >= 0")
    with tempfile.TemporaryDirectory(prefix="emporion-failover-") as work:
        try:
            figures = asyncio.run(measure(args, Path(work)))
        except (TimeoutError, RuntimeError) as error:
            print(f"bench.failover: {error}", file=sys.stderr)
            return 1
    emit(figures)
    return 0


if __name__ == "__main__":
    # SIGTERM (a timeout) kills the masters and unwinds, which stops ZooKeeper too; SIGKILL
    # leaves that to their parent-death signals.
    kill_children_on_signals()
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
