"""The agent's side of a launch: hand the container's spec to a launch helper and learn how
its setup went.

Helpers come from the agent's fork server (:mod:`agent.isolation.helper.forkserver`), started
once per agent process and restarted whenever it is found dead: each launch then costs a
clone of a warm process instead of a new interpreter. Where the server cannot clone
(``clone(CLONE_PARENT)`` refused), each launch spawns a fresh helper that serves the same
request itself (``init.py --launch-one``). Either way the helper is the agent's own child,
reports over a status pipe (JSON lines, then end-of-file once the task was exec'd or the
helper is gone) and never sees anything of the agent but the descriptors it was sent.

``os.posix_spawn`` starts both kinds of process: no Python runs in a forked copy of the
multi-threaded agent (which is what ``preexec_fn`` would do, and why it is unsafe there).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import select
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from agent.isolation import procfs
from agent.isolation.helper.forkserver import encode_request

log = logging.getLogger(__name__)

INIT_SCRIPT = Path(__file__).with_name("init.py")
SERVER_FD = 3
LAUNCH_TIMEOUT_S = 30.0
# Never follow a symlink planted in the sandbox: the agent may be root.
STDERR_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
# Signals the agent may ignore or handle; the helpers start with their defaults.
DEFAULT_SIGNALS = (
    signal.SIGPIPE,
    signal.SIGXFSZ,
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGCHLD,
)
# clone(CLONE_PARENT) refused for good: launch by spawning a helper each time instead.
_CLONE_UNAVAILABLE = (errno.EPERM, errno.ENOSYS, errno.EINVAL)


@dataclass(frozen=True)
class HelperStart:
    """A started helper: its pid and start time, and what it reported before the task ran.

    ``error`` is set when a step failed before the task was exec'd; the helper is then
    exiting (or, on a timeout, stuck) and the caller must destroy what it made. ``pid`` is 0
    when no helper was started at all (then ``error`` says why).
    """

    pid: int
    start_time: int
    init_pid: int | None
    error: str | None


def helper_argv(*args: str) -> list[str]:
    """Run ``init.py`` by path in isolated mode: no site-packages, no environment, no cwd."""
    return [sys.executable, "-I", "-S", str(INIT_SCRIPT), *args]


def _spawn_helper_process(mode: str) -> tuple[int, socket.socket]:
    """posix_spawn ``init.py <mode>`` with a socket on fd 3: its pid and our end."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        # A number >= 10 so the dup2 onto fd 3 in the child never clobbers its own source.
        source = fcntl.fcntl(theirs.fileno(), fcntl.F_DUPFD_CLOEXEC, 10)
        theirs.close()
        actions = [
            (os.POSIX_SPAWN_DUP2, source, SERVER_FD),
            (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
        ]
        argv = helper_argv(mode)
        try:
            pid = os.posix_spawn(
                argv[0],
                argv,
                {},
                file_actions=actions,
                setpgroup=0,  # Out of the agent's process group: a terminal's ^C is the agent's.
                setsigdef=DEFAULT_SIGNALS,
                setsigmask=(),
            )
        finally:
            os.close(source)
    except BaseException:
        ours.close()
        raise
    return pid, ours


def _send(sock: socket.socket, request: bytes, fds: list[int]) -> None:
    sent = socket.send_fds(sock, [request], fds)
    if sent < len(request):
        sock.sendall(request[sent:])


class _ForkServer:
    """The running server: its pid and our end of its socket."""

    def __init__(self) -> None:
        self.pid, self.sock = _spawn_helper_process("--fork-server")
        self.owner = os.getpid()
        log.debug("Started the launch fork server, pid %d", self.pid)

    def alive(self) -> bool:
        if self.owner != os.getpid():  # We are a fork of the process that started it.
            return False
        try:
            pid, _status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            return False
        return pid == 0

    def stop(self) -> None:
        if self.owner != os.getpid():
            return
        self.sock.close()  # It reads end-of-file and exits.
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)  # It ends in milliseconds: nothing else to do.


