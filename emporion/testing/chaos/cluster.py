"""ChaosCluster: ZooKeeper, masters and agents as real processes, with guaranteed cleanup.

One base directory (``emporion-chaos-*`` under the temporary directory) holds everything of a
run: ZooKeeper's data, the masters' work directories and logs, every agent's work directory.
Every process's command line names that directory, so the leak check finds any process of the
run, and :meth:`ChaosCluster.close` (also run at interpreter exit) shuts the agents down for good
(SIGUSR1: their tasks are killed), kills every other process group, counts what leaked
(:mod:`~emporion.testing.chaos.leaks`), then sweeps it away so the next run starts clean.

With ``zookeeper=True`` the masters run under ``--zk`` (agents and frameworks follow the leader
through the ``zk://`` URL); otherwise there is one standalone master on a file registry, which
can be restarted on its work directory.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from emporion.testing.chaos.leaks import Leaks, cgroup_mounts, find_leaks, sweep
from emporion.testing.chaos.processes import AgentProcess, MasterProcess
from emporion.testing.master_processes import probe
from emporion.testing.zookeeper import ZooKeeperCluster

__all__ = ["AGENT_FLAGS", "RUN_MARKER", "ChaosCluster", "ClusterError", "default_isolation"]

AGENT_FLAGS = (
    "--status-update-retry-min",
    "2s",
    "--status-update-retry-max",
    "10s",
)
"""Agents resend an unacknowledged update after 2 s at first (10 s by default): runs stay short;
everything else is the agent's default, as an operator would run it."""

RUN_MARKER = "EMPORION_CHAOS_RUN"
"""Set to the run's base directory in every master's and agent's environment (the leak check
finds a process by it; tasks mention the base directory through their sandbox paths)."""
_ERROR = re.compile(r" ERROR |Error:|Traceback|CRITICAL")
_STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ")
_LIVE: set[ChaosCluster] = set()
"""Clusters not yet removed (strong references: one dropped by an exception is still swept at
interpreter exit)."""


class ClusterError(RuntimeError):
    """Something the cluster waited for did not happen in time; the message says what."""


def default_isolation() -> str:
    """``cgroups`` as root where cgroups are mounted (real containers), else ``posix``."""
    return "cgroups" if os.geteuid() == 0 and cgroup_mounts() else "posix"


