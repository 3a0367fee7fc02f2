"""plan_fetch: how a CommandInfo.URI is read, validated and named in the sandbox."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from agent.fetcher import ArchiveKind, FetchError, SourceKind, archive_kind, plan_fetch
from protos.v1 import mesos_pb2

URI = mesos_pb2.CommandInfo.URI


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("a.tar", ArchiveKind.TAR),
        ("a.tar.gz", ArchiveKind.TAR),
        ("a.TGZ", ArchiveKind.TAR),
        ("a.tar.bz2", ArchiveKind.TAR),
        ("a.tbz2", ArchiveKind.TAR),
        ("a.tar.xz", ArchiveKind.TAR),
        ("a.txz", ArchiveKind.TAR),
        ("a.zip", ArchiveKind.ZIP),
        ("a.gz", ArchiveKind.GZIP),
        ("a.txt", None),
        ("tar", None),
        (".gz", None),
        ("a.tar.gz.part", None),
    ],
)
def test_archive_kind_by_suffix(name: str, kind: ArchiveKind | None) -> None:
    assert archive_kind(name) is kind


def test_local_path_and_file_uri() -> None:
    plan = plan_fetch(URI(value="/opt/pkg/tool.tar.gz"))
    assert plan.kind is SourceKind.LOCAL
    assert plan.location == "/opt/pkg/tool.tar.gz"
    assert plan.output == PurePosixPath("tool.tar.gz")
    assert plan.archive is ArchiveKind.TAR
    assert not plan.cache
    assert not plan.executable

    file_plan = plan_fetch(URI(value="file:///opt/my%20dir/run.sh"))
    assert file_plan.kind is SourceKind.LOCAL
    assert file_plan.location == "/opt/my dir/run.sh"
    assert file_plan.output == PurePosixPath("run.sh")


def test_http_uri_name_ignores_the_query() -> None:
    plan = plan_fetch(URI(value="https://example.com/d/pkg.zip?token=abc", cache=True))
    assert plan.kind is SourceKind.HTTP
    assert plan.location == "https://example.com/d/pkg.zip?token=abc"
    assert plan.output == PurePosixPath("pkg.zip")
    assert plan.archive is ArchiveKind.ZIP
    assert plan.cache


def test_output_file_renames_and_may_hold_directories() -> None:
    plan = plan_fetch(URI(value="http://h/x?y", output_file="./bin/tool.tgz"))
    assert plan.output == PurePosixPath("bin/tool.tgz")
    assert plan.archive is ArchiveKind.TAR


def test_executable_disables_extraction_and_extract_false_too() -> None:
    assert plan_fetch(URI(value="/a/b.tar", executable=True)).archive is None
    assert plan_fetch(URI(value="/a/b.tar", extract=False)).archive is None


@pytest.mark.parametrize(
    ("uri", "cause"),
    [
        (URI(value=""), "value is empty"),
        (URI(value="relative/path"), "relative local paths"),
        (URI(value="ftp://h/f"), "unsupported scheme 'ftp'"),
        (URI(value="hdfs://nn/f"), "unsupported scheme 'hdfs'"),
        (URI(value="http:///nohost"), "no host"),
        (URI(value="http://h:99999/x"), "malformed URI: Port out of range"),
        (URI(value="http://[::1/x"), "malformed URI"),
        (URI(value="http://h:0/x"), "port 0"),
        (URI(value="file://remote/etc/x"), "remote host"),
        (URI(value="http://h/"), "cannot derive a file name"),
        (URI(value="/a/b", output_file="/etc/passwd"), "must be a relative path"),
        (URI(value="/a/b", output_file="../escape"), "must not contain '..'"),
        (URI(value="/a/b", output_file="x/../../y"), "must not contain '..'"),
        (URI(value="/a/b", output_file="."), "names no file"),
        (URI(value="/a/b", output_file=""), "output_file is empty"),
    ],
)
def test_invalid_uris_are_refused_naming_the_uri(
    uri: mesos_pb2.CommandInfo.URI, cause: str
) -> None:
    with pytest.raises(FetchError, match="failed to fetch") as info:
        plan_fetch(uri)
    assert cause in info.value.cause
    assert info.value.uri == uri.value
