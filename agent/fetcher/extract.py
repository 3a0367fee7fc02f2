"""Safe extraction of tar, zip and gzip archives into a sandbox (blocking; run it in a thread).

Archives come from frameworks and are not trusted. Extraction happens in three steps:

1. Every entry is written into a fresh staging directory inside the sandbox. Entry names that are
   absolute or contain ``..`` are refused, as are device files, FIFOs and sockets. Regular files
   and hard links are written first, while the staging tree holds no symbolic link at all, so no
   write can be redirected through one. Set-uid, set-gid and sticky bits are dropped.
2. Symbolic links are created last. A link whose target is absolute, or whose target leaves the
   sandbox when read lexically, is refused; once all links exist, each is resolved for real and
   must still land inside (links can point through other links).
3. The staging tree is merged into the sandbox by renames that never follow a link. A directory
   in the archive over a file in the sandbox (or the reverse) is a conflict, found before any
   rename.

Any failure in steps 1-3 removes the staging directory, so a refused archive leaves nothing
behind. After a merge that added links, every link in the sandbox is resolved once more, because
links from two archives can combine into an escape (``x -> .`` from one, ``a -> x/../y`` from
the other); links found escaping are removed and the extraction fails. No write ever goes
through a link, so nothing is written outside the sandbox in any case.
The standard library's tar filters are not relied on: the interpreter this project targets
(3.11) predates fixes to them (CVE-2025-4517 and relatives).
"""

from __future__ import annotations

import gzip
import lzma
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

from agent.fetcher.errors import ArchiveError, UnsafeArchiveError
from agent.fetcher.plan import ArchiveKind

_CHUNK = 1024 * 1024
# What a corrupt or unsupported archive raises from the standard library (RuntimeError and
# NotImplementedError: zipfile's encrypted entries and unknown compression methods).
_CORRUPT = (
    tarfile.TarError,
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
    ValueError,
    RuntimeError,
    NotImplementedError,
)
_MAX_ZIP_LINK_TARGET = 4096


class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


@dataclass(frozen=True)
class ExtractLimits:
    """Caps on what one archive may expand to."""

    max_bytes: int
    max_entries: int


def is_within(path: str, root: str) -> bool:
    """Whether ``path`` is ``root`` or below it (both already resolved)."""
    return path == root or path.startswith(root.rstrip("/") + "/")


def entry_parts(name: str) -> tuple[str, ...]:
    """An archive entry's name as path components; refuses absolute names and ``..``."""
    if "\x00" in name:
        raise UnsafeArchiveError(f"entry {name!r} has a NUL byte in its name")
    path = PurePosixPath(name)
    if path.is_absolute():
        raise UnsafeArchiveError(f"entry '{name}' has an absolute path")
    parts = tuple(part for part in path.parts if part != ".")
    if ".." in parts:
        raise UnsafeArchiveError(f"entry '{name}' escapes the sandbox through '..'")
    return parts


def check_link_target(parts: tuple[str, ...], target: str) -> None:
    """Refuse a symlink at ``parts`` whose target is absolute or leaves the root lexically."""
    name = "/".join(parts)
    if not target:
        raise UnsafeArchiveError(f"entry '{name}' is a symlink with an empty target")
    if "\x00" in target:
        raise UnsafeArchiveError(f"entry '{name}' is a symlink with a NUL byte in its target")
    if target.startswith("/"):
        raise UnsafeArchiveError(f"entry '{name}' is a symlink to the absolute path '{target}'")
    resolved = posixpath.normpath(posixpath.join(*parts[:-1], target))
    if resolved == ".." or resolved.startswith("../"):
        raise UnsafeArchiveError(f"entry '{name}' is a symlink to '{target}', outside the sandbox")


