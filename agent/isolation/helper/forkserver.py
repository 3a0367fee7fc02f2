"""The fork server: one warm, single-threaded helper process per agent that clones the
launch helper of every container.

Starting a fresh interpreter per container cost about 40 ms of CPU (most of a launch); a
clone of this already-started process costs well under one. The agent starts the server once
(``python -I -S init.py --fork-server``, a socket on fd 3) and sends it each launch: a
length-prefixed JSON spec with three file descriptors attached (``SCM_RIGHTS``): the sandbox's
``stderr``, the write end of the launch's status pipe and the agent's locked intent file.

For each request the server calls ``clone(CLONE_PARENT)``: the child is the *agent's* child,
not the server's, exactly as a helper the agent spawned itself would be. So the agent reaps it
and reads the task's real wait status, the helper outlives the server, and after an agent
restart the helpers are re-parented like any orphan of the agent while the server, whose
socket then reads end-of-file, simply exits. Nothing in the server runs between a clone and
the child's own code but this module; the server has no thread, so the clone copies no lock
held by another.

The server writes ``{"pid": N}`` on the status pipe after each clone, then closes its copies
of the three descriptors; the child does the rest (:func:`agent.isolation.helper.supervise
.launch`). A failed clone is reported as ``{"stage": "fork-server", ...}``, and the agent then
launches by spawning a fresh helper per container instead (``init.py --launch-one``: the same
protocol, one request, served in-process without cloning).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import gc
import json
import os
import platform
import signal
import socket
import struct
from typing import Any, NoReturn

from agent.isolation.helper.steps import EXIT_LAUNCH_FAILED, LaunchStepError, StatusChannel
from agent.isolation.helper.supervise import launch

HEADER = struct.Struct("!I")
"""Each request starts with its JSON payload's length."""
MAX_REQUEST = 64 << 20
REQUEST_FDS = 3  # sandbox stderr, status pipe, locked intent file
CLONE_PARENT = 0x00008000
SYS_CLONE = {"x86_64": 56, "aarch64": 220}
"""``clone``'s number where its first argument is the flags (all others are passed 0)."""
# Where the child puts the descriptors it was sent, before running the launch.
STDERR_FD, STATUS_FD, LOCK_FD = 2, 3, 4


def encode_request(spec: dict[str, object]) -> bytes:
    """The bytes of one request (its descriptors travel with the first of them)."""
    payload = json.dumps(spec).encode()
    if len(payload) > MAX_REQUEST:
        raise ValueError(f"launch spec of {len(payload)} bytes is over {MAX_REQUEST}")
    return HEADER.pack(len(payload)) + payload


def _receive_exactly(sock: socket.socket, size: int, data: bytes = b"") -> bytes | None:
    while len(data) < size:
        chunk = sock.recv(min(size - len(data), 1 << 20))
        if not chunk:
            return None
        data += chunk
    return data


def receive_request(sock: socket.socket) -> tuple[bytes, list[int]] | None:
    """The next request's payload and descriptors; None at end-of-file (the agent is gone)."""
    head, fds, _flags, _address = socket.recv_fds(sock, HEADER.size, REQUEST_FDS + 1)
    header = _receive_exactly(sock, HEADER.size, head) if head else None
    if header is None:
        for fd in fds:
            os.close(fd)
        return None
    (size,) = HEADER.unpack(header)
    payload = _receive_exactly(sock, size) if size <= MAX_REQUEST else None
    if payload is None:
        for fd in fds:
            os.close(fd)
        return None
    return payload, fds


@functools.cache
def _syscall() -> Any:
    """libc's ``syscall``, called through a ``PyDLL`` (the GIL stays held across the call)."""
    function = ctypes.PyDLL(None, use_errno=True).syscall
    function.restype = ctypes.c_long
    function.argtypes = [ctypes.c_long] * 6
    return function


def clone_parent() -> int:
    """``clone(CLONE_PARENT | SIGCHLD)``: fork, the child being our parent's child.

    Called through a ``PyDLL`` so the GIL stays held across the system call: the child
    resumes as the same, only thread, holding it. OSError when the kernel (or seccomp)
    refuses, or on an architecture whose ``clone`` arguments are not known here.
    """
    number = SYS_CLONE.get(platform.machine())
    if number is None:
        raise OSError(errno.ENOSYS, f"clone is not wired for {platform.machine()}")
    pid: int = _syscall()(number, CLONE_PARENT | signal.SIGCHLD, 0, 0, 0, 0)
    if pid < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return pid


def become_helper(sock: socket.socket | None, spec: object, fds: list[int]) -> NoReturn:
    """In the new child: put the descriptors in place, run the launch, end like the task."""
    code = EXIT_LAUNCH_FAILED
    status = StatusChannel(None)
    try:
        if sock is not None:
            sock.close()
        # Copies above every target first, so no dup2 below overwrites a source.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in fds]
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1):
            os.dup2(null, fd)
        for source, target in zip(high, (STDERR_FD, STATUS_FD, LOCK_FD), strict=True):
            os.dup2(source, target, inheritable=False)
        os.closerange(LOCK_FD + 1, os.sysconf("SC_OPEN_MAX"))
        status = StatusChannel(STATUS_FD)
        if not isinstance(spec, dict):
            raise LaunchStepError("internal", f"the launch spec is not an object: {spec!r}")
        code = launch(spec, status, lock_fd=LOCK_FD)
    except LaunchStepError as failure:
        status.fail(failure)
    except BaseException as e:  # A child must never return into the server's loop.
        status.send({"stage": "internal", "error": f"{type(e).__name__}: {e}"})
    finally:
        os._exit(code)


def handle(sock: socket.socket, payload: bytes, fds: list[int], *, clone: bool) -> None:
    """Serve one request: clone its helper (``clone``) or become it."""
    if len(fds) != REQUEST_FDS:  # Not the agent's request: nobody to answer.
        for fd in fds:
            os.close(fd)
        return
    status = StatusChannel(fds[1])
    try:
        try:
            spec = json.loads(payload)
        except ValueError as e:
            status.send({"stage": "fork-server", "error": f"unreadable launch request: {e}"})
            return
        if not clone:
            become_helper(sock, spec, fds)
        try:
            pid = clone_parent()
        except OSError as e:
            message = f"clone(CLONE_PARENT) failed: {e.strerror}"
            status.send({"stage": "fork-server", "error": message, "errno": e.errno})
            return
        if pid == 0:
            become_helper(sock, spec, fds)
        status.send({"pid": pid})
    finally:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)


def serve(sock_fd: int, *, clone: bool = True) -> int:
    """Serve launch requests on ``sock_fd`` until the agent closes its end.

    ``clone=False`` (``--launch-one``): serve the first request by becoming its helper.
    """
    sock = socket.socket(fileno=sock_fd)
    # Every object so far is permanent: no collection in a clone touches (copies) their pages.
    gc.freeze()
    while True:
        received = receive_request(sock)
        if received is None:
            return 0 if clone else EXIT_LAUNCH_FAILED
        handle(sock, *received, clone=clone)
        if not clone:
            return EXIT_LAUNCH_FAILED  # The request was malformed; nothing was launched.