class ChaosCluster:
    """``masters`` masters (on ZooKeeper, or one standalone) and ``agents`` real agents.

    Use it as a context manager, or call :meth:`start` and then :meth:`close` in a ``finally``.
    """

    def __init__(
        self,
        *,
        masters: int = 1,
        agents: int = 1,
        zookeeper: bool = True,
        agent_resources: str = "cpus:2;mem:2048;disk:1024",
        isolation: str | None = None,
        session_timeout: float = 2.0,
        agent_flags: Sequence[str] = AGENT_FLAGS,
    ) -> None:
        if masters < 1 or agents < 1:
            raise ValueError(f"need at least one master and one agent, not {masters}/{agents}")
        if not zookeeper and masters != 1:
            raise ValueError(f"a standalone cluster has one master, not {masters}")
        self.base_dir = Path(tempfile.mkdtemp(prefix="emporion-chaos-")).resolve()
        self.log_dir = self.base_dir / "logs"
        self.isolation = isolation or default_isolation()
        self.zk: ZooKeeperCluster | None = None
        if zookeeper:
            self.zk = ZooKeeperCluster(1, base_dir=self.base_dir / "zk")
        self.master_url = self.zk.url("/emporion-chaos") if self.zk is not None else ""
        self.masters = [
            MasterProcess(
                f"master{i}",
                self.log_dir,
                zk_url=self.master_url or None,
                work_dir=None if zookeeper else self.base_dir / "master",
                session_timeout=session_timeout,
            )
            for i in range(masters)
        ]
        for master in self.masters:
            master.env[RUN_MARKER] = str(self.base_dir)
        zk_flags = ("--zk-session-timeout", f"{session_timeout}") if zookeeper else ()
        self._agent_spec = (agent_resources, tuple(agent_flags) + zk_flags)
        self.agents: list[AgentProcess] = []
        self._agent_count = agents
        self.leaks: Leaks | None = None
        self._closed = False
        _LIVE.add(self)

    # -- lifecycle --

    def start(self) -> ChaosCluster:
        """Start ZooKeeper, the masters (waiting for a leader), then the agents."""
        if self.zk is not None:
            self.zk.start()
        for master in self.masters:
            master.start()
        if self.zk is None:
            self.master_url = self.masters[0].address
        self.wait_leader()
        resources, flags = self._agent_spec
        for i in range(self._agent_count):
            agent = AgentProcess(
                f"agent{i}",
                self.log_dir,
                master=self.master_url,
                work_dir=self.base_dir / f"agent{i}",
                resources=resources,
                isolation=self.isolation,
                extra_args=flags,
            )
            agent.env[RUN_MARKER] = str(self.base_dir)
            self.agents.append(agent)
            agent.start()
        self.wait_agents_active(self.leader_now())
        return self

    def __enter__(self) -> ChaosCluster:
        try:
            return self.start()
        except BaseException:
            self.remove()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.remove()

    def close(self) -> Leaks:
        """Shut everything down; what leaked (counted before the sweep). Idempotent."""
        if self._closed:
            assert self.leaks is not None
            return self.leaks
        self._closed = True
        try:
            for agent in self.agents:
                if agent.paused:
                    agent.resume()
                if agent.running:
                    agent.shutdown()
                agent.close()
            for master in self.masters:
                master.close()
            if self.zk is not None:
                self.zk.close()
            work_dirs = [agent.work_dir for agent in self.agents]
            self.leaks = find_leaks(self.base_dir, work_dirs)
            sweep(self.base_dir, work_dirs)
        finally:
            if self.leaks is None:
                self.leaks = Leaks()
        return self.leaks

    def remove(self) -> None:
        """Delete the base directory (logs included), unless ``EMPORION_CHAOS_KEEP`` is set."""
        self.close()
        _LIVE.discard(self)
        if os.environ.get("EMPORION_CHAOS_KEEP") is None:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    # -- masters --

    def leader_now(self) -> MasterProcess | None:
        """The running, unfrozen master that answers as the leader, if any."""
        for master in self.masters:
            if master.running and not master.paused and probe(master.address, 1.0).leading:
                return master
        return None

    def wait_leader(
        self, timeout: float = 60.0, exclude: MasterProcess | None = None
    ) -> MasterProcess:
        """Wait until a master (not ``exclude``) leads; that one."""
        found: list[MasterProcess] = []

        def leads() -> bool:
            leader = self.leader_now()
            if leader is not None and leader is not exclude:
                found.append(leader)
                return True
            return False

        wait(leads, "a leading master", timeout)
        return found[-1]

    # -- agents --

    def agent_states(self, master: MasterProcess) -> dict[str, bool]:
        """``hostname -> active`` of the agents ``master`` lists ({} if it does not answer)."""
        try:
            slaves = _get_json(master.http_address, "/master/slaves")
        except (OSError, ValueError):
            return {}
        return {agent["hostname"]: bool(agent.get("active")) for agent in slaves.get("slaves", [])}

    def agents_active(self, master: MasterProcess, names: Sequence[str] | None = None) -> bool:
        """Whether ``master`` lists every agent (or those named) as registered and active."""
        states = self.agent_states(master)
        wanted = names if names is not None else [a.hostname for a in self.agents]
        return all(states.get(name, False) for name in wanted)

    def wait_agents_active(
        self,
        master: MasterProcess | None,
        names: Sequence[str] | None = None,
        timeout: float = 60.0,
    ) -> float:
        """Wait until ``master`` has every agent (or those named) active; ``time.monotonic()``
        when it did."""
        assert master is not None, "no leading master"
        wait(lambda: self.agents_active(master, names), "agents to be active", timeout)
        return time.monotonic()

    def lines_mentioning(self, words: Sequence[str], limit: int = 12) -> dict[str, list[str]]:
        """Per word (a task id), the first log lines of any process naming it, prefixed with
        the process's name."""
        found: dict[str, list[str]] = {word: [] for word in words}
        patterns = {word: re.compile(rf"\b{re.escape(word)}\b") for word in words}
        for process in [*self.masters, *self.agents]:
            for line in process.log_text().splitlines():
                for word, pattern in patterns.items():
                    if len(found[word]) < limit and pattern.search(line):
                        found[word].append(f"{process.name}: {line[:300]}")
        return found

    def keep_logs(self) -> Path:
        """Copy the logs out of the base directory (it is removed); where they went."""
        kept = Path(tempfile.mkdtemp(prefix="emporion-chaos-logs-"))
        shutil.copytree(self.log_dir, kept, dirs_exist_ok=True)
        return kept

    def error_lines(self, limit: int = 12) -> dict[str, list[str]]:
        """Per process, the first distinct error lines of its logs (tracebacks' last lines,
        ERROR records), for a failure report; timestamps dropped so repeats collapse."""
        found: dict[str, list[str]] = {}
        for process in [*self.masters, *self.agents]:
            lines: list[str] = []
            for line in process.log_text().splitlines():
                if not _ERROR.search(line):
                    continue
                text = _STAMP.sub("", line).strip()[:300]
                if text not in lines:
                    lines.append(text)
                if len(lines) >= limit:
                    break
            if lines:
                found[process.name] = lines
        return found


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A non-leader answers 307 to the leader: asked about one master, do not ask another."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _get_json(address: str, path: str) -> dict[str, Any]:
    with _OPENER.open(f"http://{address}{path}", timeout=2.0) as response:
        data = json.loads(response.read())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a JSON object")
    return data


def wait(predicate: Callable[[], object], what: str, timeout: float, every: float = 0.05) -> None:
    """Poll ``predicate`` until true; ClusterError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(every)


@atexit.register
def _close_leftovers() -> None:
    for cluster in list(_LIVE):
        cluster.remove()
