"""Reading processes from /proc: start times (against pid reuse), sessions and usage."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class ProcStat:
    """The fields of ``/proc/<pid>/stat`` this package uses."""

    pid: int
    state: str
    ppid: int
    session: int
    utime: int
    stime: int
    start_time: int
    rss_pages: int

    @property
    def exited(self) -> bool:
        """A zombie (exited, not yet reaped) or dead process."""
        return self.state in ("Z", "X", "x")


def parse_stat(pid: int, text: str) -> ProcStat:
    # The command name is in parentheses and may itself contain spaces or parentheses.
    fields = text[text.rindex(")") + 2 :].split()
    return ProcStat(
        pid=pid,
        state=fields[0],
        ppid=int(fields[1]),
        session=int(fields[3]),
        utime=int(fields[11]),
        stime=int(fields[12]),
        start_time=int(fields[19]),
        rss_pages=int(fields[21]),
    )


def read_stat(pid: int) -> ProcStat | None:
    """The process's stat, or None when there is no such process."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, ProcessLookupError):
        return None
    try:
        # One read returns the whole file (well under a page); os calls, as the launch and
        # the exit of every container read it several times.
        data = os.read(fd, 4096)
    except ProcessLookupError:
        return None
    finally:
        os.close(fd)
    return parse_stat(pid, data.decode(errors="replace"))


def start_time(pid: int) -> int | None:
    stat = read_stat(pid)
    return None if stat is None else stat.start_time


def is_running(pid: int, expected_start_time: int) -> bool:
    """True while ``pid`` is the process that started at ``expected_start_time`` and lives."""
    stat = read_stat(pid)
    return stat is not None and stat.start_time == expected_start_time and not stat.exited


def all_pids() -> list[int]:
    return [int(name) for name in os.listdir(PROC) if name.isdigit()]


def session_members(session: int, started_after: int = 0) -> list[ProcStat]:
    """Live processes of ``session`` that started no earlier than ``started_after``.

    A session id cannot be reused while any member lives, so the start-time bound only
    matters once the whole session is gone and a new one took the number.
    """
    members = []
    for pid in all_pids():
        stat = read_stat(pid)
        if (
            stat is not None
            and stat.session == session
            and stat.start_time >= started_after
            and not stat.exited
        ):
            members.append(stat)
    return members


def pids_with_argument(argument: bytes) -> set[int]:
    """Live processes with ``argument`` as one of their command-line arguments.

    How a restarted agent finds a launch helper that has not yet recorded its pid: the
    helper's argv names its spec file, unique to its container.
    """
    found: set[int] = set()
    for entry in os.listdir(PROC):
        if not entry.isdigit():
            continue
        try:
            argv = (PROC / entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argument in argv:
            stat = read_stat(int(entry))
            if stat is not None and not stat.exited:
                found.add(int(entry))
    return found
