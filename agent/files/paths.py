"""Virtual paths of the files API and their confinement to sandbox roots (blocking; use threads).

A virtual path is ``/<root name>/<relative path>``. Root names come from the agent (one per
exposed sandbox, e.g. ``frameworks/F/executors/E/runs/latest``) and may contain slashes; the
longest matching name wins. A prefix of root names (``/`` included) is a virtual directory that
lists the next segments.

Refusals: ``..`` segments and NUL bytes (400), paths under no root (403), a sandbox directory
with a link anywhere on its own path (403: a task replaced it, or ``runs/latest``, by a link),
paths that leave their sandbox through a link (403), files that may be hard links to files
outside (403, :func:`check_owner`). Missing paths are 404.

Every open resolves beneath a descriptor of the sandbox directory, never by path string:
``openat2`` with ``RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`` where the kernel has it (5.6+),
else a component-by-component walk with ``O_NOFOLLOW`` that expands links itself
(:mod:`agent.files.beneath`). Links inside the sandbox are followed; a link that leads out, an
absolute link and ``..`` above the sandbox are refused; nothing can be swapped in between a
check and the open, because there is no separate check.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from agent.files.beneath import OutsideError, open_beneath_fd, open_no_links

MAX_PATH_LENGTH = 4096


class FilesError(Exception):
    """A request the files API refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def is_within(path: str, root: str) -> bool:
    """Whether the resolved ``path`` is the resolved ``root`` or below it."""
    return path == root or path.startswith(root.rstrip("/") + "/")


def split_virtual(path: str | None) -> tuple[str, ...]:
    """The segments of a virtual path; refuses what could climb out of a root."""
    if path is None or path == "":
        raise FilesError(400, "query parameter 'path' is required")
    if len(path) > MAX_PATH_LENGTH:
        raise FilesError(400, f"path is longer than {MAX_PATH_LENGTH} characters")
    if "\x00" in path:
        raise FilesError(400, "path contains a NUL byte")
    segments = tuple(s for s in path.split("/") if s not in ("", "."))
    if ".." in segments:
        raise FilesError(400, f"path '{path}' contains a '..' segment")
    return segments


def root_table(roots: Mapping[str, Path]) -> dict[tuple[str, ...], Path]:
    """Root names as segment tuples; a root name may not be empty or hold '..'."""
    table = {}
    for name, root in roots.items():
        segments = tuple(s for s in name.split("/") if s not in ("", "."))
        if not segments or ".." in segments:
            raise ValueError(f"invalid sandbox root name {name!r}")
        table[segments] = Path(root)
    return table


@dataclass(frozen=True)
class Target:
    """A virtual path inside a sandbox: the sandbox's path and the path below it."""

    virtual: str
    """The normalised virtual path, ``/`` joined segments."""
    root: str
    """The sandbox directory, as the agent named it (no component may be a link)."""
    relative: str
    """The path below the sandbox (``.`` for the sandbox itself), resolved only beneath it."""

    @property
    def real(self) -> str:
        """Where the target is, for messages (links inside the sandbox not resolved)."""
        return os.path.normpath(os.path.join(self.root, self.relative))


@dataclass(frozen=True)
class VirtualDir:
    """A prefix of root names: listed as directories, holds no files of its own."""

    virtual: str
    children: tuple[tuple[str, Path | None], ...]
    """(name, the real root when ``name`` completes a root name, else None)."""


def sandbox_of(path: str | None, roots: Mapping[str, Path]) -> str | None:
    """The root name of the sandbox a virtual path lies in (None: none, a virtual directory or
    outside every sandbox), without touching the file system; FilesError (400) if the path is
    malformed."""
    segments = split_virtual(path)
    matches = [name for name in root_table(roots) if segments[: len(name)] == name]
    if not matches:
        return None
    longest: tuple[str, ...] = max(matches, key=len)
    return "/".join(longest)


