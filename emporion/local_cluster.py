"""A whole Emporion cluster on one machine: a standalone master and N agents as subprocesses.

``emporion local`` and ``make demo`` use it, and so do tests that want a real cluster. The
master serves its HTTP API on a free port (``http_port``; None: none). Each
process gets its own directory under the cluster's work dir (``master/``, ``agent-<i>/``) and
writes its output to ``logs/<name>.log`` there. The host's CPUs, memory and a port range are
divided between the agents (each agent its own ports, so tasks of different agents never
collide), unless ``agent_resources`` says otherwise.

Stopping sends SIGUSR1 to every agent (shut down for good: their tasks are killed and their
cgroups removed), then SIGTERM to the master, waits, and SIGKILLs whatever is left; a work dir
the cluster created itself is removed. Nothing of the cluster outlives ``stop()``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

__all__ = ["ClusterError", "LocalCluster", "split_host_resources"]

MASTER_LINE = re.compile(
    r"Emporion master \S+ listening on (\S+)(?: \(http (\S+)\))?(?: \(agents (\S+)\))?"
)
AGENT_LINE = re.compile(r"^emporion agent: ", re.MULTILINE)
PORTS_PER_AGENT = 1000
FIRST_PORT = 31000


class ClusterError(RuntimeError):
    """The local cluster could not start; the message says which process and why.

    ``process`` names it (``master``, ``agent-0``), ``status`` is its exit status (None: it did
    not exit but never got ready) and ``reason`` the last line of its log: a process that refused
    its flags or its port exits with status 2 and says why in that one line.
    """

    def __init__(
        self, message: str, process: str = "", status: int | None = None, reason: str = ""
    ) -> None:
        super().__init__(message)
        self.process = process
        self.status = status
        self.reason = reason


def split_host_resources(agents: int, index: int) -> str:
    """Agent ``index``'s share of this host: CPUs and 80% of memory split evenly, own ports."""
    if agents < 1 or not 0 <= index < agents:
        raise ValueError(f"agent index {index} out of range for {agents} agents")
    cpus = max(0.1, round((os.cpu_count() or 1) / agents, 1))
    mem_mb = max(64, int(_total_memory_mb() * 0.8 / agents))
    first = FIRST_PORT + index * PORTS_PER_AGENT
    return f"cpus:{cpus};mem:{mem_mb};ports:[{first}-{first + PORTS_PER_AGENT - 1}]"


def _total_memory_mb() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    except (ValueError, OSError):
        return 1024


@dataclass
class _Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path


