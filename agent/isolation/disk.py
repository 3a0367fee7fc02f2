"""Disk usage of a sandbox, as Mesos's ``disk/du`` isolator measures it (blocking; use a thread).

The ``disk`` resource is enforced by measuring, every ``--container-disk-watch-interval``, the
space a sandbox takes on disk and killing the container once it is over its limit (the
runtime reports TASK_FAILED with REASON_CONTAINER_LIMITATION_DISK). Measuring instead of a
file-system quota works on any file system; the price is that a task can exceed its limit
for up to one interval before it is stopped (Mesos's trade-off too).

Usage is what ``du -s`` reports: allocated blocks (``st_blocks``), so sparse files count what
they really take; each inode once (hard links); symbolic links are never followed, so a link
to a large file elsewhere costs nothing and a link loop cannot stall the walk; a directory
that vanishes during the walk is skipped (the task is busy writing).
"""

from __future__ import annotations

import os
import stat

__all__ = ["describe_bytes", "disk_usage"]

BLOCK = 512  # st_blocks is in 512-byte units on Linux, whatever the file system's block size.


def disk_usage(root: str | os.PathLike[str]) -> int:
    """Bytes allocated on disk under ``root`` (``root`` included); 0 if it does not exist."""
    try:
        top = os.lstat(root)
    except FileNotFoundError:
        return 0
    seen: set[tuple[int, int]] = {(top.st_dev, top.st_ino)}
    total = top.st_blocks * BLOCK
    if not stat.S_ISDIR(top.st_mode):
        return total
    pending = [os.fspath(root)]
    while pending:
        directory = pending.pop()
        try:
            scan = os.scandir(directory)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        with scan:
            for entry in scan:
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                key = (st.st_dev, st.st_ino)
                if key in seen:
                    continue
                seen.add(key)
                total += st.st_blocks * BLOCK
                if stat.S_ISDIR(st.st_mode):
                    pending.append(entry.path)
    return total


def describe_bytes(count: float) -> str:
    """``33554432`` -> ``32 MiB``: sizes in the unit the resources are given in."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size:
            return f"{count / size:.4g} {unit}"
    return f"{int(count)} B"
