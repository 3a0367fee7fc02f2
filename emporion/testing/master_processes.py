"""Masters under ``--zk`` as real processes, and probes of who leads (for tests and benchmarks).

:class:`ZkMaster` runs ``python -m master --zk ...`` on 127.0.0.1 (gRPC and HTTP ports 0 the
first time, the same ones on a restart) and can crash it (SIGKILL), stop it cleanly (SIGTERM),
freeze it (SIGSTOP) and resume it. Every process dies with the thread that started it
(:func:`~emporion.testing.child_processes.start_child`: its parent-death signal) and at
:meth:`ZkMaster.close`. :func:`probe` asks
a master, over gRPC, whether it leads.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import grpc

from emporion.testing.child_processes import start_child
from protos.v1 import scheduler_pb2, scheduler_pb2_grpc

__all__ = ["LEADER_KEY", "Probe", "ZkMaster", "leader_of", "probe"]

ROOT = Path(__file__).resolve().parents[2]
LEADER_KEY = "emporion-leader"
_ADDRESS = re.compile(r"Emporion master (\S+) listening on (\S+):(\d+)")
_HTTP = re.compile(r"\(http \S+:(\d+)\)")


class ZkMaster:
    """A ``python -m master --zk URL`` subprocess; ``log_dir`` receives its stderr."""

    def __init__(
        self,
        zk_url: str,
        log_dir: Path,
        *,
        session_timeout: float = 2.0,
        extra_args: tuple[str, ...] = (),
        name: str = "master",
    ) -> None:
        self.zk_url = zk_url
        self.log_dir = log_dir
        self.session_timeout = session_timeout
        self.extra_args = extra_args
        self.name = name
        self.port = 0
        self.http_port = 0
        self.master_id = ""
        self.process: subprocess.Popen[str] | None = None
        self.paused = False
        self._log: IO[bytes] | None = None
        self._starts = 0

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>`` of the master."""
        assert self.port, "master not started"
        return f"127.0.0.1:{self.port}"

    @property
    def http_address(self) -> str:
        """``127.0.0.1:<port>`` of the master's HTTP API."""
        assert self.http_port, "master not started"
        return f"127.0.0.1:{self.http_port}"

    @property
    def log_path(self) -> Path:
        """The file holding the latest run's stderr."""
        return self.log_dir / f"{self.name}-{self._starts}.log"

    def start(self) -> str:
        """Start it (again on the same port); its address once it serves (leading or not)."""
        assert self.process is None, "already running"
        self._starts += 1
        self._log = self.log_path.open("wb")
        args = [sys.executable, "-m", "master", "--host", "127.0.0.1", "--port", str(self.port)]
        args += ["--http-port", str(self.http_port)]
        args += ["--zk", self.zk_url, "--zk-session-timeout", str(self.session_timeout)]
        args += ["--allocation-interval", "0.2", *self.extra_args]
        process = start_child(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=self._log, text=True)
        self.process = process
        assert process.stdout is not None
        for line in process.stdout:
            match = _ADDRESS.search(line)
            if match:
                self.master_id, self.port = match.group(1), int(match.group(3))
                http = _HTTP.search(line)
                self.http_port = int(http.group(1)) if http else 0
                break
        else:
            process.wait(10)
            self.process = None
            raise RuntimeError(
                f"{self.name} exited ({process.returncode}): {self.log_path.read_text()}"
            )
        threading.Thread(target=_drain, args=(process.stdout,), daemon=True).start()
        return self.address

    def send(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the running master."""
        assert self.process is not None
        self.process.send_signal(sig)

    def pause(self) -> None:
        """SIGSTOP: frozen, its ZooKeeper session expires after the session timeout."""
        self.send(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        self.send(signal.SIGCONT)
        self.paused = False

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Stop it (SIGTERM: clean, SIGKILL: a crash) and wait; its exit status."""
        process, self.process = self.process, None
        if process is None:
            return 0
        if process.poll() is None:
            if self.paused and sig != signal.SIGKILL:
                process.send_signal(signal.SIGCONT)
            process.send_signal(sig)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.paused = False
        if self._log is not None:
            self._log.close()
            self._log = None
        return process.returncode

    def close(self) -> None:
        """Kill it if it still runs. Idempotent."""
        self.stop(signal.SIGKILL)


def _drain(stream: IO[str]) -> None:
    with stream:
        for _ in stream:
            pass


def leader_of(trailing: Any) -> str | None:
    """The ``emporion-leader`` entry of a call's trailing metadata (sync or aio), if any."""
    for key, value in trailing or ():
        if key == LEADER_KEY:
            return value if isinstance(value, str) else bytes(value).decode()
    return None


@dataclass(frozen=True, slots=True)
class Probe:
    """What a master answered a probe: whether it leads, and whom it names if not."""

    leading: bool
    code: grpc.StatusCode
    details: str
    leader: str | None


def probe(address: str, timeout: float = 5.0) -> Probe:
    """Ask the master at ``address`` a call only a leader judges (RECONCILE without a framework
    id: a leader refuses it as INVALID_ARGUMENT, a non-leader with UNAVAILABLE)."""
    call = scheduler_pb2.Call(type=scheduler_pb2.Call.RECONCILE)
    with grpc.insecure_channel(address) as channel:
        stub = scheduler_pb2_grpc.SchedulerStub(channel)
        try:
            stub.Reconcile(call, timeout=timeout)
        except grpc.RpcError as error:
            code, details = error.code(), error.details() or ""
            leader = leader_of(error.trailing_metadata())
            return Probe(code != grpc.StatusCode.UNAVAILABLE, code, details, leader)
    return Probe(True, grpc.StatusCode.OK, "", None)
