"""The container launch helper: the process the agent starts for every container.

The agent runs gRPC threads, so it never forks-and-configures in its own process
(``preexec_fn`` is unsafe with threads). Instead it ``posix_spawn``\\ s this file with a fresh,
single-threaded interpreter (``python -I -S init.py --status-fd 3 SPEC``), which sets the
container up around itself and then execs the task::

    agent ──posix_spawn──▶ helper: join cgroups, setsid, redirect stdout/stderr
                             │  without namespaces: chdir, rlimits, user, exec task
                             │  with namespaces: unshare(PID|mount), fork
                             └─▶ init (PID 1 of the new namespace): mount /proc, fork
                                   └─▶ task (PID 2): chdir, rlimits, user, exec

The helper always stays as the container's supervisor (the container's pid is the helper's):
it forwards SIGTERM/SIGINT/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2 to its child (the task, or with
namespaces init, which forwards them to the task: a bare PID 1 would ignore them; init also
reaps re-parented zombies), and ends with the task's exact wait status (re-raising a fatal
signal on itself). It first writes that status to the spec's ``status_file`` (atomically: a
temporary file renamed over it), because the agent may have been killed and restarted
meanwhile: a restarted agent is no longer the helper's parent and learns the task's real exit
status only from that file. Without the supervisor, a task that ended while the agent was down
would end with an unknown status.

Crash consistency of a launch: before doing anything else the helper writes its pid and start
time (and later its namespace init's pid) to the spec's ``pid_file``, again atomically. The
agent records the container's intent (its id, cgroups and run directory) before spawning the
helper, so an agent killed in the middle of a launch finds, after its restart, either a helper
it can identify (pid plus start time from ``/proc``) and adopt, or proof that the task never
ran. If the run directory is gone when the helper writes its pid file (a restarted agent
decided the launch never started and removed it), the helper gives up before running anything.

The status fd (close-on-exec) carries JSON lines to the agent: ``{"init_pid": N}`` and, on a
failure before the task runs, ``{"stage": ..., "error": ...}``. End of file without an error
means the task was exec'd.

This module imports only the standard library and never the rest of its package, because it
runs by path in isolated mode (``-I -S``); ``python -m agent.isolation.init`` works too.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import pwd
import resource
import signal
import sys
from collections.abc import Callable, Mapping
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

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21
# Per-mount flags a read-only remount must keep (a remount sets all of them at once).
KEPT_MOUNT_FLAGS = {
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME,
}
# Mounts a task sees read-only: the cgroup file systems (so no task, root or not, can move
# itself out of its cgroup or raise a limit) and the rest of sysfs and sysctl with them.
READONLY_SYSTEM_MOUNTS = ("/sys", "/proc/sys", "/proc/sysrq-trigger")
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
# What a task running as root keeps (Docker's default set): chown, file ownership and
# permission overrides, kill, set*id, bind ports below 1024, raw sockets, chroot, mknod,
# audit writes, setfcap. Not CAP_SYS_ADMIN (mount, so no remounting the cgroup file system
# writable), not CAP_SYS_PTRACE, CAP_SYS_MODULE, CAP_NET_ADMIN, CAP_SYS_TIME, CAP_SYS_RESOURCE.
ROOT_TASK_CAPABILITIES = frozenset({0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31})
EXIT_LAUNCH_FAILED = 127


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


def _libc_call(name: str, *args: Any) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if getattr(libc, name)(*args) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def join_cgroups(procs_files: list[str]) -> None:
    """Move this process into every cgroup first, so everything it starts is accounted."""
    pid = str(os.getpid())
    for path in procs_files:
        try:
            with open(path, "w") as f:
                f.write(pid)
        except OSError as e:
            raise LaunchStepError("cgroups", f"cannot join cgroup {path}: {e.strerror}") from e


def become_session_leader() -> None:
    with contextlib.suppress(PermissionError):  # already a session leader (spawned with setsid)
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
                _libc_call("prctl", PR_CAPBSET_DROP, cap, 0, 0, 0)
            except OSError as e:
                if e.errno == errno.EINVAL:  # Not a capability of this kernel.
                    continue
                raise LaunchStepError(
                    "privileges", f"cannot drop capability {cap}: {e.strerror}"
                ) from e
    try:
        _libc_call("prctl", PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
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
    so a reader (a restarted agent) sees the old content or the new, never a part."""
    temp = f"{path}.tmp"
    with open(temp, "w") as f:
        f.write(text)
    os.replace(temp, path)


def own_start_time() -> int:
    """This process's start time (clock ticks since boot, field 22 of ``/proc/self/stat``):
    with the pid, what identifies this process to a restarted agent."""
    with open("/proc/self/stat") as f:
        stat = f.read()
    return int(stat[stat.rindex(")") + 2 :].split()[19])


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


def describe_wait_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit {os.waitstatus_to_exitcode(status)}"


def exit_code_for(description: str) -> int:
    kind, number = description.split()
    return int(number) if kind == "exit" else 128 + int(number)


