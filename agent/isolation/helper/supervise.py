"""The helper's life once started: set the container up, start the task, supervise it.

::

    helper: join cgroups, record pids, setsid, stdout/stderr >> sandbox
      │  without namespaces: fork ─▶ task: chdir, rlimits, privileges, user, exec
      │  with namespaces:    unshare(PID|mount), fork
      └─▶ init (PID 1 of the new namespace): mounts, fork
            └─▶ task (PID 2): chdir, rlimits, privileges, user, exec

The helper always stays as the container's supervisor (the container's pid is the helper's):
it forwards SIGTERM/SIGINT/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2 to its child (the task, or with
namespaces init, which forwards them to the task: a bare PID 1 would ignore them; init also
reaps re-parented zombies), and ends with the task's exact wait status (re-raising a fatal
signal on itself). It first writes that status to the spec's ``status_file`` (atomically),
because the agent may have been killed and restarted meanwhile: a restarted agent is no
longer the helper's parent and learns the task's real exit status only from that file.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import resource
import signal
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from agent.isolation.helper.mounts import (
    mount_private_proc,
    protect_mounts,
    unshare_pid_and_mount,
)
from agent.isolation.helper.steps import (
    EXIT_LAUNCH_FAILED,
    FORWARDED_SIGNALS,
    LaunchStepError,
    StatusChannel,
    become_session_leader,
    exec_task,
    join_cgroups,
    lookup_user,
    own_sandbox,
    own_start_time,
    record_pids,
    redirect_output,
    write_atomically,
)


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
            run_child(lambda: exec_task(spec, entry), status)  # unblocks before exec
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


def run_child(body: Callable[[], NoReturn], status: StatusChannel) -> NoReturn:
    """Run ``body`` in a forked (or cloned) child; it never returns into the caller's stack."""
    try:
        body()
    except LaunchStepError as failure:
        status.fail(failure)
    except BaseException as e:
        status.send({"stage": "internal", "error": f"{type(e).__name__}: {e}"})
    os._exit(EXIT_LAUNCH_FAILED)


def run_in_namespaces(
    spec: Mapping[str, Any],
    entry: pwd.struct_passwd | None,
    status: StatusChannel,
    start_time: int,
) -> int:
    """Unshare PID and mount namespaces, start init in them, and mirror its end."""
    unshare_pid_and_mount()
    forwarder = Forwarder()
    report_r, report_w = os.pipe()
    init_pid = forwarder.fork()
    if init_pid == 0:
        os.close(report_r)
        run_child(lambda: run_as_namespace_init(spec, entry, status, report_w), status)
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
        run_child(lambda: exec_task(spec, entry), status)  # unblocks before exec
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


def launch(spec: Mapping[str, Any], status: StatusChannel, lock_fd: int | None = None) -> int:
    """Set the container up around this process, start the task, and end like it.

    ``lock_fd`` holds the agent's lock on the container's intent file: closed once the pids
    are recorded, which tells a restarted agent waiting in ``find`` that this launch is no
    longer starting (docs/isolation.md, "Crash-consistent launches").
    """
    join_cgroups(list(spec.get("cgroup_procs", [])))
    start_time = own_start_time()
    try:
        record_pids(spec, start_time, None)
    finally:
        if lock_fd is not None:
            os.close(lock_fd)
    become_session_leader()
    entry = lookup_user(spec.get("user"))
    redirect_output(spec, entry)
    own_sandbox(spec, entry)
    if spec.get("namespaces"):
        return run_in_namespaces(spec, entry, status, start_time)
    return run_supervised(spec, entry, status)
