"""The steps of a launch before the task's ``exec``: cgroups, sandbox, privileges, user.

Each raises :class:`LaunchStepError` naming its stage, which the helper reports to the agent
over the status channel (and to the sandbox's stderr), so a failed launch says exactly what
went wrong.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import json
import os
import pwd
import resource
import signal
import sys
from collections.abc import Mapping
from typing import Any, NoReturn

# Names accepted in ContainerLimits.rlimits; -1 means unlimited.
RLIMITS: Mapping[str, int] = {
    "as": resource.RLIMIT_AS,
    "core": resource.RLIMIT_CORE,
    "cpu": resource.RLIMIT_CPU,
    "data": resource.RLIMIT_DATA,
    "fsize": resource.RLIMIT_FSIZE,
    "memlock": resource.RLIMIT_MEMLOCK,
    "nofile": resource.RLIMIT_NOFILE,
    "nproc": resource.RLIMIT_NPROC,
    "stack": resource.RLIMIT_STACK,
}

FORWARDED_SIGNALS = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)
# Signals Python or the agent may have ignored or handled; the task starts with defaults.
RESET_SIGNALS = (*FORWARDED_SIGNALS, signal.SIGPIPE, signal.SIGXFSZ, signal.SIGCHLD)

PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
# What a task running as root keeps (Docker's default set): chown, file ownership and
# permission overrides, kill, set*id, bind ports below 1024, raw sockets, chroot, mknod,
# audit writes, setfcap. Not CAP_SYS_ADMIN (mount, so no remounting the cgroup file system
# writable), not CAP_SYS_PTRACE, CAP_SYS_MODULE, CAP_NET_ADMIN, CAP_SYS_TIME, CAP_SYS_RESOURCE.
ROOT_TASK_CAPABILITIES = frozenset({0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31})
EXIT_LAUNCH_FAILED = 127
WRITE_ATTEMPTS = 5  # init binds at most a few mounts over a path the helper writes


class LaunchStepError(Exception):
    """A step before exec failed; ``stage`` names the step for the agent's LaunchError."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage
        self.message = message


class StatusChannel:
    """JSON lines to the agent over an inherited close-on-exec pipe (or nowhere)."""

    def __init__(self, fd: int | None) -> None:
        self.fd = fd

    def send(self, message: Mapping[str, object]) -> None:
        if "error" in message:
            # stderr is the sandbox's stderr file by now, so the task's owner sees it too.
            with contextlib.suppress(OSError):
                print(f"emporion: launch failed: {message['error']}", file=sys.stderr, flush=True)
        if self.fd is None:
            return
        data = (json.dumps(message) + "\n").encode()
        # A failed write means the agent gave up on this launch; the exit status still tells.
        with contextlib.suppress(OSError):
            os.write(self.fd, data)

    def fail(self, failure: LaunchStepError) -> None:
        self.send({"stage": failure.stage, "error": failure.message})

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


@functools.cache
def libc() -> ctypes.CDLL:
    """The C library, loaded once (a helper makes dozens of calls: one per capability)."""
    return ctypes.CDLL(None, use_errno=True)


def libc_call(name: str, *args: Any) -> None:
    if getattr(libc(), name)(*args) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def join_cgroups(procs_files: list[str]) -> None:
    """Move this process into every cgroup first, so everything it starts is accounted."""
    pid = str(os.getpid()).encode()
    for path in procs_files:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, pid)
            finally:
                os.close(fd)
        except OSError as e:
            raise LaunchStepError("cgroups", f"cannot join cgroup {path}: {e.strerror}") from e


def become_session_leader() -> None:
    with contextlib.suppress(PermissionError):  # already a session leader
        os.setsid()


def lookup_user(user: str | None) -> pwd.struct_passwd | None:
    if user is None:
        return None
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise LaunchStepError("user", f"user {user!r} does not exist") from None
    if os.geteuid() != 0 and entry.pw_uid != os.geteuid():
        raise LaunchStepError("user", f"cannot run as user {user!r}: the agent is not root")
    return entry


def redirect_output(spec: Mapping[str, Any], entry: pwd.struct_passwd | None) -> None:
    """stdin from /dev/null; stdout and stderr appended to the sandbox files."""
    # O_NOFOLLOW: we are root here, and a symlink in the sandbox must not redirect us.
    append = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW
    targets = (
        (0, "/dev/null", os.O_RDONLY),
        (1, spec["stdout"], append),
        (2, spec["stderr"], append),
    )
    for fd, path, flags in targets:
        try:
            opened = os.open(path, flags | os.O_CLOEXEC, 0o644)
            if entry is not None and path != "/dev/null" and os.geteuid() == 0:
                os.fchown(opened, entry.pw_uid, entry.pw_gid)
        except OSError as e:
            raise LaunchStepError("sandbox", f"cannot open {path}: {e.strerror}") from e
        os.dup2(opened, fd)
        os.close(opened)


def own_sandbox(spec: Mapping[str, Any], entry: pwd.struct_passwd | None) -> None:
    """Hand the sandbox directory itself to the task's user (root only; never through a link)."""
    if entry is None or os.geteuid() != 0:
        return
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(spec["cwd"], flags)
        try:
            os.fchown(fd, entry.pw_uid, entry.pw_gid)
        finally:
            os.close(fd)
    except OSError as e:
        raise LaunchStepError(
            "sandbox", f"cannot give sandbox {spec['cwd']} to user {entry.pw_name!r}: {e.strerror}"
        ) from e


