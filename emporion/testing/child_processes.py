"""Child processes that never outlive the benchmark or test that started them, even killed.

``bench.launch_throughput`` killed by a timeout used to leave its master running. Every process
started through :func:`start_child`:

* runs in its own process group, so that one ``killpg`` reaches it and whatever it started in
  that group, and a Ctrl-C in a terminal reaches only its parent, which then stops it;
* gets ``PR_SET_PDEATHSIG`` (``prctl`` through ctypes, in a small interpreter that then execs
  the command, see :data:`_TRAMPOLINE`): the kernel sends it ``death_signal`` when its parent
  dies, SIGKILL included. The kernel sends it
  when the *thread* that started the child ends, so start children from the main thread (or
  one that outlives them). An agent is given SIGUSR1, which makes it kill its tasks on the way
  out (its containers run in sessions of their own and would otherwise survive it);
* is remembered until it is reaped: :func:`kill_children` stops every one still running (its
  ``stop_signal`` to the process group, then SIGKILL after ``grace`` seconds). It runs at
  interpreter exit (``atexit``) and from the SIGTERM and SIGHUP handlers that
  :func:`kill_children_on_signals` installs, which then unwind the program with
  ``SystemExit(128 + signal)`` so that its ``finally`` blocks still remove what it wrote.

Linux only for the death signal (elsewhere the rest still applies).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

__all__ = [
    "kill_children",
    "kill_children_on_signals",
    "live_children",
    "start_child",
]

_TRAMPOLINE = """
import ctypes, os, sys
parent, death_signal = int(sys.argv[1]), int(sys.argv[2])
libc = ctypes.CDLL(None, use_errno=True)  # The interpreter's own libc.
if libc.prctl(1, death_signal, 0, 0, 0) != 0:  # PR_SET_PDEATHSIG
    sys.exit("start_child: prctl(PR_SET_PDEATHSIG) failed: " + os.strerror(ctypes.get_errno()))
if os.getppid() != parent:  # The parent died before the request took effect.
    os.kill(os.getpid(), death_signal)
os.execvp(sys.argv[3], sys.argv[3:])
"""
"""Run as ``python -I -S -c _TRAMPOLINE PARENT SIGNAL ARGV...``: asks for the death signal,
then becomes ARGV (same pid). A separate interpreter rather than a ``preexec_fn``: Python code
run between fork and exec in a multi-threaded parent (gRPC's threads) can deadlock."""


@dataclass(frozen=True)
class _Child:
    process: subprocess.Popen[Any]
    stop_signal: signal.Signals
    grace: float


_children: list[_Child] = []
_lock = threading.Lock()


def start_child(
    args: Sequence[str],
    *,
    death_signal: signal.Signals = signal.SIGKILL,
    stop_signal: signal.Signals = signal.SIGKILL,
    grace: float = 0.0,
    **popen: Any,
) -> subprocess.Popen[Any]:
    """``subprocess.Popen(args, **popen)`` in its own process group, dying with this process.

    ``death_signal`` reaches it if this process (strictly: the calling thread) dies;
    ``stop_signal``, then SIGKILL after ``grace`` seconds, is what :func:`kill_children`
    sends. ``popen`` may not set ``preexec_fn``, ``start_new_session`` or ``process_group``.
    """
    for reserved in ("preexec_fn", "start_new_session", "process_group"):
        if reserved in popen:
            raise ValueError(f"start_child sets {reserved} itself")
    command = list(args)
    if sys.platform.startswith("linux"):
        parent = str(os.getpid())
        command = [
            sys.executable,
            "-I",
            "-S",
            "-c",
            _TRAMPOLINE,
            parent,
            str(int(death_signal)),
            *command,
        ]
    process = subprocess.Popen(command, process_group=0, **popen)
    with _lock:
        _children[:] = [c for c in _children if c.process.poll() is None]
        _children.append(_Child(process, stop_signal, grace))
    return process


def live_children() -> list[subprocess.Popen[Any]]:
    """The children started here that still run."""
    with _lock:
        return [c.process for c in _children if c.process.poll() is None]


def _signal_group(process: subprocess.Popen[Any], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def kill_children() -> None:
    """Stop every child still running: ``stop_signal`` to its process group, SIGKILL after its
    grace period (at once for those whose stop signal is SIGKILL); reap them all."""
    with _lock:
        children = [c for c in _children if c.process.poll() is None]
        _children.clear()
    for child in children:
        _signal_group(child.process, child.stop_signal)
    deadline = time.monotonic() + max((c.grace for c in children), default=0.0)
    for child in children:
        if child.stop_signal != signal.SIGKILL:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(max(0.0, deadline - time.monotonic()))
        _signal_group(child.process, signal.SIGKILL)
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(5.0)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    kill_children()
    signal.signal(signum, signal.SIG_DFL)  # A second one ends the process at once.
    raise SystemExit(128 + signum)


def kill_children_on_signals(
    signals: Sequence[signal.Signals] = (signal.SIGTERM, signal.SIGHUP),
) -> None:
    """Make ``signals`` stop every child, then unwind the program with ``SystemExit(128 +
    signal)``. Call it from the main thread (only it can set signal handlers)."""
    for signum in signals:
        signal.signal(signum, _on_signal)


atexit.register(kill_children)
