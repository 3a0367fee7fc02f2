"""Container: the handle of one launched container, for its whole life.

The agent's runtime drives it without blocking: ``pidfd()`` gives an fd that becomes readable
when the launched process ends (usable with ``loop.add_reader``, also for a process that is
not the agent's child after a restart), then ``poll()`` reaps it and says how it ended.
``destroy()`` blocks briefly (milliseconds with cgroup.kill or the freezer) and may be run in
an executor thread.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from agent.isolation import procfs
from agent.isolation.cgroupfs import POLL_S, kill_pids
from agent.isolation.confinement import Confinement
from agent.isolation.errors import IsolationError
from agent.isolation.limits import MIB, ContainerLimits
from agent.isolation.state import ContainerState, ContainerStats, ExitInfo

DESTROY_TIMEOUT_S = 10.0
EXIT_STATUS_FILE = "exit_status"
# Signals the launch helper and the namespace init forward to the task themselves.
_FORWARDED = frozenset(
    {
        signal.SIGTERM,
        signal.SIGINT,
        signal.SIGHUP,
        signal.SIGQUIT,
        signal.SIGUSR1,
        signal.SIGUSR2,
    }
)


def destroy_processes(
    confinement: Confinement,
    deadline: float,
    container_id: str,
    reap: Callable[[], object] = lambda: None,
) -> None:
    """SIGKILL rounds until ``confinement`` holds no process; IsolationError past deadline.

    None when it holds none already (the usual end: the task and its helper exited), then
    without freezing and thawing a cgroup that is empty."""
    if not confinement.pids():
        return
    while True:
        confinement.kill_round()
        reap()
        remaining = confinement.pids()
        if not remaining:
            return
        if time.monotonic() >= deadline:
            raise IsolationError(
                f"container {container_id}: processes {sorted(remaining)} survived SIGKILL"
            )
        time.sleep(POLL_S)


def remove_run_dir(run: Path) -> None:
    """Remove a container's run directory: its few files, then it (rmtree for anything else,
    which costs several times the system calls)."""
    try:
        names = os.listdir(run)
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(run, name))
        os.rmdir(run)
    except FileNotFoundError:
        pass
    except OSError:  # A directory in it, or anything else: the long way.
        shutil.rmtree(run, ignore_errors=True)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _bytes(value: int) -> str:
    return f"{value // MIB} MiB" if value % MIB == 0 else f"{value} bytes"


class Container:
    """A launched container: its process, its confinement (cgroups or session), its sandbox."""

    def __init__(
        self,
        *,
        container_id: str,
        pid: int,
        start_time: int,
        isolation: str,
        sandbox: Path,
        confinement: Confinement,
        namespaces: bool = False,
        init_pid: int | None = None,
        run_dir: Path | None = None,
        supervised: bool = False,
        on_destroyed: Callable[[], None] | None = None,
    ) -> None:
        self.container_id = container_id
        self.pid = pid
        self.start_time = start_time
        self.isolation = isolation
        self.sandbox = sandbox
        self.namespaces = namespaces
        self.init_pid = init_pid
        self.run_dir = run_dir
        self.supervised = supervised
        self._confinement = confinement
        self._on_destroyed = on_destroyed
        self._lock = threading.RLock()
        self._wait_status: int | None = None
        self._ended = False
        self._not_child = False
        self._exit: ExitInfo | None = None
        self._destroyed = False

    def __repr__(self) -> str:
        return f"Container({self.container_id!r}, pid={self.pid}, isolation={self.isolation!r})"

    @classmethod
    def from_state(
        cls,
        state: ContainerState,
        confinement: Confinement,
        on_destroyed: Callable[[], None] | None = None,
    ) -> Container:
        return cls(
            container_id=state.container_id,
            pid=state.pid,
            start_time=state.start_time,
            isolation=state.isolation,
            sandbox=Path(state.sandbox),
            confinement=confinement,
            namespaces=state.namespaces,
            init_pid=state.init_pid,
            run_dir=Path(state.run_dir) if state.run_dir is not None else None,
            supervised=state.supervised,
            on_destroyed=on_destroyed,
        )

    def state(self) -> ContainerState:
        """What to checkpoint so that a restarted agent can ``recover`` this container."""
        return ContainerState(
            container_id=self.container_id,
            isolation=self.isolation,
            pid=self.pid,
            start_time=self.start_time,
            sandbox=str(self.sandbox),
            cgroups=tuple(str(path) for path in self._confinement.paths),
            namespaces=self.namespaces,
            init_pid=self.init_pid,
            run_dir=str(self.run_dir) if self.run_dir is not None else None,
            supervised=self.supervised,
        )

    def pidfd(self) -> int | None:
        """A new pidfd for the launched process (the caller closes it), readable once it ends.

        None when the process is already gone (call ``poll()``) or pidfds are unsupported.
        """
        try:
            fd = os.pidfd_open(self.pid)
        except OSError:
            return None
        # Opened by number: make sure it is still our process and not a reused pid.
        if procfs.start_time(self.pid) != self.start_time:
            os.close(fd)
            return None
        return fd

    def poll(self) -> ExitInfo | None:
        """How the launched process ended, or None while it runs. Never blocks; reaps it."""
        with self._lock:
            if self._exit is None and self._check_ended():
                self._exit = self._describe_exit()
            return self._exit

    def _check_ended(self) -> bool:
        if self._ended:
            return True
        if not self._not_child:
            stat = procfs.read_stat(self.pid)
            if stat is None or stat.start_time != self.start_time:
                # Reaped by someone else, or the number now belongs to another process:
                # waiting for it could steal another child's status.
                self._not_child = True
            else:
                try:
                    pid, wait_status = os.waitpid(self.pid, os.WNOHANG)
                except ChildProcessError:
                    self._not_child = True
                else:
                    if pid == 0:
                        return False
                    self._wait_status = wait_status
                    self._ended = True
                    return True
        if procfs.is_running(self.pid, self.start_time):
            return False
        self._ended = True
        return True

    def _recorded_status(self) -> tuple[int | None, int | None]:
        """(exit code, signal) the launch helper wrote when this agent was not its parent."""
        if self._wait_status is not None:
            if os.WIFSIGNALED(self._wait_status):
                return None, os.WTERMSIG(self._wait_status)
            return os.waitstatus_to_exitcode(self._wait_status), None
        if self.run_dir is not None:
            try:
                kind, number = (self.run_dir / EXIT_STATUS_FILE).read_text().split()
                return (int(number), None) if kind == "exit" else (None, int(number))
            except (OSError, ValueError):
                pass
        return None, None

    def _describe_exit(self) -> ExitInfo:
        status, sig = self._recorded_status()
        if status is not None:
            ended = f"the command exited with status {status}"
        elif sig is not None:
            ended = f"the command was killed by {_signal_name(sig)}"
        else:
            ended = "the command ended; its exit status is unknown (not a child of this agent)"
        stats = self._confinement.stats()
        if stats.oom_kills is not None:
            oom = stats.oom_kills > 0
            evidence = f"{stats.oom_kills} OOM kill(s)"
        else:  # old v1 kernels do not count OOM kills: hitting the limit, then SIGKILL
            oom = bool(stats.mem_limit_hits) and sig == signal.SIGKILL
            evidence = f"limit hit {stats.mem_limit_hits} times, then SIGKILL"
        if oom:
            limit = _bytes(stats.mem_limit_bytes) if stats.mem_limit_bytes else "unknown size"
            message = (
                f"memory limit of {limit} exceeded: the kernel's OOM killer ended the "
                f"container's process ({evidence}); {ended}"
            )
        else:
            message = ended[0].upper() + ended[1:]
        return ExitInfo(status=status, signal=sig, oom_killed=oom, message=message)

    def update(self, limits: ContainerLimits) -> None:
        """Apply new CPU, memory and pids limits (rlimits stay as launched)."""
        with self._lock:
            if self._destroyed:
                raise IsolationError(f"container {self.container_id} was destroyed")
            self._confinement.update(limits)

    def stats(self) -> ContainerStats:
        return self._confinement.stats()

    def signal_all(self, sig: int) -> None:
        """Send ``sig`` to every process of the container.

        The supervising launch helper (and, with namespaces, the namespace init) forward
        termination signals to the task themselves, so they are skipped for such signals (the
        task gets it once).
        """
        pids = self._confinement.pids()
        if (self.namespaces or self.supervised) and sig in _FORWARDED:
            pids -= {self.pid, self.init_pid or 0}
        kill_pids(pids, sig)

    def destroy(self, timeout_s: float = DESTROY_TIMEOUT_S, *, keep_run_dir: bool = False) -> None:
        """SIGKILL every process, reap the launched one, remove every cgroup; idempotent.

        Raises IsolationError if something survives ``timeout_s`` (e.g. a process stuck in
        the kernel); calling it again later continues. ``keep_run_dir``: leave the run
        directory (with the exit status the helper recorded) until :meth:`remove_run_dir`,
        which the agent calls once the exit is recorded in its checkpoint: an agent killed in
        between still learns the exit status after its restart.
        """
        with self._lock:
            if self._destroyed:
                return
            self.poll()  # OOM evidence and exit status before the cgroups go
            deadline = time.monotonic() + timeout_s
            destroy_processes(self._confinement, deadline, self.container_id, self._check_ended)
            while not self._check_ended():
                if time.monotonic() >= deadline:
                    raise IsolationError(f"container {self.container_id}: pid {self.pid} lives")
                time.sleep(POLL_S)
            self.poll()
            self._confinement.remove(deadline)
            self._destroyed = True
        if not keep_run_dir:
            self.remove_run_dir()

    def remove_run_dir(self) -> None:
        """Remove the run directory of a destroyed container (and, through ``on_destroyed``,
        the isolation's own once empty). Idempotent."""
        if self.run_dir is not None:
            remove_run_dir(self.run_dir)
        if self._on_destroyed is not None:
            self._on_destroyed()

    def terminate(self, grace_s: float = 3.0) -> ExitInfo | None:
        """Blocking SIGTERM, up to ``grace_s`` for the process to end, then ``destroy()``.

        For tests and tools; the agent's runtime sequences this itself without blocking.
        """
        if self.poll() is None:
            self.signal_all(signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            while self.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
        self.destroy()
        return self.poll()
