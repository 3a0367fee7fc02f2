"""Builders of benign and malicious archives for the fetcher tests."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import stat
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Entry:
    """One archive member: a file (``data``), a directory, a symlink, a hard link or a device."""

    name: str
    data: bytes = b""
    kind: str = "file"  # file, dir, symlink, hardlink, chr, blk, fifo
    target: str = ""
    mode: int = 0o644


def write_tar(path: Path, entries: list[Entry], compression: str = "") -> Path:
    """A tar (``compression`` "", "gz", "bz2" or "xz") holding exactly ``entries``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.mode = entry.mode
            source = None
            if entry.kind == "file":
                info.size = len(entry.data)
                source = io.BytesIO(entry.data)
            elif entry.kind == "dir":
                info.type = tarfile.DIRTYPE
            elif entry.kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = entry.target
            elif entry.kind == "hardlink":
                info.type = tarfile.LNKTYPE
                info.linkname = entry.target
            elif entry.kind == "chr":
                info.type = tarfile.CHRTYPE
                info.devmajor, info.devminor = 1, 3
            elif entry.kind == "blk":
                info.type = tarfile.BLKTYPE
            elif entry.kind == "fifo":
                info.type = tarfile.FIFOTYPE
            tar.addfile(info, source)
    compress: dict[str, Callable[[bytes], bytes]] = {
        "": bytes,
        "gz": gzip.compress,
        "bz2": bz2.compress,
        "xz": lzma.compress,
    }
    path.write_bytes(compress[compression](buffer.getvalue()))
    return path


def write_zip(path: Path, entries: list[Entry]) -> Path:
    """A zip holding ``entries``; symlinks use the Unix mode bits, as Info-ZIP does."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for entry in entries:
            info = zipfile.ZipInfo(entry.name)
            info.create_system = 3
            if entry.kind == "dir":
                info.external_attr = (stat.S_IFDIR | 0o755) << 16
                zf.writestr(info, b"")
            elif entry.kind == "symlink":
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                zf.writestr(info, entry.target.encode())
            elif entry.kind == "chr":
                info.external_attr = (stat.S_IFCHR | 0o644) << 16
                zf.writestr(info, b"")
            else:
                info.external_attr = (stat.S_IFREG | entry.mode) << 16
                zf.writestr(info, entry.data)
    return path


def write_gz(path: Path, data: bytes) -> Path:
    """A single gzip-compressed file."""
    path.write_bytes(gzip.compress(data))
    return path


def tree(root: Path) -> dict[str, str]:
    """Every path under ``root`` (relative) mapped to its kind, links not followed."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            found[rel] = "link"
        elif path.is_dir():
            found[rel] = "dir"
        else:
            found[rel] = "file"
    return found
