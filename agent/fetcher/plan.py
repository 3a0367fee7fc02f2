"""What to do for one ``CommandInfo.URI``: pure parsing and validation, no I/O.

A :class:`FetchPlan` says where the resource comes from (a local file or an HTTP(S) URL), the
relative name it gets in the sandbox, whether it is made executable, which archive format (if
any) is extracted, and whether the cache is used.
"""

from __future__ import annotations

import enum
import posixpath
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from agent.fetcher.errors import FetchError
from protos.v1 import mesos_pb2


class SourceKind(enum.Enum):
    """Where a URI's bytes come from."""

    LOCAL = "local"
    HTTP = "http"


class ArchiveKind(enum.Enum):
    """The archive formats the fetcher extracts, recognised by file-name suffix."""

    TAR = "tar"
    ZIP = "zip"
    GZIP = "gz"
    """A single gzip-compressed file (not a tarball): decompressed next to itself."""


# Longest suffixes first, so ".tar.gz" wins over ".gz".
_ARCHIVE_SUFFIXES: tuple[tuple[str, ArchiveKind], ...] = (
    (".tar.gz", ArchiveKind.TAR),
    (".tar.bz2", ArchiveKind.TAR),
    (".tar.xz", ArchiveKind.TAR),
    (".tar", ArchiveKind.TAR),
    (".tgz", ArchiveKind.TAR),
    (".tbz2", ArchiveKind.TAR),
    (".txz", ArchiveKind.TAR),
    (".zip", ArchiveKind.ZIP),
    (".gz", ArchiveKind.GZIP),
)


def archive_kind(name: str) -> ArchiveKind | None:
    """The archive format a file name's suffix announces, or None for a plain file."""
    lowered = name.lower()
    for suffix, kind in _ARCHIVE_SUFFIXES:
        if lowered.endswith(suffix) and len(lowered) > len(suffix):
            return kind
    return None


@dataclass(frozen=True)
class FetchPlan:
    """The validated intent for one URI."""

    uri: str
    kind: SourceKind
    location: str
    """An absolute local path for LOCAL, the URL itself for HTTP."""
    output: PurePosixPath
    """Relative path of the fetched file inside the sandbox."""
    executable: bool
    archive: ArchiveKind | None
    """The format to extract, or None when the file is kept as is."""
    cache: bool


def safe_relative_path(text: str, what: str, uri: str) -> PurePosixPath:
    """``text`` as a normalised relative path that cannot leave its base directory."""
    if not text:
        raise FetchError(uri, f"{what} is empty")
    if "\x00" in text:
        raise FetchError(uri, f"{what} contains a NUL byte")
    path = PurePosixPath(text)
    if path.is_absolute():
        raise FetchError(uri, f"{what} '{text}' must be a relative path")
    parts = [part for part in path.parts if part != "."]
    if ".." in parts:
        raise FetchError(uri, f"{what} '{text}' must not contain '..'")
    if not parts:
        raise FetchError(uri, f"{what} '{text}' names no file")
    return PurePosixPath(*parts)


def plan_fetch(uri: mesos_pb2.CommandInfo.URI) -> FetchPlan:
    """Validate one URI message and decide how to fetch it; raises :class:`FetchError`."""
    value = uri.value
    if not value:
        raise FetchError(value, "CommandInfo.URI.value is empty")
    try:
        parts = urlsplit(value)
        port = parts.port  # parsing it validates it
    except ValueError as error:
        raise FetchError(value, f"malformed URI: {error}") from None
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise FetchError(value, "URL has no host")
        if port == 0:
            raise FetchError(value, "URL has port 0")
        kind, location, source_path = SourceKind.HTTP, value, unquote(parts.path)
    elif scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise FetchError(value, f"file:// URI names a remote host '{parts.netloc}'")
        location = unquote(parts.path)
        if not location.startswith("/"):
            raise FetchError(value, "file:// URI must hold an absolute path")
        kind, source_path = SourceKind.LOCAL, location
    elif scheme == "" and value.startswith("/"):
        kind, location, source_path = SourceKind.LOCAL, value, value
    elif scheme == "":
        raise FetchError(value, "relative local paths are not supported; use an absolute path")
    else:
        raise FetchError(
            value, f"unsupported scheme '{scheme}' (supported: local paths, file, http, https)"
        )

    if uri.HasField("output_file"):
        output = safe_relative_path(uri.output_file, "output_file", value)
    else:
        base = posixpath.basename(source_path)
        if base in ("", ".", ".."):
            raise FetchError(value, "cannot derive a file name from the URI; set output_file")
        output = safe_relative_path(base, "file name", value)

    # As in Mesos, an executable resource is never extracted.
    archive = archive_kind(output.name) if uri.extract and not uri.executable else None
    return FetchPlan(
        uri=value,
        kind=kind,
        location=location,
        output=output,
        executable=uri.executable,
        archive=archive,
        cache=uri.cache,
    )
