"""The chaos scenarios: what each one breaks, and when, in a real cluster under a real job.

Each scenario is a :class:`Scenario`: the cluster it needs, a body that runs the job and the
fault (in the calling thread; the framework lives on a :class:`~.loop_thread.LoopThread`), and
two sizes of parameters, ``ci`` (seconds, for the default test suite) and ``full`` (the sizes of
issue 10, for soak runs). A body records its time figures in ``run.figures`` and returns once
every task got its terminal update (or raises :class:`~.cluster.ClusterError` naming what did
not happen); :func:`~.runner.run_scenario` adds the counts every scenario reports.

Times are seconds measured with ``time.monotonic()`` in the harness: from the fault to a new
leader answering as one (``elected_s``), to the framework being subscribed to it
(``framework_back_s``), to the leader listing every agent active (``agents_back_s``).
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emporion.testing.chaos.cluster import ChaosCluster, ClusterError
from emporion.testing.chaos.framework import RecordingFramework
from emporion.testing.chaos.loop_thread import LoopThread
from emporion.testing.chaos.processes import MasterProcess
from emporion.testing.master_processes import probe
from protos.v1 import mesos_pb2

__all__ = ["SCENARIOS", "Params", "Run", "Scenario"]

Params = Mapping[str, float]
RUNNING = mesos_pb2.TASK_RUNNING


class Run:
    """One scenario run: its cluster, the frameworks' loop, the figures it measured."""

    def __init__(self, cluster: ChaosCluster, params: Params) -> None:
        self.cluster = cluster
        self.params = params
        self.loop = LoopThread()
        self.frameworks: list[RecordingFramework] = []
        self.figures: dict[str, Any] = {}

    def framework(self, name: str, tasks: int, command: str) -> RecordingFramework:
        """Subscribe a recording framework running ``tasks`` tasks of ``command``."""
        url, suppress = self.cluster.master_url, bool(self.params.get("suppress", 0))
        framework = self.loop.query(
            lambda: RecordingFramework(url, name, tasks, command, suppress=suppress)
        )
        self.frameworks.append(framework)
        self.loop.run(framework.start(), 60.0)
        return framework

    def wait(self, predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> float:
        """Wait until ``predicate`` (run on the frameworks' loop) holds; ``time.monotonic()``
        then. ClusterError naming ``what`` on timeout."""
        if not self.loop.wait_for(predicate, timeout):
            raise ClusterError(f"timed out after {timeout:g}s waiting for {what}")
        return time.monotonic()

    def settle(self, framework: RecordingFramework) -> float:
        """Wait for every task's terminal update; when they all came. Gives up after
        ``settle_timeout`` (120 s), or once no update came for ``quiet_timeout`` (30 s) while
        some are still owed: a stuck job fails in seconds, not minutes."""
        started = time.monotonic()
        deadline = started + self.params.get("settle_timeout", 120.0)
        quiet = self.params.get("quiet_timeout", 30.0)
        seen, since = -1, started
        while not self.loop.query(framework.all_settled):
            now = time.monotonic()
            updates = self.loop.query(lambda: framework.updates)
            if updates != seen:
                seen, since = updates, now
            if now - since > quiet or now > deadline:
                owed = self.loop.query(lambda: framework.summary()["terminal_missing"])
                raise ClusterError(
                    f"{owed} terminal updates still owed after {now - started:.0f}s of waiting,"
                    f" the last {now - since:.0f}s without any update"
                )
            time.sleep(0.1)
        return time.monotonic()

    def wait_back(
        self,
        framework: RecordingFramework,
        leader: MasterProcess,
        since: float,
        timeout: float = 120.0,
    ) -> None:
        """Record when ``framework`` was subscribed to ``leader`` and when ``leader`` listed
        every agent active (each polled on its own, so neither waits for the other)."""
        framework_back: float | None = None
        agents_back: float | None = None
        deadline = time.monotonic() + timeout
        while framework_back is None or agents_back is None:
            if framework_back is None and self.loop.query(
                lambda: framework.subscribed_to(leader.master_id)
            ):
                framework_back = time.monotonic()
            if agents_back is None and self.cluster.agents_active(leader):
                agents_back = time.monotonic()
            if time.monotonic() > deadline:
                what = "the framework" if framework_back is None else "the agents"
                raise ClusterError(f"timed out after {timeout:g}s waiting for {what} to be back")
            time.sleep(0.05)
        self.figures.setdefault("framework_back_s", []).append(round(framework_back - since, 3))
        self.figures.setdefault("agents_back_s", []).append(round(agents_back - since, 3))


def _started(framework: RecordingFramework) -> int:
    return sum(1 for r in framework.tasks.values() if RUNNING in r.states)


def _all_running(framework: RecordingFramework) -> Callable[[], bool]:
    return lambda: framework.count(RUNNING) == len(framework.tasks)


def _command(params: Params) -> str:
    return f"sleep {params['sleep']:g}"


# -- 1. successive leader kills during one job --


def leader_kills(run: Run, p: Params) -> None:
    """``kills`` successive ``kill -9`` of the leading master while the job runs; each killed
    master comes back as a standby, so three masters stand before every kill."""
    cluster = run.cluster
    job = run.framework("job", int(p["tasks"]), _command(p))
    run.wait(lambda: _started(job) >= p["running_before_kill"], "the job to be under way")
    run.figures["elected_s"] = []
    run.figures["settled_at_kills"] = []
    for _ in range(int(p["kills"])):
        leader = cluster.wait_leader()
        run.figures["settled_at_kills"].append(run.loop.query(job.settled))
        killed = time.monotonic()
        leader.crash()
        new = cluster.wait_leader(exclude=leader)
        run.figures["elected_s"].append(round(time.monotonic() - killed, 3))
        leader.start()
        run.wait_back(job, new, killed)
        time.sleep(p["gap"])
    if run.figures["settled_at_kills"][-1] == len(job.tasks):
        raise ClusterError("the job ended before the last kill: make it longer (sleep, cpus)")
    run.settle(job)


# -- 2. an agent crash under load --


def agent_crash(run: Run, p: Params) -> None:
    """``kill -9`` of one agent ``crash_after`` seconds into the job, restarted ``down`` s later
    on its work directory (it recovers its checkpointed tasks)."""
    cluster = run.cluster
    job = run.framework("load", int(p["tasks"]), _command(p))
    time.sleep(p["crash_after"])
    victim = cluster.agents[-1]
    run.figures["settled_at_crash"] = run.loop.query(job.settled)
    if run.figures["settled_at_crash"] == len(job.tasks):
        raise ClusterError("the job ended before the crash: make it longer (tasks, sleep)")
    victim.crash()
    time.sleep(p["down"])
    up = time.monotonic()
    victim.start()
    back = cluster.wait_agents_active(cluster.masters[0], [victim.hostname])
    run.figures["agent_back_s"] = round(back - up, 3)
    run.figures["job_s"] = round(run.settle(job) - up + p["down"] + p["crash_after"], 3)


# -- 3. a leader kill with long tasks running --


def leader_kill_running(run: Run, p: Params) -> None:
    """Every task running (``sleep 10``), one ``kill -9`` of the leader ``kill_after`` s plus a
    random share of ``jitter`` s later, so that the tasks end while no master leads, while the
    agent reregisters, or just after (its first batch to the new leader then carries their
    updates); they must finish and their TASK_FINISHED reach the framework."""
    cluster = run.cluster
    job = run.framework("long", int(p["tasks"]), _command(p))
    running = run.wait(_all_running(job), "every task to run")
    delay = p["kill_after"] + random.uniform(0.0, p["jitter"])
    run.figures["killed_after_running_s"] = round(delay, 3)
    leader = cluster.wait_leader()
    time.sleep(max(0.0, running + delay - time.monotonic()))
    killed = time.monotonic()
    leader.crash()
    new = cluster.wait_leader(exclude=leader)
    run.figures["elected_s"] = round(time.monotonic() - killed, 3)
    run.wait_back(job, new, killed)
    run.settle(job)


# -- 4. executor (task process tree) kill --


def task_processes(task_id: str) -> list[int]:
    """Pids of the processes of ``task_id`` (their environment has ``MESOS_TASK_ID=<id>``)."""
    entry = f"MESOS_TASK_ID={task_id}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                if entry in (proc / "environ").read_bytes().split(b"\0"):
                    found.append(int(proc.name))
    return found


def executor_kill(run: Run, p: Params) -> None:
    """``kill -9`` of the whole process tree of ``kill`` running tasks: each must end
    TASK_FAILED (once), the others TASK_FINISHED, and the agent must carry on."""
    job = run.framework("exec", int(p["tasks"]), _command(p))
    run.wait(_all_running(job), "every task to run")
    victims = sorted(job.tasks)[: int(p["kill"])]
    for task_id in victims:
        run.loop.query(functools.partial(job.expect, task_id, [mesos_pb2.TASK_FAILED]))
    killed = time.monotonic()
    pids = [pid for task_id in victims for pid in task_processes(task_id)]
    if not pids:
        raise ClusterError(f"no process found for tasks {victims}")
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    run.figures["processes_killed"] = len(pids)
    done = run.wait(
        lambda: all(job.tasks[t].settled for t in victims), "the killed tasks' terminal updates"
    )
    run.figures["failed_update_s"] = round(done - killed, 3)
    run.settle(job)


# -- 5. the leader's ZooKeeper session expires --


def zk_session_expired(run: Run, p: Params) -> None:
    """SIGSTOP of the leader for ``pause`` s (longer than its session timeout), then SIGCONT:
    another master must lead meanwhile, and the old one must step down when it wakes."""
    cluster = run.cluster
    job = run.framework("expiry", int(p["tasks"]), _command(p))
    run.wait(_all_running(job), "every task to run")
    leader = cluster.wait_leader()
    paused = time.monotonic()
    leader.pause()
    new = cluster.wait_leader(exclude=leader)
    run.figures["elected_s"] = round(time.monotonic() - paused, 3)
    run.wait_back(job, new, paused)
    time.sleep(max(0.0, paused + p["pause"] - time.monotonic()))
    leader.resume()
    resumed = time.monotonic()
    stale = [probe(leader.address, 2.0).leading]
    deadline = resumed + 30.0
    while stale[-1] and time.monotonic() < deadline:
        time.sleep(0.05)
        stale.append(probe(leader.address, 2.0).leading)
    run.figures["stale_leader_answers"] = sum(stale)
    run.figures["old_leader_stepped_down_s"] = round(time.monotonic() - resumed, 3)
    if stale[-1]:
        raise ClusterError("the frozen leader still answers as the leader 30 s after SIGCONT")
    run.settle(job)


# -- 6. ZooKeeper down and back --


def zk_outage(run: Run, p: Params) -> None:
    """ZooKeeper killed for ``outage`` s with the job running (tasks end meanwhile: their
    updates wait in the agent), then started again on its data."""
    cluster = run.cluster
    assert cluster.zk is not None
    job = run.framework("outage", int(p["tasks"]), _command(p))
    run.wait(_all_running(job), "every task to run")
    down = time.monotonic()
    cluster.zk.kill(1)
    cluster_wait_no_leader(cluster, 60.0)
    run.figures["masters_stepped_down_s"] = round(time.monotonic() - down, 3)
    time.sleep(max(0.0, down + p["outage"] - time.monotonic()))
    run.figures["settled_during_outage"] = run.loop.query(job.settled)
    cluster.zk.restart(1)
    up = time.monotonic()
    leader = cluster.wait_leader()
    run.figures["elected_s"] = round(time.monotonic() - up, 3)
    run.wait_back(job, leader, up)
    run.settle(job)


def cluster_wait_no_leader(cluster: ChaosCluster, timeout: float) -> None:
    """Wait until no master answers as the leader."""
    deadline = time.monotonic() + timeout
    while cluster.leader_now() is not None:
        if time.monotonic() > deadline:
            raise ClusterError(f"a master still leads {timeout:g}s after ZooKeeper went down")
        time.sleep(0.05)


# -- 7. a standalone master restarted on its work directory --


def master_restart(run: Run, p: Params) -> None:
    """``kill -9`` of the one master, started again ``down`` s later on its work directory
    (file registry): the agents must come back quickly (issue 10: within 3 s)."""
    cluster = run.cluster
    master = cluster.masters[0]
    job = run.framework("restart", int(p["tasks"]), _command(p))
    run.wait(_all_running(job), "every task to run")
    master.crash()
    time.sleep(p["down"])
    master.start()
    up = time.monotonic()
    run.wait_back(job, master, up)
    run.figures["agents_back_within_3s"] = run.figures["agents_back_s"][-1] <= 3.0
    run.settle(job)


@dataclass(frozen=True)
class Scenario:
    """A scenario: the cluster it runs on, its body and its two sizes."""

    name: str
    body: Callable[[Run, Params], None]
    cluster: Mapping[str, Any]
    ci: Params
    full: Params


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "leader_kills",
            leader_kills,
            {"masters": 3, "agents": 2},
            {"tasks": 24, "sleep": 4, "cpus": 0.3, "kills": 3, "gap": 1, "running_before_kill": 4},
            {"tasks": 60, "sleep": 5, "cpus": 0.5, "kills": 3, "gap": 3, "running_before_kill": 6},
        ),
        Scenario(
            "agent_crash",
            agent_crash,
            {"zookeeper": False, "agents": 2},
            {"tasks": 240, "sleep": 1, "cpus": 1, "crash_after": 4, "down": 2},
            {"tasks": 600, "sleep": 0.5, "cpus": 2, "crash_after": 15, "down": 5},
        ),
        Scenario(
            "leader_kill_running",
            leader_kill_running,
            {"masters": 3, "agents": 1},
            {"tasks": 3, "sleep": 6, "cpus": 1, "kill_after": 4.5, "jitter": 2},
            {"tasks": 3, "sleep": 10, "cpus": 1, "kill_after": 8.5, "jitter": 2},
        ),
        Scenario(
            "executor_kill",
            executor_kill,
            {"zookeeper": False, "agents": 1},
            {"tasks": 6, "sleep": 5, "kill": 2, "cpus": 1},
            {"tasks": 40, "sleep": 10, "kill": 10, "cpus": 4},
        ),
        Scenario(
            "zk_session_expired",
            zk_session_expired,
            {"masters": 3, "agents": 1},
            {"tasks": 4, "sleep": 8, "pause": 5, "cpus": 1},
            {"tasks": 20, "sleep": 15, "pause": 8, "cpus": 2},
        ),
        Scenario(
            "zk_outage",
            zk_outage,
            {"masters": 2, "agents": 1},
            {"tasks": 4, "sleep": 4, "outage": 6, "cpus": 1},
            {"tasks": 20, "sleep": 10, "outage": 30, "cpus": 2},
        ),
        Scenario(
            "master_restart",
            master_restart,
            {"zookeeper": False, "agents": 2},
            {"tasks": 4, "sleep": 6, "down": 3, "cpus": 1},
            {"tasks": 20, "sleep": 20, "down": 15, "cpus": 2},
        ),
    )
}
"""Every scenario, by name, in the order of issue 10's item 5."""