class _StagingWriter:
    """Writes entries under one staging root, enforcing the limits and the rules above."""

    def __init__(self, root: Path, limits: ExtractLimits) -> None:
        self.root = root
        self.limits = limits
        self.entries = 0
        self.bytes = 0
        self.symlinks: list[tuple[tuple[str, ...], str]] = []

    def count_entry(self, name: str) -> None:
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise ArchiveError(
                f"archive has more than {self.limits.max_entries} entries (at '{name}')"
            )

    def ensure_dir(self, parts: tuple[str, ...], mode: int | None = None) -> Path:
        """Create the directories ``parts`` (never through a link) and return the last one."""
        path = self.root
        for index, part in enumerate(parts):
            path = path / part
            try:
                st = path.lstat()
            except FileNotFoundError:
                path.mkdir(mode=0o755)
                continue
            if not stat.S_ISDIR(st.st_mode):
                prefix = "/".join(parts[: index + 1])
                raise ArchiveError(f"directory '{prefix}' conflicts with a file in the archive")
        if mode is not None and parts:
            os.chmod(path, (mode & 0o777) | 0o700)
        return path

    def _clear(self, parts: tuple[str, ...]) -> Path:
        """The path for a new non-directory entry, removing an earlier entry of that name."""
        if not parts:
            raise ArchiveError("a non-directory entry names the archive's root")
        parent = self.ensure_dir(parts[:-1])
        path = parent / parts[-1]
        try:
            st = path.lstat()
        except FileNotFoundError:
            return path
        if stat.S_ISDIR(st.st_mode):
            raise ArchiveError(f"entry '{'/'.join(parts)}' conflicts with a directory")
        # Later entries of the same name win, as with tar itself.
        path.unlink()
        return path

    def write_file(self, parts: tuple[str, ...], source: _Readable, mode: int) -> None:
        path = self._clear(parts)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(path, flags, 0o600)
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(_CHUNK):
                self.bytes += len(chunk)
                if self.bytes > self.limits.max_bytes:
                    raise ArchiveError(
                        f"archive expands to more than {self.limits.max_bytes} bytes"
                    )
                out.write(chunk)
            os.fchmod(out.fileno(), (mode & 0o777) | 0o600)

    def hard_link(self, parts: tuple[str, ...], target_name: str) -> None:
        target_parts = entry_parts(target_name)
        target = self.root.joinpath(*target_parts)
        try:
            st = target.lstat()
        except FileNotFoundError:
            raise ArchiveError(
                f"entry '{'/'.join(parts)}' is a hard link to '{target_name}', "
                "which is not earlier in the archive"
            ) from None
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeArchiveError(
                f"entry '{'/'.join(parts)}' is a hard link to '{target_name}', not a regular file"
            )
        path = self._clear(parts)
        os.link(target, path, follow_symlinks=False)

    def defer_symlink(self, parts: tuple[str, ...], target: str) -> None:
        check_link_target(parts, target)
        self.symlinks.append((parts, target))

    def finish_symlinks(self) -> None:
        """Create the deferred links, then check where each one resolves to."""
        for parts, target in self.symlinks:
            os.symlink(target, self._clear(parts))
        real_root = os.path.realpath(self.root)
        for parts, target in self.symlinks:
            if not is_within(os.path.realpath(self.root.joinpath(*parts)), real_root):
                raise UnsafeArchiveError(
                    f"entry '{'/'.join(parts)}' is a symlink to '{target}', "
                    "which resolves outside the sandbox"
                )


def _extract_tar(archive: Path, writer: _StagingWriter) -> None:
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            writer.count_entry(member.name)
            parts = entry_parts(member.name)
            if member.isdir():
                writer.ensure_dir(parts, member.mode)
            elif member.isreg():
                source = tar.extractfile(member)
                if source is None:
                    raise ArchiveError(f"entry '{member.name}' has no data")
                with source:
                    writer.write_file(parts, source, member.mode)
            elif member.issym():
                writer.defer_symlink(parts, member.linkname)
            elif member.islnk():
                writer.hard_link(parts, member.linkname)
            elif member.ischr() or member.isblk():
                raise UnsafeArchiveError(f"entry '{member.name}' is a device file")
            elif member.isfifo():
                raise UnsafeArchiveError(f"entry '{member.name}' is a FIFO")
            else:
                raise UnsafeArchiveError(f"entry '{member.name}' has an unsupported type")


