"""``fetch_uris``: put a task's URIs into its sandbox, one after the other, as Mesos does."""

from __future__ import annotations

import contextlib
import enum
import os
import pwd
import secrets
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from agent.fetcher.cache import CacheLease, FetcherCache, cache_for, cache_key
from agent.fetcher.config import DEFAULT_CONFIG, FetcherConfig
from agent.fetcher.errors import ArchiveError, FetchError
from agent.fetcher.extract import ExtractLimits, extract_archive, is_within
from agent.fetcher.plan import FetchPlan, plan_fetch
from agent.fetcher.threads import run_blocking
from agent.fetcher.transfer import transfer
from protos.v1 import mesos_pb2

EXECUTABLE_MODE = 0o755


class CacheOutcome(enum.Enum):
    """How the cache took part in one fetch."""

    BYPASS = "bypass"
    """Not cached: ``cache`` was false or the agent has no cache directory."""
    MISS = "miss"
    """Downloaded into the cache by this fetch."""
    HIT = "hit"
    """Served from the cache, or from a download another fetch had already started."""


@dataclass(frozen=True)
class FetchedFile:
    """What one URI put into the sandbox."""

    uri: str
    path: Path | None
    """The fetched file in the sandbox; None when a cached archive was only extracted (as in
    Mesos, an archive from the cache is not copied next to its contents)."""
    extracted: tuple[Path, ...]
    """Top-level paths the archive placed in the sandbox; empty when nothing was extracted."""
    cache: CacheOutcome
    size: int
    """Size in bytes of the resource as fetched (the archive, not its contents)."""


def _prepare_parent(uri: str, sandbox: Path, output: Path) -> list[Path]:
    """Create the output's parent directories inside the sandbox; returns those created."""
    missing = []
    parent = output.parent
    while parent != sandbox and not parent.exists():
        missing.append(parent)
        parent = parent.parent
    created: list[Path] = []
    try:
        for directory in reversed(missing):
            directory.mkdir()
            created.append(directory)
        # Links already in the sandbox point inside it (the extractor checks), but make sure.
        if not is_within(os.path.realpath(output.parent), os.path.realpath(sandbox)):
            raise FetchError(uri, f"output path '{output}' resolves outside the sandbox")
    except BaseException:
        _remove_created(created)
        raise
    return created


def _remove_created(directories: list[Path]) -> None:
    for directory in reversed(directories):
        with contextlib.suppress(OSError):
            directory.rmdir()


def _place(temp: Path, dest: Path, executable: bool) -> None:
    if executable:
        os.chmod(temp, EXECUTABLE_MODE)
    os.replace(temp, dest)


def _copy_into_place(source: Path, dest: Path, executable: bool) -> None:
    temp = dest.parent / f".{dest.name}.fetch-{secrets.token_hex(6)}"
    try:
        with open(source, "rb") as src, open(temp, "xb") as out:
            shutil.copyfileobj(src, out, 1024 * 1024)
        _place(temp, dest, executable)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    os.lchown(root, uid, gid)
    for directory, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            os.lchown(os.path.join(directory, name), uid, gid)


class _Fetcher:
    def __init__(
        self, sandbox: Path, cache: FetcherCache | None, user: str | None, config: FetcherConfig
    ) -> None:
        self.sandbox = sandbox
        self.cache = cache
        self.user = user
        self.config = config
        self.limits = ExtractLimits(config.max_extracted_bytes, config.max_archive_entries)

    async def fetch(self, plan: FetchPlan) -> FetchedFile:
        dest = self.sandbox.joinpath(*plan.output.parts)
        created = await run_blocking(_prepare_parent, plan.uri, self.sandbox, dest)
        try:
            if self.cache is not None and plan.cache:
                return await self._through_cache(plan, dest, self.cache)
            return await self._direct(plan, dest)
        except BaseException as error:
            # Synchronous on purpose: this also runs when the fetch is being cancelled.
            _remove_created(created)
            if isinstance(error, ArchiveError):
                raise FetchError(plan.uri, f"cannot extract: {error}") from None
            if isinstance(error, OSError):
                raise FetchError(plan.uri, str(error)) from None
            raise

    async def _direct(self, plan: FetchPlan, dest: Path) -> FetchedFile:
        temp = dest.parent / f".{dest.name}.fetch-{secrets.token_hex(6)}"
        try:
            size = await transfer(plan, temp, self.config)
            await run_blocking(_place, temp, dest, plan.executable)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        extracted: tuple[Path, ...] = ()
        if plan.archive is not None:
            try:
                placed = await run_blocking(
                    extract_archive, dest, plan.archive, self.sandbox, dest.name, self.limits
                )
            except BaseException:
                # A refused archive leaves nothing of this URI behind, the archive included.
                dest.unlink(missing_ok=True)
                raise
            extracted = tuple(placed)
        return FetchedFile(plan.uri, dest, extracted, CacheOutcome.BYPASS, size)

    async def _through_cache(self, plan: FetchPlan, dest: Path, cache: FetcherCache) -> FetchedFile:
        async def fill(temp: Path) -> int:
            return await transfer(plan, temp, self.config)

        lease: CacheLease = await cache.acquire(cache_key(plan.uri, self.user), fill)
        try:
            outcome = CacheOutcome.HIT if lease.hit else CacheOutcome.MISS
            size = (await run_blocking(lease.path.stat)).st_size
            if plan.archive is None:
                await run_blocking(_copy_into_place, lease.path, dest, plan.executable)
                return FetchedFile(plan.uri, dest, (), outcome, size)
            placed = await run_blocking(
                extract_archive, lease.path, plan.archive, self.sandbox, dest.name, self.limits
            )
            return FetchedFile(plan.uri, None, tuple(placed), outcome, size)
        finally:
            cache.release(lease)


def _lookup_user(user: str) -> tuple[int, int] | None:
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


async def fetch_uris(
    uris: Sequence[mesos_pb2.CommandInfo.URI],
    sandbox: Path,
    cache_dir: Path | None,
    user: str | None = None,
    *,
    config: FetcherConfig = DEFAULT_CONFIG,
) -> list[FetchedFile]:
    """Fetch ``uris`` into ``sandbox`` in order; raises :class:`FetchError` on the first failure.

    Every URI is validated before anything is fetched. A URI with ``cache`` set goes through the
    cache under ``cache_dir`` (keyed by user and URI); without a ``cache_dir`` it is fetched
    directly. A failed URI leaves none of its files in the sandbox; URIs fetched before it stay.
    When ``user`` is given it must exist; if the agent runs as root the whole sandbox is then
    handed to that user, as Mesos does before the task starts.
    """
    sandbox = Path(sandbox)
    plans = [plan_fetch(uri) for uri in uris]
    first = plans[0].uri if plans else "(no URIs)"
    if not await run_blocking(sandbox.is_dir):
        raise FetchError(first, f"sandbox '{sandbox}' is not a directory")
    owner = None
    if user is not None:
        owner = await run_blocking(_lookup_user, user)
        if owner is None:
            raise FetchError(first, f"user '{user}' does not exist on this agent")
    cache = None if cache_dir is None else cache_for(cache_dir, config.cache_capacity_bytes)
    fetcher = _Fetcher(sandbox, cache, user, config)
    fetched = [await fetcher.fetch(plan) for plan in plans]
    if owner is not None and os.geteuid() == 0:
        try:
            await run_blocking(_chown_tree, sandbox, *owner)
        except OSError as error:
            raise FetchError(first, f"cannot chown the sandbox to '{user}': {error}") from None
    return fetched
