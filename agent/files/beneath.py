"""Opening a path strictly beneath a directory descriptor (blocking; Linux).

The files API serves sandboxes that tasks, possibly running as root, can fill with links.
Checking a path string and then opening it is a race a task can win, so every open here is
relative to a descriptor of the sandbox and the kernel (or our own walk) refuses to leave it:

- ``openat2(2)`` (Linux 5.6+) with ``RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS``: links inside
  the directory are followed, an absolute link, ``..`` above it and ``/proc`` magic links fail
  with EXDEV / ELOOP. Called through ``syscall(437)`` via ctypes (no libc wrapper in glibc).
- elsewhere, :func:`walk_beneath`: one component at a time with ``O_NOFOLLOW`` from the
  directory's descriptor; a link is read and its components spliced into the walk, so it is
  followed under the same rules (relative, never above the start) without ever letting the
  kernel resolve more than one name.

:func:`open_no_links` opens the sandbox directory itself from ``/`` refusing any link on its
path: the agent names sandboxes by their real paths, so a link there means a task replaced its
sandbox (or ``runs/latest``) by one.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat

__all__ = ["OutsideError", "has_openat2", "open_beneath_fd", "open_no_links", "walk_beneath"]

SYS_OPENAT2 = 437  # The same number on every architecture (added after the syscall table merge).
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_BENEATH = 0x08
MAX_LINKS = 40  # As the kernel's MAXSYMLINKS.


class OutsideError(Exception):
    """The path leads out of the directory it must stay beneath (or is a link where none may be)."""


class _OpenHow(ctypes.Structure):
    _fields_ = (
        ("flags", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("resolve", ctypes.c_uint64),
    )


_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_has_openat2: bool | None = None


def openat2(dir_fd: int, path: str, flags: int, resolve: int) -> int:
    """The raw ``openat2`` system call; raises OSError with the kernel's errno."""
    how = _OpenHow(flags | os.O_CLOEXEC, 0, resolve)
    fd = _syscall(
        ctypes.c_long(SYS_OPENAT2),
        ctypes.c_int(dir_fd),
        ctypes.c_char_p(os.fsencode(path)),
        ctypes.byref(how),
        ctypes.c_size_t(ctypes.sizeof(how)),
    )
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return int(fd)


def has_openat2() -> bool:
    """Whether this kernel has ``openat2`` (probed once: ENOSYS, or seccomp's EPERM, means no)."""
    global _has_openat2
    if _has_openat2 is None:
        try:
            os.close(openat2(-100, "/", os.O_PATH, RESOLVE_BENEATH))  # AT_FDCWD
            _has_openat2 = True
        except OSError as e:
            # "/" is absolute, so RESOLVE_BENEATH refuses it with EXDEV: the call exists.
            _has_openat2 = e.errno == errno.EXDEV
    return _has_openat2


def open_beneath_fd(
    root_fd: int, relative: str, flags: int, *, use_openat2: bool | None = None
) -> int:
    """Open ``relative`` beneath the directory ``root_fd`` with ``flags``.

    Raises OutsideError when it leads out (an absolute link, ``..`` above the root, a magic
    link), FileNotFoundError / NotADirectoryError as the kernel does, OSError otherwise.
    """
    if use_openat2 is None:
        use_openat2 = has_openat2()
    if not use_openat2:
        return walk_beneath(root_fd, relative, flags)
    for _ in range(8):
        try:
            return openat2(root_fd, relative, flags, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)
        except OSError as e:
            if e.errno == errno.EXDEV:
                raise OutsideError(f"'{relative}' leads outside its directory") from None
            if e.errno != errno.EAGAIN:  # EAGAIN: a rename raced with '..'; try again.
                raise
    raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN), relative)


def _components(path: str) -> list[str]:
    return [c for c in path.split("/") if c not in ("", ".")]


def walk_beneath(root_fd: int, relative: str, flags: int) -> int:
    """:func:`open_beneath_fd` without ``openat2``: one ``O_NOFOLLOW`` step at a time."""
    if relative.startswith("/"):
        raise OutsideError(f"'{relative}' is absolute")
    pending = _components(relative)[::-1]  # A stack: the next component is last.
    dirs = [os.dup(root_fd)]  # Descriptors from the root down to where the walk is.
    links = 0
    try:
        while pending:
            name = pending.pop()
            if name == "..":
                if len(dirs) == 1:
                    raise OutsideError(f"'{relative}' climbs above its directory")
                os.close(dirs.pop())
                continue
            fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirs[-1])
            try:
                st = os.fstat(fd)
                if stat.S_ISLNK(st.st_mode):
                    links += 1
                    if links > MAX_LINKS:
                        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), relative)
                    target = os.readlink(name, dir_fd=dirs[-1])
                    if target.startswith("/"):
                        raise OutsideError(f"'{relative}' passes through an absolute link")
                    pending.extend(_components(target)[::-1])
                    continue
                if not pending:  # The last component: open it as asked, still not following.
                    return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirs[-1])
                if not stat.S_ISDIR(st.st_mode):
                    raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), relative)
                dirs.append(fd)
                fd = -1
            finally:
                if fd >= 0:
                    os.close(fd)
        return os.open(".", flags | os.O_CLOEXEC, dir_fd=dirs[-1])
    finally:
        for fd in dirs:
            os.close(fd)


def open_no_links(path: str) -> int:
    """An ``O_PATH`` descriptor of the directory ``path`` (absolute), refusing a link anywhere
    on the way (OutsideError naming it); FileNotFoundError if it does not exist."""
    if not path.startswith("/"):
        raise ValueError(f"not an absolute path: {path!r}")
    fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    walked = ""
    try:
        for name in _components(path):
            if name == "..":
                raise OutsideError(f"{path} holds '..'")
            walked += "/" + name
            flags = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
            try:
                step = os.open(name, flags, dir_fd=fd)
            except NotADirectoryError:
                if stat.S_ISLNK(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                    raise OutsideError(f"{walked} is a symbolic link") from None
                raise OutsideError(f"{walked} is not a directory") from None
            os.close(fd)
            fd = step
    except BaseException:
        os.close(fd)
        raise
    return fd
