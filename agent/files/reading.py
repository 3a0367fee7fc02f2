"""Listing, reading and tailing confined files (blocking; the router runs these in threads)."""

from __future__ import annotations

import os
import stat
from typing import Any

from agent.files.paths import FilesError, Target, VirtualDir, open_beneath, open_regular

TAIL_BLOCK = 64 * 1024


def entry_info(name: str, virtual: str, st: os.stat_result) -> dict[str, Any]:
    """One listing entry: the fields of ``ls -l`` that matter, in JSON."""
    return {
        "name": name,
        "path": virtual,
        "size": st.st_size,
        "mode": stat.filemode(st.st_mode),
        "mtime": st.st_mtime,
        "is_dir": stat.S_ISDIR(st.st_mode),
    }


def _child(virtual: str, name: str) -> str:
    return f"{virtual.rstrip('/')}/{name}"


def list_target(target: Target | VirtualDir) -> list[dict[str, Any]]:
    """A directory's entries sorted by name (links are listed, not followed); a file: itself."""
    if isinstance(target, VirtualDir):
        entries = []
        for name, root in target.children:
            try:
                st = os.stat(root, follow_symlinks=False) if root is not None else None
            except OSError:
                st = None
            if st is None:
                info = {"size": 0, "mode": "drwxr-xr-x", "mtime": 0.0, "is_dir": True}
                entries.append({"name": name, "path": _child(target.virtual, name), **info})
            else:
                entries.append(entry_info(name, _child(target.virtual, name), st))
        return entries
    fd = open_beneath(target, os.O_RDONLY | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISDIR(st.st_mode):
            return [entry_info(target.virtual.rsplit("/", 1)[-1], target.virtual, st)]
        entries = []
        # Listed through the descriptor opened beneath the sandbox, never by path again.
        with os.scandir(fd) as scan:
            for entry in scan:
                try:
                    entry_st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # removed while listing
                entries.append(entry_info(entry.name, _child(target.virtual, entry.name), entry_st))
    finally:
        os.close(fd)
    return sorted(entries, key=lambda e: str(e["name"]))


def read_chunk(target: Target, offset: int, length: int | None, cap: int) -> dict[str, Any]:
    """Mesos's ``/files/read``: up to ``length`` bytes (at most ``cap``) from ``offset``.

    ``offset == -1`` answers the file's size with empty data, so a pager can start at the end.
    Bytes are decoded as UTF-8 with replacement characters, so a chunk boundary inside a
    character shows as U+FFFD.
    """
    fd, st = open_regular(target)
    try:
        size = st.st_size
        if offset == -1:
            return {"data": "", "offset": size}
        if offset >= size or length == 0:
            return {"data": "", "offset": offset}
        wanted = min(size - offset if length is None else length, cap)
        data = os.pread(fd, wanted, offset)
    finally:
        os.close(fd)
    return {"data": data.decode("utf-8", "replace"), "offset": offset}


def tail(target: Target, lines: int, max_bytes: int) -> dict[str, Any]:
    """The last ``lines`` lines (at most ``max_bytes`` of them) and where they start."""
    fd, st = open_regular(target)
    try:
        size = st.st_size
        if lines == 0 or size == 0:
            return {"data": "", "offset": size, "size": size}
        data = b""
        position = size
        # One newline more than lines is needed to know where the first wanted line starts;
        # a final newline ends the last line rather than starting another.
        needed = lines + (1 if _ends_with_newline(fd, size) else 0)
        while position > 0 and data.count(b"\n") < needed and len(data) < max_bytes:
            step = min(TAIL_BLOCK, position, max_bytes - len(data))
            position -= step
            data = os.pread(fd, step, position) + data
    finally:
        os.close(fd)
    kept = b"".join(data.splitlines(keepends=True)[-lines:])
    if len(kept) > max_bytes:
        kept = kept[-max_bytes:]
    return {"data": kept.decode("utf-8", "replace"), "offset": size - len(kept), "size": size}


def _ends_with_newline(fd: int, size: int) -> bool:
    return os.pread(fd, 1, size - 1) == b"\n"


class FileStream:
    """Reads an open file in chunks up to a fixed size; the descriptor is closed exactly once."""

    def __init__(self, fd: int, size: int) -> None:
        self._fd: int | None = fd
        self.size = size
        self.position = 0

    def read(self, chunk: int) -> bytes:
        """The next chunk, or b"" at the size fixed at open (the file may still grow)."""
        if self._fd is None:
            raise FilesError(500, "the file was closed")
        wanted = min(chunk, self.size - self.position)
        if wanted <= 0:
            return b""
        data = os.pread(self._fd, wanted, self.position)
        self.position += len(data)
        return data

    def close(self) -> None:
        """Close the descriptor (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __del__(self) -> None:
        # A response that is never sent (client gone before the body starts) still frees it.
        self.close()