class Forwarder:
    """Forwards the usual termination signals to one child, remembering early arrivals."""

    def __init__(self) -> None:
        self.target: int | None = None
        self.pending: list[int] = []
        for sig in FORWARDED_SIGNALS:
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: object) -> None:
        if self.target is None:
            self.pending.append(signum)
        else:
            self._send(signum)

    def _send(self, signum: int) -> None:
        if self.target is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.target, signum)

    def start(self, target: int) -> None:
        self.target = target
        for signum in self.pending:
            self._send(signum)
        self.pending.clear()

    def fork(self) -> int:
        """fork, forwarding to the child from then on.

        The forwarded signals stay blocked across the fork, so none lands in the child's
        inherited copy of this object; the child unblocks them once its own handlers (or
        exec's defaults) are in place.
        """
        signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED_SIGNALS)
        pid = os.fork()
        if pid != 0:
            self.start(pid)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)
        return pid


def mount_private_proc() -> None:
    try:
        _libc_call("mount", None, b"/", None, MS_REC | MS_PRIVATE, None)
    except OSError as e:
        raise LaunchStepError("namespaces", f"cannot make mounts private: {e.strerror}") from e
    flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
    try:
        _libc_call("mount", b"proc", b"/proc", b"proc", flags, None)
    except OSError as e:
        raise LaunchStepError("namespaces", f"cannot mount /proc: {e.strerror}") from e


def _unescape_mount_point(text: str) -> str:
    """Mount points in mountinfo escape space, tab, newline and backslash as ``\\ooo``."""
    for code in ("040", "011", "012", "134"):
        text = text.replace("\\" + code, chr(int(code, 8)))
    return text


def mount_options() -> dict[str, str]:
    """Each mount point's per-mount options (``rw,nosuid,...``); the topmost mount wins."""
    options: dict[str, str] = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 5:
                options[_unescape_mount_point(fields[4])] = fields[5]
    return options


def remount_readonly(mount_point: str, options: str) -> None:
    flags = MS_REMOUNT | MS_BIND | MS_RDONLY
    for option in options.split(","):
        flags |= KEPT_MOUNT_FLAGS.get(option, 0)
    _libc_call("mount", None, mount_point.encode(), None, flags, None)


def protect_mounts(spec: Mapping[str, Any]) -> None:
    """In the container's mount namespace: the agent's directories read-only except the
    sandbox, and the cgroup file systems, sysfs and sysctl read-only.

    The sandbox (and any directory in ``writable_dirs``) is bound onto itself first, so the
    recursive bind of a read-only directory above it carries it along still writable; being a
    mount point, the sandbox can then be neither renamed nor replaced by a link. Other
    processes of the host are unaffected: mounts are private to this namespace.
    """
    step = "binding the sandbox"
    try:
        for path in spec.get("writable_dirs", []):
            step = f"binding {path} writable"
            _libc_call("mount", path.encode(), path.encode(), None, MS_BIND, None)
        for path in spec.get("readonly_dirs", []):
            step = f"making {path} read-only"
            _libc_call("mount", path.encode(), path.encode(), None, MS_BIND | MS_REC, None)
            remount_readonly(path, mount_options().get(path, ""))
        for path in READONLY_SYSTEM_MOUNTS:
            if os.path.exists(path) and path not in mount_options():
                step = f"binding {path}"
                _libc_call("mount", path.encode(), path.encode(), None, MS_BIND | MS_REC, None)
        for mount_point, options in mount_options().items():
            if any(
                mount_point == top or mount_point.startswith(top + "/")
                for top in READONLY_SYSTEM_MOUNTS
            ):
                step = f"making {mount_point} read-only"
                remount_readonly(mount_point, options)
    except OSError as e:
        raise LaunchStepError("namespaces", f"{step}: {e.strerror}") from e


def run_as_namespace_init(
    spec: Mapping[str, Any],
    entry: pwd.struct_passwd | None,
    status: StatusChannel,
    report_fd: int,
) -> NoReturn:
    """PID 1 of the container: start the task, forward signals, reap, exit like the task."""
    code = EXIT_LAUNCH_FAILED
    try:
        forwarder = Forwarder()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)
        mount_private_proc()
        protect_mounts(spec)
        task = forwarder.fork()
        if task == 0:
            _run_child(lambda: exec_task(spec, entry), status)  # unblocks before exec
        status.close()
        task_status: int | None = None
        while task_status is None:
            try:
                pid, wait_status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            if pid == task:
                task_status = wait_status
        if task_status is None:  # cannot happen: the task is our child
            task_status = EXIT_LAUNCH_FAILED << 8
        description = describe_wait_status(task_status)
        os.write(report_fd, description.encode())
        code = exit_code_for(description)
    except LaunchStepError as failure:
        status.fail(failure)
    finally:
        # Leaving PID 1 kills whatever is left in the namespace.
        os._exit(code)


def _run_child(body: Callable[[], NoReturn], status: StatusChannel) -> NoReturn:
    try:
        body()
    except LaunchStepError as failure:
        status.fail(failure)
    except BaseException as e:  # a forked child must never return into the caller's stack
        status.send({"stage": "internal", "error": f"{type(e).__name__}: {e}"})
    os._exit(EXIT_LAUNCH_FAILED)


