"""fetch_uris against a real local HTTP server and real files: copies, downloads, archives,
the cache, and failures that leave nothing behind."""

from __future__ import annotations

import asyncio
import io
import os
import pwd
import stat
import tarfile
import threading
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from agent.fetcher import CacheOutcome, FetchedFile, FetcherConfig, FetchError, fetch_uris
from agent.fetcher.cache import cache_for, cache_key
from protos.v1 import mesos_pb2
from tests.integration.agent_parts.servers import LocalServer

URI = mesos_pb2.CommandInfo.URI
CONFIG = FetcherConfig(trust_env=False, stall_timeout_s=0.5, connect_timeout_s=5.0)


def tar_gz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name.endswith(".sh") else 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def fetch(
    uris: Sequence[mesos_pb2.CommandInfo.URI],
    sandbox: Path,
    cache_dir: Path | None = None,
    user: str | None = None,
    config: FetcherConfig = CONFIG,
) -> list[FetchedFile]:
    return asyncio.run(fetch_uris(uris, sandbox, cache_dir, user, config=config))


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    box = tmp_path / "sandbox"
    box.mkdir()
    return box


def test_http_download_with_output_file_and_executable(
    http_server: LocalServer, sandbox: Path
) -> None:
    http_server.add_bytes("/files/readme.txt", b"hello")
    http_server.add_bytes("/tools/run", b"#!/bin/sh\necho ok\n")
    http_server.add_bytes("/tools/pkg.tar", b"not extracted when executable")
    fetched = fetch(
        [
            URI(value=http_server.url("/files/readme.txt?sig=1")),
            URI(value=http_server.url("/tools/run"), executable=True, output_file="bin/run"),
            URI(value=http_server.url("/tools/pkg.tar"), executable=True),
        ],
        sandbox,
    )
    assert [f.path for f in fetched] == [
        sandbox / "readme.txt",
        sandbox / "bin" / "run",
        sandbox / "pkg.tar",
    ]
    assert fetched[0] == FetchedFile(
        http_server.url("/files/readme.txt?sig=1"),
        sandbox / "readme.txt",
        (),
        CacheOutcome.BYPASS,
        5,
    )
    assert (sandbox / "readme.txt").read_bytes() == b"hello"
    assert not os.access(sandbox / "readme.txt", os.X_OK)
    assert stat.S_IMODE((sandbox / "bin" / "run").stat().st_mode) == 0o755
    assert (sandbox / "pkg.tar").read_bytes() == b"not extracted when executable"
    assert listing(sandbox) == ["bin", "bin/run", "pkg.tar", "readme.txt"]


def test_archives_are_extracted_next_to_the_archive(
    http_server: LocalServer, sandbox: Path, tmp_path: Path
) -> None:
    http_server.add_bytes("/app.tgz", tar_gz({"app/start.sh": b"run", "app/conf": b"c"}))
    local_zip = tmp_path / "data.zip"
    local_zip.write_bytes(zip_bytes({"data/a.csv": b"1,2"}))
    fetched = fetch(
        [
            URI(value=http_server.url("/app.tgz")),
            URI(value=f"file://{local_zip}"),
            URI(value=str(local_zip), extract=False, output_file="copy.zip"),
        ],
        sandbox,
    )
    assert fetched[0].extracted == (sandbox / "app",)
    assert fetched[1].extracted == (sandbox / "data",)
    assert fetched[2].extracted == ()
    assert listing(sandbox) == [
        "app",
        "app.tgz",
        "app/conf",
        "app/start.sh",
        "copy.zip",
        "data",
        "data.zip",
        "data/a.csv",
    ]
    assert os.access(sandbox / "app" / "start.sh", os.X_OK)


def test_redirects_are_followed_up_to_the_limit(http_server: LocalServer, sandbox: Path) -> None:
    http_server.add_bytes("/real", b"content")
    http_server.add_status("/moved", 302, location="/real")
    http_server.add_status("/loop", 302, location="/loop")
    fetch([URI(value=http_server.url("/moved"), output_file="f")], sandbox)
    assert (sandbox / "f").read_bytes() == b"content"
    with pytest.raises(FetchError, match="more than 10 redirects"):
        fetch([URI(value=http_server.url("/loop"), output_file="g")], sandbox)
    assert listing(sandbox) == ["f"]


