"""The agent's side of a launch: spawn the helper (``init.py``) and learn how its setup went.

``os.posix_spawn`` starts a fresh interpreter without running any Python in a forked copy of
the multi-threaded agent (which is what ``preexec_fn`` would do, and why it is unsafe there).
The helper reads its JSON spec from a file and reports over a pipe dup'ed to fd 3: JSON lines,
then end-of-file once the task was exec'd (or the helper is gone).
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from agent.isolation import procfs

INIT_SCRIPT = Path(__file__).with_name("init.py")
STATUS_FD = 3
LAUNCH_TIMEOUT_S = 30.0
# Never follow a symlink planted in the sandbox: the agent may be root.
STDERR_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW
# Signals the agent may ignore or handle; the helper starts with their defaults.
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


@dataclass(frozen=True)
class HelperStart:
    """A spawned helper: its pid and start time, and what it reported before the task ran.

    ``error`` is set when a step failed before the task was exec'd; the helper is then
    exiting (or, on a timeout, stuck) and the caller must destroy what it made.
    """

    pid: int
    start_time: int
    init_pid: int | None
    error: str | None


def helper_argv(*args: str) -> list[str]:
    """Run ``init.py`` by path in isolated mode: no site-packages, no environment, no cwd."""
    return [sys.executable, "-I", "-S", str(INIT_SCRIPT), *args]


def start_helper(
    spec_file: Path, stderr_file: Path, timeout_s: float = LAUNCH_TIMEOUT_S
) -> HelperStart:
    """Spawn the helper for ``spec_file``; wait until it exec'd the task or reported failure.

    Raises OSError when the helper cannot be spawned at all (then nothing was started).
    """
    read_end, write_end = os.pipe()
    # A number >= 10 so the dup2 onto fd 3 in the child never clobbers its own source.
    status_source = fcntl.fcntl(write_end, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(write_end)
    actions = [
        (os.POSIX_SPAWN_DUP2, status_source, STATUS_FD),
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
        # Until it redirects, the helper's own crash output goes to the sandbox's stderr.
        (os.POSIX_SPAWN_OPEN, 2, str(stderr_file), STDERR_FLAGS, 0o644),
    ]
    argv = helper_argv("--status-fd", str(STATUS_FD), str(spec_file))
    try:
        pid = os.posix_spawn(
            argv[0], argv, {}, file_actions=actions, setsigdef=DEFAULT_SIGNALS, setsigmask=()
        )
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(status_source)
    # Our unreaped child: its /proc entry stays until we wait for it, even if it exited.
    start_time = procfs.start_time(pid) or 0
    try:
        messages, timed_out = _read_status(read_end, timeout_s)
    finally:
        os.close(read_end)
    init_pid: int | None = None
    errors: list[str] = []
    for message in messages:
        reported = message.get("init_pid")
        if isinstance(reported, int):
            init_pid = reported
        if "error" in message:
            errors.append(str(message["error"]))
    if timed_out:
        errors.append(f"the launch helper did not start the command within {timeout_s:g} s")
    return HelperStart(pid, start_time, init_pid, "; ".join(errors) or None)


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


def write_spec(path: Path, spec: dict[str, object]) -> None:
    """Write the helper's spec readable by the agent's user only (it holds the environment)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(spec, f)