def run_in_namespaces(
    spec: Mapping[str, Any],
    entry: pwd.struct_passwd | None,
    status: StatusChannel,
    start_time: int,
) -> int:
    """Unshare PID and mount namespaces, start init in them, and mirror its end."""
    try:
        _libc_call("unshare", CLONE_NEWPID | CLONE_NEWNS)
    except OSError as e:
        raise LaunchStepError(
            "namespaces", f"unshare(CLONE_NEWPID|CLONE_NEWNS): {e.strerror}"
        ) from e
    forwarder = Forwarder()
    report_r, report_w = os.pipe()
    init_pid = forwarder.fork()
    if init_pid == 0:
        os.close(report_r)
        _run_child(lambda: run_as_namespace_init(spec, entry, status, report_w), status)
    os.close(report_w)
    try:
        record_pids(spec, start_time, init_pid)
    except LaunchStepError:
        os.kill(init_pid, signal.SIGKILL)  # Leaving nothing running; reaped below.
        raise
    status.send({"init_pid": init_pid})
    status.close()
    _pid, init_status = os.waitpid(init_pid, 0)
    with os.fdopen(report_r, "rb") as report:
        description = report.read().decode() or describe_wait_status(init_status)
    return end_like(spec, description)


def run_supervised(
    spec: Mapping[str, Any], entry: pwd.struct_passwd | None, status: StatusChannel
) -> int:
    """Without namespaces: start the task as a child, forward signals to it, mirror its end."""
    forwarder = Forwarder()
    task = forwarder.fork()
    if task == 0:
        _run_child(lambda: exec_task(spec, entry), status)  # unblocks before exec
    status.close()
    _pid, task_status = os.waitpid(task, 0)
    return end_like(spec, describe_wait_status(task_status))


def end_like(spec: Mapping[str, Any], description: str) -> int:
    """Record the task's end in the spec's ``status_file``, then end the same way."""
    status_file = spec.get("status_file")
    if status_file:
        with contextlib.suppress(OSError):
            write_atomically(status_file, description + "\n")
    kind, number = description.split()
    if kind == "signal":
        # End by the same signal so the agent's waitpid sees what the task saw.
        signum = int(number)
        if signum not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(signum, signal.SIG_DFL)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core dump of the helper
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signum])
        os.kill(os.getpid(), signum)
    return exit_code_for(description)


def close_inherited_fds(keep: int | None) -> None:
    """Close every fd above stderr except ``keep``, so nothing of the agent leaks in."""
    limit = os.sysconf("SC_OPEN_MAX")
    if keep is None:
        os.closerange(3, limit)
        return
    os.closerange(3, keep)
    os.closerange(keep + 1, limit)
    os.set_inheritable(keep, False)


def launch(spec: Mapping[str, Any], status: StatusChannel) -> int:
    join_cgroups(list(spec.get("cgroup_procs", [])))
    start_time = own_start_time()
    record_pids(spec, start_time, None)
    become_session_leader()
    entry = lookup_user(spec.get("user"))
    redirect_output(spec, entry)
    own_sandbox(spec, entry)
    if spec.get("namespaces"):
        return run_in_namespaces(spec, entry, status, start_time)
    return run_supervised(spec, entry, status)


def probe_namespaces() -> int:
    """Exit 0 when PID and mount namespaces with a private /proc and read-only system mounts
    work here; else say why (the agent then runs containers without namespaces, and says so)."""
    try:
        _libc_call("unshare", CLONE_NEWPID | CLONE_NEWNS)
    except OSError as e:
        print(f"unshare(CLONE_NEWPID|CLONE_NEWNS) failed: {e.strerror}", flush=True)
        return 1
    child = os.fork()
    if child == 0:
        code = 0
        try:
            mount_private_proc()
            protect_mounts({})
        except LaunchStepError as failure:
            print(failure.message, flush=True)
            code = 1
        os._exit(code)
    _pid, status = os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(status)


def main(argv: list[str]) -> int:
    usage = "usage: init.py [--status-fd N] SPEC.json | init.py --probe-namespaces"
    if argv == ["--probe-namespaces"]:
        return probe_namespaces()
    status_fd: int | None = None
    if len(argv) == 3 and argv[0] == "--status-fd" and argv[1].isdigit():
        status_fd, argv = int(argv[1]), argv[2:]
    if len(argv) != 1 or argv[0].startswith("-"):
        print(usage, file=sys.stderr)
        return 2
    close_inherited_fds(status_fd)
    status = StatusChannel(status_fd)
    try:
        with open(argv[0]) as f:
            spec = json.load(f)
        return launch(spec, status)
    except LaunchStepError as failure:
        status.fail(failure)
    except OSError as e:
        status.send({"stage": "internal", "error": f"{e.strerror or e}: {e.filename or ''}"})
    except Exception as e:
        status.send({"stage": "internal", "error": f"{type(e).__name__}: {e}"})
    return EXIT_LAUNCH_FAILED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