@pytest.mark.parametrize(
    ("route", "config", "cause"),
    [
        ("/missing", CONFIG, "HTTP 404 Not Found"),
        ("/error", CONFIG, "HTTP 500"),
        ("/stall", CONFIG, "stalled: no data for 0.5s"),
        ("/big", FetcherConfig(trust_env=False, max_download_bytes=1000), "Content-Length 5000"),
        ("/unsized", FetcherConfig(trust_env=False, max_download_bytes=1000), "exceeds the 1000"),
        ("/hang", FetcherConfig(trust_env=False, total_timeout_s=0.3), "longer than 0.3s"),
    ],
)
def test_failed_downloads_leave_nothing(
    http_server: LocalServer, sandbox: Path, route: str, config: FetcherConfig, cause: str
) -> None:
    http_server.add_status("/error", 500)
    http_server.add_stall("/stall")
    http_server.add_bytes("/big", b"x" * 5000)
    http_server.add_unsized("/unsized", b"y" * 5000)
    http_server.add_hang("/hang")
    uri = http_server.url(route)
    with pytest.raises(FetchError) as info:
        fetch([URI(value=uri, output_file="deep/dir/file.tgz")], sandbox, config=config)
    assert info.value.uri == uri
    assert cause in str(info.value)
    assert str(info.value).startswith(f"failed to fetch '{uri}': ")
    assert listing(sandbox) == []


def test_connection_refused(closed_port: int, sandbox: Path) -> None:
    with pytest.raises(FetchError, match="ConnectError"):
        fetch([URI(value=f"http://127.0.0.1:{closed_port}/x")], sandbox)
    assert listing(sandbox) == []


def test_a_malicious_archive_leaves_nothing_inside_or_outside(
    http_server: LocalServer, sandbox: Path, tmp_path: Path
) -> None:
    http_server.add_bytes("/evil.tar.gz", tar_gz({"fine.txt": b"ok", "../evil": b"pwned"}))
    before = listing(tmp_path)
    with pytest.raises(FetchError, match=r"cannot extract: entry '\.\./evil' escapes"):
        fetch([URI(value=http_server.url("/evil.tar.gz"))], sandbox)
    assert listing(sandbox) == []
    assert listing(tmp_path) == before