@functools.cache
def last_capability() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 63  # Unknown numbers are skipped below (EINVAL).


def restrict_privileges(root_task: bool) -> None:
    """Shrink the capability bounding set, then set ``no_new_privs``, before the task's exec.

    A task switching to a user loses every capability at ``setuid`` and, its bounding set
    empty and ``no_new_privs`` set, can never regain one (no set-uid binary, no file
    capabilities). A task running as root keeps only :data:`ROOT_TASK_CAPABILITIES`: exec
    gives uid 0 exactly its bounding set. Only root may shrink the bounding set.
    """
    if os.geteuid() == 0:
        keep = ROOT_TASK_CAPABILITIES if root_task else frozenset()
        for cap in range(last_capability() + 1):
            if cap in keep:
                continue
            try:
                libc_call("prctl", PR_CAPBSET_DROP, cap, 0, 0, 0)
            except OSError as e:
                if e.errno == errno.EINVAL:  # Not a capability of this kernel.
                    continue
                raise LaunchStepError(
                    "privileges", f"cannot drop capability {cap}: {e.strerror}"
                ) from e
    try:
        libc_call("prctl", PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    except OSError as e:
        raise LaunchStepError("privileges", f"cannot set no_new_privs: {e.strerror}") from e


def apply_rlimits(rlimits: Mapping[str, int]) -> None:
    for name, value in rlimits.items():
        limit = resource.RLIM_INFINITY if value < 0 else value
        try:
            resource.setrlimit(RLIMITS[name], (limit, limit))
        except (ValueError, OSError) as e:
            raise LaunchStepError("rlimits", f"cannot set rlimit {name}={value}: {e}") from e


def switch_user(entry: pwd.struct_passwd) -> None:
    try:
        if os.geteuid() == 0:
            os.initgroups(entry.pw_name, entry.pw_gid)
            os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
    except OSError as e:
        raise LaunchStepError(
            "user", f"cannot switch to user {entry.pw_name!r}: {e.strerror}"
        ) from e


def exec_task(spec: Mapping[str, Any], entry: pwd.struct_passwd | None) -> NoReturn:
    """Turn this process into the task. Raises LaunchStepError; never returns otherwise."""
    try:
        os.chdir(spec["cwd"])
    except OSError as e:
        raise LaunchStepError("sandbox", f"cannot enter sandbox {spec['cwd']}: {e.strerror}") from e
    apply_rlimits(spec.get("rlimits", {}))
    root_task = os.geteuid() == 0 if entry is None else entry.pw_uid == 0
    restrict_privileges(root_task)
    if entry is not None:
        switch_user(entry)
    for sig in RESET_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    argv: list[str] = spec["argv"]
    env: dict[str, str] = spec["env"]
    try:
        os.execvpe(argv[0], argv, env)
    except FileNotFoundError:
        where = "" if "/" in argv[0] else f" in PATH={env.get('PATH', os.defpath)}"
        raise LaunchStepError("exec", f"command {argv[0]!r} not found{where}") from None
    except OSError as e:
        raise LaunchStepError("exec", f"cannot execute command {argv[0]!r}: {e.strerror}") from e


def write_atomically(path: str, text: str) -> None:
    """Replace ``path`` with ``text``: a temporary file in the same directory renamed over it,
    so a reader (a restarted agent) sees the old content or the new, never a part.

    The helper records the namespace init's pid while init, in the mount namespace they
    share, binds the directories the task may write (the run directory among them when it
    lies under a read-only one) onto themselves: a rename racing with such a bind can find
    its two names on different mounts (EXDEV, seen once in 1,800 launches on a loaded
    machine), so the file is written again, a few times at most.
    """
    temp = f"{path}.tmp"
    for attempt in range(WRITE_ATTEMPTS):
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
        try:
            os.replace(temp, path)
            return
        except OSError as e:
            if e.errno != errno.EXDEV or attempt == WRITE_ATTEMPTS - 1:
                raise


def own_start_time() -> int:
    """This process's start time (clock ticks since boot, field 22 of ``/proc/self/stat``):
    with the pid, what identifies this process to a restarted agent."""
    fd = os.open("/proc/self/stat", os.O_RDONLY | os.O_CLOEXEC)
    try:
        stat = os.read(fd, 4096)
    finally:
        os.close(fd)
    return int(stat[stat.rindex(b")") + 2 :].split()[19])


def record_pids(spec: Mapping[str, Any], start_time: int, init_pid: int | None) -> None:
    """Write this helper's identity (and its namespace init's pid) to the spec's ``pid_file``.

    ``start_time`` is read once, before any namespace is made: once init has mounted the
    container's own ``/proc`` (in the mount namespace the helper shares), the helper is not
    in it.

    Raises LaunchStepError when the container's run directory is gone: a restarted agent
    concluded that this launch never started, so nothing may run.
    """
    pid_file = spec.get("pid_file")
    if not pid_file:
        return
    record = {"pid": os.getpid(), "start_time": start_time, "init_pid": init_pid}
    try:
        write_atomically(pid_file, json.dumps(record) + "\n")
    except OSError as e:
        raise LaunchStepError(
            "recovery", f"cannot record the container's pid in {pid_file}: {e.strerror}"
        ) from e