def resolve(path: str | None, roots: Mapping[str, Path]) -> Target | VirtualDir:
    """Resolve a virtual path; raises :class:`FilesError` (400, 403 or 404).

    The target is opened beneath its sandbox once here, so a missing file or one reached
    through a link out of the sandbox is refused now; every later use opens it again the
    same way (:func:`open_beneath`), so nothing swapped in meanwhile escapes either.
    """
    segments = split_virtual(path)
    virtual = "/" + "/".join(segments)
    table = root_table(roots)
    matches = [name for name in table if segments[: len(name)] == name]
    if matches:
        name = max(matches, key=len)
        relative = "/".join(segments[len(name) :]) or "."
        target = Target(virtual, str(table[name]), relative)
        os.close(open_beneath(target, os.O_PATH))
        return target
    depth = len(segments)
    children: dict[str, Path | None] = {}
    for name, root in table.items():
        if len(name) > depth and name[:depth] == segments:
            child = name[depth]
            if len(name) == depth + 1:
                children[child] = root
            else:
                children.setdefault(child, None)
    if children:
        return VirtualDir(virtual, tuple(sorted(children.items())))
    raise FilesError(403, f"'{virtual}' is not inside any sandbox")


def open_regular(target: Target) -> tuple[int, os.stat_result]:
    """Open ``target`` for reading; refuses directories and anything but a regular file, and
    files that may be hard links to files outside the sandbox (see :func:`check_owner`).

    Returns the descriptor (the caller closes it) and its status.
    """
    fd, sandbox = open_with_root(target, os.O_RDONLY | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise FilesError(400, f"'{target.virtual}' is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise FilesError(400, f"'{target.virtual}' is not a regular file")
        check_owner(target, st, sandbox)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def check_owner(target: Target, st: os.stat_result, sandbox: os.stat_result) -> None:
    """Refuse a file that may be a hard link to a file outside the sandbox.

    A hard link is indistinguishable from the file it links to, and no path check can see
    where else it lives; but while the outside file exists the link count is at least 2. So a
    file with one link is served whoever owns it (it exists only here). A file with more is
    served only when it belongs to the sandbox's owner and that owner is not root: a task
    switched to its user can link only files it owns (``fs.protected_hardlinks``), while a
    root task can link ``/etc/shadow``. Mesos does not check this; the cost is that hard
    links unpacked into a root-owned sandbox are not served.
    """
    if st.st_nlink <= 1 or (st.st_uid == sandbox.st_uid and sandbox.st_uid != 0):
        return
    if sandbox.st_uid == 0:
        why = "in a root-owned sandbox"
    else:
        why = f"and is owned by uid {st.st_uid}, not by the sandbox's owner (uid {sandbox.st_uid})"
    raise FilesError(
        403,
        f"'{target.virtual}' has {st.st_nlink} hard links {why}; it may be a link to a file"
        " outside the sandbox",
    )


def open_with_root(target: Target, flags: int) -> tuple[int, os.stat_result]:
    """Open ``target`` beneath its sandbox with ``flags``; also the sandbox directory's status.

    Raises :class:`FilesError`: 404 for a missing sandbox or path, 403 for a sandbox path
    holding a link, a path leading out through a link, or one that cannot be opened.
    """
    try:
        root_fd = open_no_links(target.root)
    except FileNotFoundError:
        raise FilesError(404, f"the sandbox of '{target.virtual}' no longer exists") from None
    except (OutsideError, NotADirectoryError) as error:
        raise FilesError(
            403, f"the sandbox of '{target.virtual}' is not a plain directory: {error}"
        ) from None
    try:
        sandbox = os.fstat(root_fd)
        try:
            fd = open_beneath_fd(root_fd, target.relative, flags)
        except OutsideError:
            raise FilesError(
                403, f"'{target.virtual}' resolves outside its sandbox through a symlink"
            ) from None
        except (FileNotFoundError, NotADirectoryError):
            raise FilesError(404, f"'{target.virtual}' does not exist") from None
        except OSError as error:
            raise FilesError(
                403, f"'{target.virtual}' cannot be opened: {error.strerror}"
            ) from None
    finally:
        os.close(root_fd)
    return fd, sandbox


def open_beneath(target: Target, flags: int) -> int:
    """Open ``target`` beneath its sandbox (see :func:`open_with_root`)."""
    return open_with_root(target, flags)[0]