def test_local_source_errors(sandbox: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for value, cause in [
        (str(tmp_path / "absent"), "does not exist"),
        (str(tmp_path), "is a directory"),
        (str(fifo), "not a regular file"),
    ]:
        with pytest.raises(FetchError, match=cause):
            fetch([URI(value=value, output_file="x")], sandbox)
    assert listing(sandbox) == []


def test_every_uri_is_validated_before_anything_is_fetched(
    http_server: LocalServer, sandbox: Path
) -> None:
    http_server.add_bytes("/a", b"a")
    with pytest.raises(FetchError, match="unsupported scheme 'ftp'"):
        fetch([URI(value=http_server.url("/a")), URI(value="ftp://h/b")], sandbox)
    assert http_server.hits["/a"] == 0
    assert listing(sandbox) == []


def test_earlier_uris_stay_when_a_later_one_fails(http_server: LocalServer, sandbox: Path) -> None:
    http_server.add_bytes("/a", b"a")
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch([URI(value=http_server.url("/a")), URI(value=http_server.url("/b"))], sandbox)
    assert listing(sandbox) == ["a"]


def test_cache_miss_then_hit_and_cached_archives_are_only_extracted(
    http_server: LocalServer, tmp_path: Path
) -> None:
    http_server.add_bytes("/tool.tgz", tar_gz({"tool/bin.sh": b"echo"}))
    http_server.add_bytes("/plain", b"plain")
    cache_dir = tmp_path / "cache"
    uris = [
        URI(value=http_server.url("/tool.tgz"), cache=True),
        URI(value=http_server.url("/plain"), cache=True, executable=True),
    ]
    first = tmp_path / "one"
    second = tmp_path / "two"
    first.mkdir()
    second.mkdir()
    got = fetch(uris, first, cache_dir)
    assert [f.cache for f in got] == [CacheOutcome.MISS, CacheOutcome.MISS]
    again = fetch(uris, second, cache_dir)
    assert [f.cache for f in again] == [CacheOutcome.HIT, CacheOutcome.HIT]
    assert http_server.hits["/tool.tgz"] == 1
    assert http_server.hits["/plain"] == 1
    for box in (first, second):
        assert listing(box) == ["plain", "tool", "tool/bin.sh"]
        assert stat.S_IMODE((box / "plain").stat().st_mode) == 0o755
    assert again[0].path is None
    assert again[0].extracted == (second / "tool",)
    # The cache file itself is not made executable.
    assert not os.access(cache_dir / cache_key(http_server.url("/plain"), None), os.X_OK)
    # Without a cache dir, cache=True falls back to a direct fetch.
    third = tmp_path / "three"
    third.mkdir()
    assert fetch(uris[1:], third)[0].cache is CacheOutcome.BYPASS


def test_cache_entries_are_per_user(http_server: LocalServer, tmp_path: Path) -> None:
    http_server.add_bytes("/f", b"f")
    user = pwd.getpwuid(os.getuid()).pw_name
    cache_dir = tmp_path / "cache"
    box = tmp_path / "box"
    box.mkdir()
    uri = URI(value=http_server.url("/f"), cache=True)
    assert fetch([uri], box, cache_dir)[0].cache is CacheOutcome.MISS
    assert fetch([uri], box, cache_dir, user=user)[0].cache is CacheOutcome.MISS
    assert fetch([uri], box, cache_dir, user=user)[0].cache is CacheOutcome.HIT
    assert http_server.hits["/f"] == 2


def test_cache_evicts_least_recently_used_entries(http_server: LocalServer, tmp_path: Path) -> None:
    for name in "abc":
        http_server.add_bytes(f"/{name}", name.encode() * 1000)
    cache_dir = tmp_path / "cache"
    config = FetcherConfig(trust_env=False, cache_capacity_bytes=2500)
    box = tmp_path / "box"
    box.mkdir()

    def get(name: str) -> CacheOutcome:
        uri = URI(value=http_server.url(f"/{name}"), cache=True)
        return fetch([uri], box, cache_dir, config=config)[0].cache

    assert [get("a"), get("b"), get("a")] == [
        CacheOutcome.MISS,
        CacheOutcome.MISS,
        CacheOutcome.HIT,
    ]
    assert get("c") is CacheOutcome.MISS  # evicts b, the least recently used
    assert get("a") is CacheOutcome.HIT
    assert get("b") is CacheOutcome.MISS
    assert http_server.hits == {"/a": 1, "/b": 2, "/c": 1}
    assert len(os.listdir(cache_dir)) == 2
    cache_for(cache_dir, 2500).index.validate()


def test_a_resource_larger_than_the_cache_is_fetched_but_not_kept(
    http_server: LocalServer, tmp_path: Path
) -> None:
    http_server.add_bytes("/huge", b"h" * 3000)
    cache_dir = tmp_path / "cache"
    box = tmp_path / "box"
    box.mkdir()
    config = FetcherConfig(trust_env=False, cache_capacity_bytes=1000)
    got = fetch([URI(value=http_server.url("/huge"), cache=True)], box, cache_dir, config=config)
    assert got[0].cache is CacheOutcome.MISS
    assert (box / "huge").read_bytes() == b"h" * 3000
    assert os.listdir(cache_dir) == []


def test_concurrent_fetches_of_one_uri_share_a_download(
    http_server: LocalServer, tmp_path: Path
) -> None:
    gate = threading.Event()
    http_server.add_bytes("/slow.tgz", tar_gz({"x/y": b"y"}), gate=gate)
    cache_dir = tmp_path / "cache"
    boxes = [tmp_path / f"box{i}" for i in range(3)]
    for box in boxes:
        box.mkdir()
    uri = URI(value=http_server.url("/slow.tgz"), cache=True)
    key = cache_key(uri.value, None)

    async def scenario() -> list[list[FetchedFile]]:
        cache = cache_for(cache_dir, CONFIG.cache_capacity_bytes)
        tasks = [
            asyncio.ensure_future(fetch_uris([uri], b, cache_dir, config=CONFIG)) for b in boxes
        ]
        # Open the gate only once all three wait on the one download.
        async with asyncio.timeout(30):
            while key not in cache._inflight or cache._inflight[key].waiters < len(boxes):
                await asyncio.sleep(0.01)
        gate.set()
        return list(await asyncio.gather(*tasks))

    results = asyncio.run(scenario())
    assert http_server.hits["/slow.tgz"] == 1
    outcomes = sorted(r[0].cache.value for r in results)
    assert outcomes == ["hit", "hit", "miss"]
    for box in boxes:
        assert listing(box) == ["x", "x/y"]
    index = cache_for(cache_dir, CONFIG.cache_capacity_bytes).index
    assert index.pins(key) == 0
    index.validate()


def test_a_failed_cached_download_is_not_cached(http_server: LocalServer, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    box = tmp_path / "box"
    box.mkdir()
    uri = URI(value=http_server.url("/later"), cache=True)
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch([uri], box, cache_dir)
    assert os.listdir(cache_dir) == []
    http_server.add_bytes("/later", b"now")
    assert fetch([uri], box, cache_dir)[0].cache is CacheOutcome.MISS
    assert http_server.hits["/later"] == 2


def test_cache_survives_a_restart_and_drops_partial_files(
    http_server: LocalServer, tmp_path: Path
) -> None:
    http_server.add_bytes("/kept", b"kept")
    cache_dir = tmp_path / "cache"
    box = tmp_path / "box"
    box.mkdir()
    uri = URI(value=http_server.url("/kept"), cache=True)
    fetch([uri], box, cache_dir)
    (cache_dir / f"{'0' * 64}.part-abc").write_bytes(b"half")
    # A new process: forget the in-memory cache object.
    from agent.fetcher import cache as cache_module

    cache_module._CACHES.clear()
    assert fetch([uri], box, cache_dir)[0].cache is CacheOutcome.HIT
    assert os.listdir(cache_dir) == [cache_key(uri.value, None)]


def test_a_cancelled_fetch_leaves_no_temporary_file(
    http_server: LocalServer, sandbox: Path
) -> None:
    http_server.add_stall("/stall")
    config = FetcherConfig(trust_env=False, stall_timeout_s=30)

    async def scenario() -> None:
        task = asyncio.ensure_future(
            fetch_uris([URI(value=http_server.url("/stall"))], sandbox, None, config=config)
        )
        async with asyncio.timeout(30):
            while not any(sandbox.iterdir()):  # the temporary file appears
                await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert listing(sandbox) == []


def test_unknown_user_is_refused(sandbox: Path, tmp_path: Path) -> None:
    source = tmp_path / "f"
    source.write_text("f")
    with pytest.raises(FetchError, match="user 'no-such-user-xyz' does not exist"):
        fetch([URI(value=str(source))], sandbox, user="no-such-user-xyz")
    assert listing(sandbox) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_the_sandbox_is_handed_to_the_user_when_root(sandbox: Path, tmp_path: Path) -> None:
    source = tmp_path / "pkg.tar.gz"
    source.write_bytes(tar_gz({"d/f": b"f"}))
    nobody = pwd.getpwnam("nobody")
    fetch([URI(value=str(source))], sandbox, user="nobody")
    for path in [sandbox, *sandbox.rglob("*")]:
        assert (path.lstat().st_uid, path.lstat().st_gid) == (nobody.pw_uid, nobody.pw_gid)
