"""Finding a process's children and waiting for processes to go, from /proc (Linux)."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

WAIT = 60.0  # Upper bound of any wait; reaching it fails the test.


def children_of(pid: int) -> dict[int, str]:
    """Pids and command lines of the processes whose parent is ``pid``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                found[int(entry.name)] = cmdline
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


def wait_for(predicate: object, what: str, timeout: float = WAIT) -> None:
    """Poll ``predicate()`` until true; fail if ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def child_running(pid: int, marker: str) -> int | None:
    """The pid of ``pid``'s child whose command line contains ``marker``, if any (once it runs
    its own program: not while start_child's trampoline, whose command line holds the child's
    too, is still asking for its death signal)."""
    for child, cmdline in children_of(pid).items():
        if marker in cmdline and "os.execvp" not in cmdline:
            return child
    return None


def kill_quietly(pid: int, signum: int) -> None:
    """Signal ``pid`` if it still exists."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    return inodes


def _tcp_rows() -> list[list[str]]:
    rows = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            rows += [line.split() for line in Path(table).read_text().splitlines()[1:]]
    return rows


def serving_clients(pid: int) -> bool:
    """Whether ``pid`` has accepted a TCP connection on one of its listening sockets (it is up
    and someone talks to it)."""
    inodes = _socket_inodes(pid)
    rows = _tcp_rows()
    listening = {row[1].rsplit(":", 1)[1] for row in rows if row[9] in inodes and row[3] == "0A"}
    return any(
        row[9] in inodes and row[3] == "01" and row[1].rsplit(":", 1)[1] in listening
        for row in rows
    )
