"""Virtual paths of the files API and their confinement to sandbox roots (blocking; use threads).

A virtual path is ``/<root name>/<relative path>``. Root names come from the agent (one per
exposed sandbox, e.g. ``frameworks/F/executors/E/runs/latest``) and may contain slashes; the
longest matching name wins. A prefix of root names (``/`` included) is a virtual directory that
lists the next segments.

Refusals: ``..`` segments and NUL bytes (400), paths under no root (403), paths whose real
location, after resolving every link, is outside their root (403). Missing paths are 404.
Opening re-checks the real location of the opened descriptor, so swapping a component for a
link between the check and the open does not escape either.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

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
    """A virtual path resolved to a real one inside its root."""

    virtual: str
    """The normalised virtual path, ``/`` joined segments."""
    root: str
    """The root's real path."""
    real: str
    """The target's real path (every link resolved), inside ``root``."""


@dataclass(frozen=True)
class VirtualDir:
    """A prefix of root names: listed as directories, holds no files of its own."""

    virtual: str
    children: tuple[tuple[str, Path | None], ...]
    """(name, the real root when ``name`` completes a root name, else None)."""


def resolve(path: str | None, roots: Mapping[str, Path]) -> Target | VirtualDir:
    """Resolve a virtual path; raises :class:`FilesError` (400, 403 or 404)."""
    segments = split_virtual(path)
    virtual = "/" + "/".join(segments)
    table = root_table(roots)
    matches = [name for name in table if segments[: len(name)] == name]
    if matches:
        name = max(matches, key=len)
        real_root = os.path.realpath(table[name])
        if not os.path.isdir(real_root):
            raise FilesError(404, f"the sandbox of '{virtual}' no longer exists")
        candidate = os.path.join(real_root, *segments[len(name) :])
        real = os.path.realpath(candidate)
        if not is_within(real, real_root):
            raise FilesError(403, f"'{virtual}' resolves outside its sandbox through a symlink")
        if not os.path.exists(real):
            raise FilesError(404, f"'{virtual}' does not exist")
        return Target(virtual, real_root, real)
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
    """Open ``target`` for reading; refuses directories and anything but a regular file.

    Returns the descriptor (the caller closes it) and its status.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(target.real, flags)
    except FileNotFoundError:
        raise FilesError(404, f"'{target.virtual}' does not exist") from None
    except IsADirectoryError:
        raise FilesError(400, f"'{target.virtual}' is a directory") from None
    except OSError as error:
        # ELOOP: the path became a link after it was resolved.
        raise FilesError(403, f"'{target.virtual}' cannot be opened: {error.strerror}") from None
    try:
        st = os.fstat(fd)
        opened = _opened_path(fd)
        if opened is not None and not is_within(opened, target.root):
            raise FilesError(403, f"'{target.virtual}' changed to point outside its sandbox")
        if stat.S_ISDIR(st.st_mode):
            raise FilesError(400, f"'{target.virtual}' is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise FilesError(400, f"'{target.virtual}' is not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def _opened_path(fd: int) -> str | None:
    """Where an open descriptor really points (Linux), or None where that is unknown."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