@dataclass
class LocalCluster:
    """A master and ``agents`` agents on this machine; use as a context manager."""

    agents: int = 1
    work_dir: Path | None = None
    port: int = 0
    http_port: int | None = 0
    """The master's HTTP port: 0 picks a free one (never a fixed default), None serves none."""
    isolation: str = "auto"
    agent_resources: str | None = None
    master_flags: tuple[str, ...] = ()
    agent_flags: tuple[str, ...] = ()
    python: str = sys.executable
    master_address: str | None = field(default=None, init=False)
    master_http_address: str | None = field(default=None, init=False)
    """``host:port`` of the master's HTTP API once started (None if it serves none)."""
    agents_address: str | None = field(default=None, init=False)
    """Where the agents connect: the master's agent gateways (``--agent-gateways`` among
    ``master_flags``) once started, else None (the master itself)."""
    _created_dir: bool = field(default=False, init=False)
    _processes: list[_Process] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        if self.agents < 0:
            raise ValueError(f"agents must be >= 0, not {self.agents}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be within 0-65535, not {self.port}")
        if self.http_port is not None and not 0 <= self.http_port <= 65535:
            raise ValueError(f"http_port must be within 0-65535, not {self.http_port}")
        if self.isolation not in ("auto", "cgroups", "posix"):
            raise ValueError(f"isolation must be auto, cgroups or posix, not {self.isolation!r}")

    @property
    def root(self) -> Path:
        """The cluster's work dir (only valid once started)."""
        if self.work_dir is None:
            raise ClusterError("the cluster has not been started")
        return self.work_dir

    def start(self, timeout: float = 60.0) -> str:
        """Start the master, then the agents; return the master's ``host:port``."""
        if self.work_dir is None:
            self.work_dir = Path(tempfile.mkdtemp(prefix="emporion-local-"))
            self._created_dir = True
        self.work_dir = self.work_dir.resolve()
        (self.work_dir / "logs").mkdir(parents=True, exist_ok=True)
        http_port = "off" if self.http_port is None else str(self.http_port)
        try:
            master = self._spawn(
                "master",
                [
                    "-m", "master", "--port", str(self.port), "--http-port", http_port,
                    "--work-dir", str(self.work_dir / "master"), *self.master_flags,
                ],
            )  # fmt: skip
            found = self._wait_for_line(master, MASTER_LINE, timeout)
            self.master_address = found.group(1)
            self.master_http_address = found.group(2)
            self.agents_address = found.group(3)
            target = self.agents_address or self.master_address
            agents = [
                self._spawn(f"agent-{index}", self._agent_args(index, target))
                for index in range(self.agents)
            ]
            for agent in agents:
                self._wait_for_line(agent, AGENT_LINE, timeout)
        except BaseException:
            self.stop()
            raise
        return self.master_address

    def stop(self, timeout: float = 20.0, *, keep_work_dir: bool = False) -> None:
        """Stop every process (agents for good, then the master); remove a temporary work dir
        unless ``keep_work_dir`` (its logs tell why something failed)."""
        agents = [p for p in self._processes if p.name != "master"]
        masters = [p for p in self._processes if p.name == "master"]
        self._signal_and_wait(agents, signal.SIGUSR1, timeout)
        self._signal_and_wait(masters, signal.SIGTERM, timeout)
        self._processes.clear()
        if self._created_dir and self.work_dir is not None and not keep_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)
            self._created_dir = False

    def _agent_args(self, index: int, master: str) -> list[str]:
        resources = self.agent_resources or split_host_resources(self.agents, index)
        work_dir = self.root / f"agent-{index}"
        return [
            "-m", "agent", "--master", master, "--work-dir", str(work_dir),
            "--port", "0", "--ip", "127.0.0.1", "--resources", resources,
            "--isolation", self.isolation, *self.agent_flags,
        ]  # fmt: skip

    def log_tail(self, name: str, lines: int = 20) -> str:
        """The last lines of one process's log, for error messages."""
        path = self.root / "logs" / f"{name}.log"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _spawn(self, name: str, args: list[str]) -> _Process:
        log = self.root / "logs" / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                [self.python, *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us only; we stop the children in order
            )
        process = _Process(name, popen, log)
        self._processes.append(process)
        return process

    def _wait_for_line(
        self, process: _Process, pattern: re.Pattern[str], timeout: float
    ) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            found = pattern.search(process.log.read_text(errors="replace"))
            if found:
                return found
            status = process.popen.poll()
            if status is not None:
                tail = self.log_tail(process.name)
                raise ClusterError(
                    f"{process.name} exited with status {status} before it was ready:\n{tail}",
                    process.name,
                    status,
                    tail.rsplit("\n", 1)[-1],
                )
            if time.monotonic() > deadline:
                tail = self.log_tail(process.name)
                raise ClusterError(
                    f"{process.name} was not ready within {timeout:g}s:\n{tail}",
                    process.name,
                    None,
                    tail.rsplit("\n", 1)[-1],
                )
            time.sleep(0.05)

    @staticmethod
    def _signal_and_wait(processes: list[_Process], sig: signal.Signals, timeout: float) -> None:
        for process in processes:
            if process.popen.poll() is None:
                process.popen.send_signal(sig)
        deadline = time.monotonic() + timeout
        for process in processes:
            try:
                process.popen.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait()
