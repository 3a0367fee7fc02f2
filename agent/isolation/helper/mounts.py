"""The container's mount namespace: a private ``/proc``, and what the task may not write.

Runs in the namespace's init (PID 1), after the helper's ``unshare(CLONE_NEWPID|CLONE_NEWNS)``:
every mount made here is private to the container; the host and the agent are unaffected.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
from collections.abc import Mapping
from typing import Any

from agent.isolation.helper.steps import LaunchStepError, libc, libc_call

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
# mount_setattr(2) (Linux 5.12): one call makes a whole tree of mounts read-only, where a
# remount takes one call per mount (a dozen cgroup hierarchies under /sys on v1).
SYS_MOUNT_SETATTR = 442  # The same number on every architecture listed here.
MOUNT_SETATTR_MACHINES = frozenset({"x86_64", "aarch64"})
AT_FDCWD = -100
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 0x1


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def unshare_pid_and_mount() -> None:
    try:
        libc_call("unshare", CLONE_NEWPID | CLONE_NEWNS)
    except OSError as e:
        raise LaunchStepError(
            "namespaces", f"unshare(CLONE_NEWPID|CLONE_NEWNS): {e.strerror}"
        ) from e


def mount_private_proc() -> None:
    try:
        libc_call("mount", None, b"/", None, MS_REC | MS_PRIVATE, None)
    except OSError as e:
        raise LaunchStepError("namespaces", f"cannot make mounts private: {e.strerror}") from e
    flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
    try:
        libc_call("mount", b"proc", b"/proc", b"proc", flags, None)
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
    libc_call("mount", None, mount_point.encode(), None, flags, None)


def readonly_tree(mount_point: str) -> bool:
    """Make ``mount_point`` and every mount below it read-only, their other flags kept;
    False (nothing done) where the kernel has no ``mount_setattr``."""
    if platform.machine() not in MOUNT_SETATTR_MACHINES:
        return False
    attr = _MountAttr(MOUNT_ATTR_RDONLY, 0, 0, 0)
    syscall = libc().syscall
    syscall.restype = ctypes.c_long
    result = syscall(
        ctypes.c_long(SYS_MOUNT_SETATTR),
        ctypes.c_int(AT_FDCWD),
        ctypes.c_char_p(mount_point.encode()),
        ctypes.c_uint(AT_RECURSIVE),
        ctypes.byref(attr),
        ctypes.c_size_t(ctypes.sizeof(attr)),
    )
    if result == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EPERM):  # Unknown here (or filtered): remount instead.
        return False
    raise OSError(err, os.strerror(err))


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
            libc_call("mount", path.encode(), path.encode(), None, MS_BIND, None)
        for path in spec.get("readonly_dirs", []):
            step = f"making {path} read-only"
            libc_call("mount", path.encode(), path.encode(), None, MS_BIND | MS_REC, None)
            remount_readonly(path, mount_options().get(path, ""))
        mounted = mount_options()
        system_mounts = [path for path in READONLY_SYSTEM_MOUNTS if os.path.exists(path)]
        for path in system_mounts:
            if path not in mounted:
                step = f"binding {path}"
                libc_call("mount", path.encode(), path.encode(), None, MS_BIND | MS_REC, None)
        step = "making the system mounts read-only"
        if all(readonly_tree(path) for path in system_mounts):
            return
        for mount_point, options in mount_options().items():
            if any(
                mount_point == top or mount_point.startswith(top + "/")
                for top in READONLY_SYSTEM_MOUNTS
            ):
                step = f"making {mount_point} read-only"
                remount_readonly(mount_point, options)
    except OSError as e:
        raise LaunchStepError("namespaces", f"{step}: {e.strerror}") from e


def probe_namespaces() -> int:
    """Exit 0 when PID and mount namespaces with a private /proc and read-only system mounts
    work here; else say why (the agent then runs containers without namespaces, and says so)."""
    try:
        unshare_pid_and_mount()
    except LaunchStepError as failure:
        print(failure.message, flush=True)
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