def _extract_zip(archive: Path, writer: _StagingWriter) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            writer.count_entry(info.filename)
            parts = entry_parts(info.filename)
            # Unix mode bits live in the high half of external_attr; 0 when made elsewhere.
            mode = info.external_attr >> 16
            kind = stat.S_IFMT(mode)
            if info.is_dir() or kind == stat.S_IFDIR:
                writer.ensure_dir(parts, mode or 0o755)
            elif kind == stat.S_IFLNK:
                with zf.open(info) as source:
                    raw = source.read(_MAX_ZIP_LINK_TARGET + 1)
                if len(raw) > _MAX_ZIP_LINK_TARGET:
                    raise UnsafeArchiveError(f"entry '{info.filename}' has an oversized target")
                writer.defer_symlink(parts, raw.decode("utf-8", "surrogateescape"))
            elif kind in (stat.S_IFCHR, stat.S_IFBLK):
                raise UnsafeArchiveError(f"entry '{info.filename}' is a device file")
            elif kind in (stat.S_IFIFO, stat.S_IFSOCK):
                raise UnsafeArchiveError(f"entry '{info.filename}' is a FIFO or socket")
            else:
                with zf.open(info) as source:
                    writer.write_file(parts, source, mode or 0o644)


def _extract_gzip(archive: Path, writer: _StagingWriter, name: str) -> None:
    stem = name[: -len(".gz")] if name.lower().endswith(".gz") else name
    writer.count_entry(stem)
    with gzip.open(archive, "rb") as source:
        writer.write_file(entry_parts(stem), source, 0o644)


def _check_merge(src: Path, dst: Path, rel: str) -> None:
    """Find conflicts between a staging tree and the sandbox before anything is moved."""
    with os.scandir(src) as scan:
        entries = list(scan)
    for entry in entries:
        target = dst / entry.name
        try:
            st = target.lstat()
        except FileNotFoundError:
            continue
        here = f"{rel}{entry.name}"
        src_is_dir = entry.is_dir(follow_symlinks=False)
        dst_is_dir = stat.S_ISDIR(st.st_mode)
        if src_is_dir and dst_is_dir:
            _check_merge(Path(entry.path), target, here + "/")
        elif src_is_dir:
            raise ArchiveError(f"directory '{here}' in the archive conflicts with a sandbox file")
        elif dst_is_dir:
            raise ArchiveError(f"file '{here}' in the archive conflicts with a sandbox directory")


def _merge(src: Path, dst: Path) -> list[Path]:
    """Move a staging tree into ``dst``; returns the top-level paths placed."""
    placed = []
    with os.scandir(src) as scan:
        entries = list(scan)
    for entry in entries:
        target = dst / entry.name
        if entry.is_dir(follow_symlinks=False) and target.is_dir() and not target.is_symlink():
            _merge(Path(entry.path), target)
        else:
            os.replace(entry.path, target)
        placed.append(target)
    return placed


def verify_symlinks(sandbox: Path) -> None:
    """Refuse (and remove) every link in ``sandbox`` that resolves outside it."""
    real_root = os.path.realpath(sandbox)
    escaping = []
    for directory, dirnames, filenames in os.walk(sandbox):
        for name in (*dirnames, *filenames):
            path = os.path.join(directory, name)
            if os.path.islink(path) and not is_within(os.path.realpath(path), real_root):
                escaping.append(path)
    for path in escaping:
        os.unlink(path)
    if escaping:
        names = ", ".join(os.path.relpath(path, sandbox) for path in escaping)
        raise UnsafeArchiveError(f"symlinks resolve outside the sandbox: {names}")


def extract_archive(
    archive: Path, kind: ArchiveKind, sandbox: Path, name: str, limits: ExtractLimits
) -> list[Path]:
    """Extract ``archive`` into ``sandbox`` safely; returns the top-level paths placed there.

    ``name`` is the archive's name in the sandbox; a single gzip file is decompressed to that
    name without ``.gz``. Raises :class:`ArchiveError` (or :class:`UnsafeArchiveError`); then
    nothing from the archive is left in the sandbox.
    """
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=sandbox))
    try:
        writer = _StagingWriter(staging, limits)
        try:
            if kind is ArchiveKind.TAR:
                _extract_tar(archive, writer)
            elif kind is ArchiveKind.ZIP:
                _extract_zip(archive, writer)
            else:
                _extract_gzip(archive, writer, name)
            writer.finish_symlinks()
        except ArchiveError:
            raise
        except _CORRUPT as error:
            raise ArchiveError(f"cannot extract {kind.value} archive: {error}") from error
        _check_merge(staging, sandbox, "")
        placed = _merge(staging, sandbox)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if writer.symlinks:
        # Links already in the sandbox and the new ones can combine into an escape.
        verify_symlinks(sandbox)
    return placed