class LaunchHelpers:
    """Starts launch helpers, through the fork server (``fork_server``) or one spawned each.

    Thread-safe: requests are sent one at a time (a clone takes a fraction of a
    millisecond), and each caller then waits on its own status pipe.
    """

    def __init__(self, *, fork_server: bool = True) -> None:
        self.fork_server = fork_server
        self._server: _ForkServer | None = None
        self._lock = threading.Lock()

    @property
    def server_pid(self) -> int | None:
        """The running fork server's pid (None before the first launch, or after it died)."""
        with self._lock:
            server = self._server
            return server.pid if server is not None and server.alive() else None

    def close(self) -> None:
        """Stop the fork server; containers keep running (they are not its children)."""
        with self._lock:
            if self._server is not None:
                self._server.stop()
                self._server = None

    def _send_to_server(self, request: bytes, fds: list[int]) -> None:
        """Send through the server, (re)starting it first if it is not running."""
        with self._lock:
            for attempt in range(2):
                if self._server is None or not self._server.alive():
                    if self._server is not None:
                        log.warning(
                            "The launch fork server (pid %d) died; restarting it", self._server.pid
                        )
                        self._server.sock.close()
                    self._server = None
                    self._server = _ForkServer()
                try:
                    _send(self._server.sock, request, fds)
                    return
                except (BrokenPipeError, ConnectionResetError):
                    if attempt == 1:
                        raise
                    self._server.sock.close()
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(self._server.pid, 0)  # It died: reap it, then restart.
                    self._server = None

    def _kill_server(self) -> None:
        with self._lock:
            server, self._server = self._server, None
        if server is not None and server.owner == os.getpid():
            log.warning("The launch fork server (pid %d) is stuck; killing it", server.pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(server.pid, signal.SIGKILL)
            server.stop()

    def _send_to_new_helper(self, request: bytes, fds: list[int]) -> int:
        pid, sock = _spawn_helper_process("--launch-one")
        # If it died at once, the status pipe's end-of-file tells.
        with sock, contextlib.suppress(BrokenPipeError, ConnectionResetError):
            _send(sock, request, fds)
        return pid

    def start(
        self,
        spec: dict[str, object],
        stderr_file: Path,
        lock_fd: int,
        timeout_s: float = LAUNCH_TIMEOUT_S,
    ) -> HelperStart:
        """Start the helper for ``spec``; wait until it exec'd the task or reported failure.

        ``lock_fd``: the agent's locked intent file, held by the request until the helper has
        recorded its pids. Raises OSError when no helper can be started at all (then none was).
        """
        request = encode_request(spec)
        stderr_fd = os.open(stderr_file, STDERR_FLAGS, 0o644)
        try:
            for attempt in range(3):
                started = self._start_once(request, spec, stderr_fd, lock_fd, timeout_s)
                if started is not None:
                    return started
                log.warning("Launch helper lost before it started; trying again (%d)", attempt)
        finally:
            os.close(stderr_fd)
        raise OSError(errno.ECHILD, "the launch fork server died three times in a row")

    def _start_once(
        self,
        request: bytes,
        spec: dict[str, object],
        stderr_fd: int,
        lock_fd: int,
        timeout_s: float,
    ) -> HelperStart | None:
        """One try; None when the fork server died before handling the request (retry)."""
        via_server = self.fork_server
        read_end, write_end = os.pipe()
        try:
            try:
                fds = [stderr_fd, write_end, lock_fd]
                spawned = None
                if via_server:
                    self._send_to_server(request, fds)
                else:
                    spawned = self._send_to_new_helper(request, fds)
            finally:
                os.close(write_end)
            messages, timed_out = _read_status(read_end, timeout_s)
        finally:
            os.close(read_end)
        pid = spawned
        init_pid: int | None = None
        errors: list[str] = []
        for message in messages:
            if isinstance(message.get("pid"), int):
                pid = message["pid"]  # type: ignore[assignment]
            if isinstance(message.get("init_pid"), int):
                init_pid = message["init_pid"]  # type: ignore[assignment]
            if message.get("stage") == "fork-server" and message.get("errno") in _CLONE_UNAVAILABLE:
                log.warning("Launching without the fork server: %s", message.get("error"))
                self.fork_server = False
                return None
            if "error" in message:
                errors.append(str(message["error"]))
        if pid is None:
            recorded = _recorded_pid(spec.get("pid_file"))
            if recorded is None and not errors and not timed_out:
                return None  # The server died before it cloned: nothing ran.
            pid = recorded or 0
            if timed_out and via_server:
                self._kill_server()  # Stuck before it cloned: the next launch gets a new one.
        if timed_out:
            errors.append(f"the launch helper did not start the command within {timeout_s:g} s")
        # Our child (spawned, or cloned for us): its /proc entry stays until we reap it.
        start_time = (procfs.start_time(pid) or 0) if pid else 0
        return HelperStart(pid, start_time, init_pid, "; ".join(errors) or None)


def _recorded_pid(pid_file: object) -> int | None:
    """The pid a helper recorded in its pid file (its server died before telling us)."""
    if not isinstance(pid_file, str):
        return None
    try:
        pid = json.loads(Path(pid_file).read_text()).get("pid")
    except (OSError, ValueError, AttributeError):
        return None
    return pid if isinstance(pid, int) and pid > 0 else None


_shared: LaunchHelpers | None = None
_shared_lock = threading.Lock()


def shared_helpers() -> LaunchHelpers:
    """The process's launch helpers: one fork server serves every isolation of a process."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = LaunchHelpers()
        return _shared


def _read_status(fd: int, timeout_s: float) -> tuple[list[dict[str, object]], bool]:
    """JSON lines from ``fd`` until end-of-file; True as second item if it timed out."""
    data = b""
    deadline = time.monotonic() + timeout_s
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    timed_out = False
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            break
        if not poller.poll(remaining * 1000):
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    messages = []
    for line in data.decode(errors="replace").splitlines():
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            message = {"error": f"unreadable message from the launch helper: {line!r}"}
        if isinstance(message, dict):
            messages.append(message)
    return messages, timed_out
