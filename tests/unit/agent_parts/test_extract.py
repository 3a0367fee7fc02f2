"""Safe archive extraction: benign archives land intact, malicious ones write nothing anywhere."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from agent.fetcher.errors import ArchiveError, UnsafeArchiveError
from agent.fetcher.extract import ExtractLimits, extract_archive
from agent.fetcher.plan import ArchiveKind
from tests.unit.agent_parts.archives import Entry, tree, write_gz, write_tar, write_zip

LIMITS = ExtractLimits(max_bytes=10_000_000, max_entries=1000)


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    box = tmp_path / "box"
    box.mkdir()
    (tmp_path / "outside").mkdir()
    return box


def _archive(tmp_path: Path, fmt: str, entries: list[Entry]) -> tuple[Path, ArchiveKind]:
    if fmt == "zip":
        return write_zip(tmp_path / "a.zip", entries), ArchiveKind.ZIP
    suffix = {"": ".tar", "gz": ".tar.gz", "bz2": ".tar.bz2", "xz": ".tar.xz"}[fmt]
    return write_tar(tmp_path / f"a{suffix}", entries, fmt), ArchiveKind.TAR


BENIGN = [
    Entry("pkg", kind="dir", mode=0o755),
    Entry("pkg/bin/run", b"#!/bin/sh\necho hi\n", mode=0o755),
    Entry("pkg/README", b"read me"),
    Entry("./pkg/lib/data.txt", b"data"),
    Entry("pkg/current", kind="symlink", target="lib"),
    Entry("pkg/bin/up", kind="symlink", target="../README"),
]


@pytest.mark.parametrize("fmt", ["", "gz", "bz2", "xz", "zip"])
def test_benign_archives_extract_with_modes_and_inside_links(
    tmp_path: Path, sandbox: Path, fmt: str
) -> None:
    archive, kind = _archive(tmp_path, fmt, BENIGN)
    placed = extract_archive(archive, kind, sandbox, archive.name, LIMITS)
    assert placed == [sandbox / "pkg"]
    assert (sandbox / "pkg/bin/run").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert os.access(sandbox / "pkg/bin/run", os.X_OK)
    assert not (sandbox / "pkg/README").stat().st_mode & stat.S_IXUSR
    assert (sandbox / "pkg/current/data.txt").read_bytes() == b"data"
    assert (sandbox / "pkg/bin/up").read_bytes() == b"read me"
    assert not [p for p in os.listdir(sandbox) if p.startswith(".extract-")]


def test_tar_hard_links_and_duplicate_names(tmp_path: Path, sandbox: Path) -> None:
    entries = [
        Entry("f", b"first"),
        Entry("f", b"second"),
        Entry("g", kind="hardlink", target="f"),
    ]
    archive, kind = _archive(tmp_path, "", entries)
    extract_archive(archive, kind, sandbox, archive.name, LIMITS)
    assert (sandbox / "f").read_bytes() == b"second"
    assert (sandbox / "g").stat().st_ino == (sandbox / "f").stat().st_ino


def test_setuid_and_sticky_bits_are_dropped(tmp_path: Path, sandbox: Path) -> None:
    archive, kind = _archive(tmp_path, "", [Entry("suid", b"x", mode=0o6755)])
    extract_archive(archive, kind, sandbox, archive.name, LIMITS)
    assert stat.S_IMODE((sandbox / "suid").stat().st_mode) == 0o755


def test_single_gzip_file_is_decompressed_without_its_suffix(tmp_path: Path, sandbox: Path) -> None:
    archive = write_gz(tmp_path / "notes.txt.gz", b"hello\n" * 1000)
    placed = extract_archive(archive, ArchiveKind.GZIP, sandbox, "notes.txt.gz", LIMITS)
    assert placed == [sandbox / "notes.txt"]
    assert (sandbox / "notes.txt").read_bytes() == b"hello\n" * 1000


MALICIOUS = [
    ("dotdot", [Entry("../evil", b"x")], "escapes the sandbox through '..'"),
    ("nested dotdot", [Entry("a/../../evil", b"x")], "'..'"),
    ("absolute", [Entry("{outside}/abs-evil", b"x")], "absolute path"),
    ("absolute symlink", [Entry("l", kind="symlink", target="{outside}")], "absolute path"),
    ("relative symlink out", [Entry("l", kind="symlink", target="../outside")], "outside"),
    (
        "write through symlink",
        [Entry("l", kind="symlink", target="../outside"), Entry("l/pwned", b"x")],
        "outside",
    ),
    (
        "symlink chain out",
        [Entry("a", kind="symlink", target="x/../y"), Entry("x", kind="symlink", target=".")],
        "resolves outside",
    ),
    ("device", [Entry("null", kind="chr")], "device file"),
]
TAR_ONLY = [
    ("block device", [Entry("sda", kind="blk")], "device file"),
    ("fifo", [Entry("pipe", kind="fifo")], "FIFO"),
    ("hard link out", [Entry("h", kind="hardlink", target="../outside/secret")], "'..'"),
]


@pytest.mark.parametrize("fmt", ["gz", "zip"])
@pytest.mark.parametrize(
    ("entries", "message"), [(e, m) for _, e, m in MALICIOUS], ids=[i for i, _, _ in MALICIOUS]
)
def test_malicious_archives_are_refused_and_write_nothing(
    tmp_path: Path, sandbox: Path, fmt: str, entries: list[Entry], message: str
) -> None:
    outside = tmp_path / "outside"
    (outside / "secret").write_text("s")
    entries = [
        Entry(e.name.format(outside=outside), e.data, e.kind, e.target.format(outside=outside))
        for e in [Entry("innocent.txt", b"ok"), *entries]
    ]
    archive, kind = _archive(tmp_path, fmt, entries)
    before_outside = tree(tmp_path)
    with pytest.raises(UnsafeArchiveError) as info:
        extract_archive(archive, kind, sandbox, archive.name, LIMITS)
    assert message in str(info.value)
    assert tree(sandbox) == {}
    assert tree(tmp_path) == before_outside
    assert (outside / "secret").read_text() == "s"


@pytest.mark.parametrize(
    ("entries", "message"), [(e, m) for _, e, m in TAR_ONLY], ids=[i for i, _, _ in TAR_ONLY]
)
def test_malicious_tar_only_entries(
    tmp_path: Path, sandbox: Path, entries: list[Entry], message: str
) -> None:
    (tmp_path / "outside" / "secret").write_text("s")
    archive, kind = _archive(tmp_path, "", [Entry("innocent.txt", b"ok"), *entries])
    with pytest.raises(UnsafeArchiveError) as info:
        extract_archive(archive, kind, sandbox, archive.name, LIMITS)
    assert message in str(info.value)
    assert tree(sandbox) == {}


def test_links_from_two_archives_cannot_combine_into_an_escape(
    tmp_path: Path, sandbox: Path
) -> None:
    first = write_tar(tmp_path / "one.tar", [Entry("a", kind="symlink", target="x/../escaped")])
    second = write_tar(tmp_path / "two.tar", [Entry("x", kind="symlink", target=".")])
    extract_archive(first, ArchiveKind.TAR, sandbox, "one.tar", LIMITS)
    with pytest.raises(UnsafeArchiveError, match="resolve outside the sandbox"):
        extract_archive(second, ArchiveKind.TAR, sandbox, "two.tar", LIMITS)
    # The escaping link is gone (x -> . alone is harmless); nothing was created outside.
    assert tree(sandbox) == {"x": "link"}
    assert not (tmp_path / "escaped").exists()


def test_size_and_entry_limits_stop_bombs(tmp_path: Path, sandbox: Path) -> None:
    big = write_gz(tmp_path / "big.gz", b"\0" * 2_000_000)
    with pytest.raises(ArchiveError, match="more than 1000000 bytes"):
        extract_archive(big, ArchiveKind.GZIP, sandbox, "big.gz", ExtractLimits(1_000_000, 10))
    many = write_zip(tmp_path / "many.zip", [Entry(f"f{i}", b"x") for i in range(20)])
    with pytest.raises(ArchiveError, match="more than 10 entries"):
        extract_archive(many, ArchiveKind.ZIP, sandbox, "many.zip", ExtractLimits(10**6, 10))
    assert tree(sandbox) == {}


def test_conflict_with_the_sandbox_changes_nothing(tmp_path: Path, sandbox: Path) -> None:
    (sandbox / "d").write_text("a file")
    archive = write_tar(tmp_path / "a.tar", [Entry("zzz", b"1"), Entry("d/x", b"2")])
    with pytest.raises(ArchiveError, match="'d' in the archive conflicts"):
        extract_archive(archive, ArchiveKind.TAR, sandbox, "a.tar", LIMITS)
    assert tree(sandbox) == {"d": "file"}


def test_merging_into_existing_directories(tmp_path: Path, sandbox: Path) -> None:
    (sandbox / "d").mkdir()
    (sandbox / "d" / "old").write_text("old")
    archive = write_tar(tmp_path / "a.tar", [Entry("d/new", b"new")])
    extract_archive(archive, ArchiveKind.TAR, sandbox, "a.tar", LIMITS)
    assert tree(sandbox) == {"d": "dir", "d/new": "file", "d/old": "file"}


@pytest.mark.parametrize(
    ("name", "kind"),
    [("bad.tar.gz", ArchiveKind.TAR), ("bad.zip", ArchiveKind.ZIP), ("bad.gz", ArchiveKind.GZIP)],
)
def test_corrupt_archives_fail_cleanly(
    tmp_path: Path, sandbox: Path, name: str, kind: ArchiveKind
) -> None:
    archive = tmp_path / name
    archive.write_bytes(b"this is not an archive at all" * 10)
    with pytest.raises(ArchiveError, match="cannot extract"):
        extract_archive(archive, kind, sandbox, name, LIMITS)
    assert tree(sandbox) == {}
