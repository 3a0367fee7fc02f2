"""Masters and agents as real processes, each in its own process group, for the chaos suite.

Every process is started with ``start_new_session=True`` (its own session and process group, so
a crash of one never takes a signal meant for another) and, where ``setpriv`` exists, with
``--pdeathsig KILL`` (it dies with the thread that started it even if the harness is killed).
:meth:`ManagedProcess.crash` is a ``kill -9`` of that one process, exactly what an operator's
``kill -9 <pid>`` does: an agent's containers, which run in sessions of their own, survive it,
as they must for recovery. :meth:`ManagedProcess.close` kills the whole process group and is
idempotent, so a failing scenario still leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO

__all__ = ["AgentProcess", "ManagedProcess", "MasterProcess", "StartError"]

ROOT = Path(__file__).resolve().parents[3]
_MASTER_BANNER = re.compile(r"Emporion master (\S+) listening on (\S+):(\d+) \(http \S+:(\d+)\)")
_AGENT_BANNER = re.compile(r"emporion agent: http=(\S+):(\d+) executor=127\.0\.0\.1:(\d+)")


class StartError(RuntimeError):
    """A process exited (or printed something unexpected) instead of its start-up banner."""


class ManagedProcess:
    """One child process in its own process group; stderr goes to ``<log_dir>/<name>-<n>.log``.

    ``start`` waits for the first stdout line matching ``banner`` and returns the match; the
    rest of stdout is drained in a thread so the child never blocks on a full pipe.
    """

    def __init__(self, name: str, log_dir: Path) -> None:
        self.name = name
        self.log_dir = log_dir
        self.process: subprocess.Popen[str] | None = None
        self.paused = False
        self.starts = 0
        self._log: IO[bytes] | None = None
        self.env: dict[str, str] = {}
        """Extra environment variables (the cluster marks every process of a run with one)."""

    @property
    def log_path(self) -> Path:
        """The log of the latest start."""
        return self.log_dir / f"{self.name}-{self.starts}.log"

    @property
    def pid(self) -> int:
        """The running process's id (its process group id too)."""
        assert self.process is not None, f"{self.name} is not running"
        return self.process.pid

    @property
    def running(self) -> bool:
        """Started, not yet reaped, and not exited."""
        return self.process is not None and self.process.poll() is None

    def _spawn(self, args: Sequence[str], banner: re.Pattern[str]) -> re.Match[str]:
        assert self.process is None, f"{self.name} is already running"
        self.starts += 1
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        command = list(args)
        setpriv = shutil.which("setpriv")
        if setpriv is not None:
            command = [setpriv, "--pdeathsig", "KILL", *command]
        env = {**os.environ, "PYTHONPATH": str(ROOT), **self.env}
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            start_new_session=True,
        )
        self.process = process
        assert process.stdout is not None
        for line in process.stdout:
            match = banner.search(line)
            if match is not None:
                threading.Thread(target=_drain, args=(process.stdout,), daemon=True).start()
                return match
        self.close()
        raise StartError(f"{self.name} exited before serving:\n{self.log_tail()}")

    def send(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the process (not its group)."""
        assert self.process is not None, f"{self.name} is not running"
        self.process.send_signal(sig)

    def crash(self) -> None:
        """``kill -9`` of the process alone, then reap it; its group's other members live on."""
        process = self.process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait()
        self._forget()

    def pause(self) -> None:
        """SIGSTOP: frozen (its ZooKeeper session expires after the session timeout)."""
        self.send(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        self.send(signal.SIGCONT)
        self.paused = False

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        """Signal the process, wait for it (SIGKILL of the group after ``timeout``); its status."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                if self.paused:
                    process.send_signal(signal.SIGCONT)
                process.send_signal(sig)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                _kill_group(process.pid)
                process.wait()
        self._forget()
        return process.returncode

    def close(self) -> None:
        """Kill the process's whole group and reap it. Idempotent."""
        process = self.process
        if process is None:
            return
        _kill_group(process.pid)
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait()
        self._forget()

    def _forget(self) -> None:
        self.process = None
        self.paused = False
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_text(self) -> str:
        """Every start's log, concatenated."""
        parts = []
        for start in range(1, self.starts + 1):
            path = self.log_dir / f"{self.name}-{start}.log"
            with contextlib.suppress(OSError):
                parts.append(path.read_text(errors="replace"))
        return "".join(parts)

    def log_tail(self, lines: int = 40) -> str:
        """The end of the latest log, for error messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _drain(stream: IO[str]) -> None:
    with contextlib.suppress(ValueError, OSError), stream:
        for _ in stream:
            pass


class MasterProcess(ManagedProcess):
    """``python -m master``: under ``--zk URL`` (``zk_url``) or standalone on ``work_dir``.

    A restart reuses the first start's ports, as an operator restarting it would.
    """

    def __init__(
        self,
        name: str,
        log_dir: Path,
        *,
        zk_url: str | None = None,
        work_dir: Path | None = None,
        session_timeout: float = 2.0,
        extra_args: Sequence[str] = (),
    ) -> None:
        if (zk_url is None) == (work_dir is None):
            raise ValueError(f"{name}: give exactly one of zk_url and work_dir")
        super().__init__(name, log_dir)
        self.zk_url = zk_url
        self.work_dir = work_dir
        self.session_timeout = session_timeout
        self.extra_args = tuple(extra_args)
        self.port = 0
        self.http_port = 0
        self.master_id = ""

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``."""
        assert self.port, f"{self.name} was never started"
        return f"127.0.0.1:{self.port}"

    def start(self) -> str:
        """Start it (again, on the same port); its address once it serves."""
        args = [sys.executable, "-m", "master", "--host", "127.0.0.1", "--port", str(self.port)]
        args += ["--http-port", str(self.http_port), "--allocation-interval", "0.2"]
        if self.zk_url is not None:
            args += ["--zk", self.zk_url, "--zk-session-timeout", f"{self.session_timeout}"]
        else:
            assert self.work_dir is not None
            args += ["--work-dir", str(self.work_dir), "--registry", "file"]
        match = self._spawn([*args, *self.extra_args], _MASTER_BANNER)
        self.master_id, self.port = match.group(1), int(match.group(3))
        self.http_port = int(match.group(4))
        return self.address

    @property
    def http_address(self) -> str:
        """``127.0.0.1:<port>`` of its HTTP API."""
        assert self.http_port, f"{self.name} was never started"
        return f"127.0.0.1:{self.http_port}"


class AgentProcess(ManagedProcess):
    """``python -m agent`` on ``work_dir`` (kept across restarts, so it recovers its tasks)."""

    def __init__(
        self,
        name: str,
        log_dir: Path,
        *,
        master: str,
        work_dir: Path,
        resources: str,
        isolation: str,
        extra_args: Sequence[str] = (),
    ) -> None:
        super().__init__(name, log_dir)
        self.master = master
        self.work_dir = work_dir
        self.resources = resources
        self.isolation = isolation
        self.extra_args = tuple(extra_args)
        self.executor_port = 0
        self.hostname = name
        """Advertised to the master (``--hostname``): how the suite tells agents apart."""

    def start(self) -> None:
        """Start it (again: on the same executor port, recovering its checkpoint)."""
        args = [sys.executable, "-m", "agent", "--master", self.master]
        args += ["--work-dir", str(self.work_dir), "--port", "0", "--ip", "127.0.0.1"]
        args += ["--hostname", self.hostname]
        args += ["--resources", self.resources, "--isolation", self.isolation]
        args += ["--executor-port", str(self.executor_port), *self.extra_args]
        match = self._spawn(args, _AGENT_BANNER)
        self.executor_port = int(match.group(3))

    def shutdown(self, timeout: float = 60.0) -> int | None:
        """SIGUSR1: shut down for good, killing every task; wait for it."""
        return self.stop(signal.SIGUSR1, timeout)
