"""The fetcher's content cache: one file per (user, URI), least recently used out first.

:class:`CacheIndex` is the pure bookkeeping (sizes, pins, capacity, LRU order);
:class:`FetcherCache` wraps it with the files under the cache directory and shares one download
between concurrent fetches of the same key. Entries in use (pinned) are never evicted. A resource
larger than the whole cache, or one that does not fit because everything else is pinned, is
still fetched once for its waiters and deleted when the last of them is done with it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

_KEY = re.compile(r"[0-9a-f]{64}")


def cache_key(uri: str, user: str | None) -> str:
    """The cache file name for ``uri`` fetched for ``user`` (entries are per user, as in Mesos)."""
    return hashlib.sha256(f"{user or ''}\n{uri}".encode()).hexdigest()


@dataclass
class _Entry:
    size: int
    pins: int = 0


class CacheIndex:
    """LRU bookkeeping of cache entries under a byte capacity; no I/O."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def used(self) -> int:
        """Bytes held by all entries."""
        return sum(entry.size for entry in self._entries.values())

    def keys(self) -> list[str]:
        """Keys from least to most recently used."""
        return list(self._entries)

    def pins(self, key: str) -> int:
        """How many users currently hold ``key`` (0 when absent)."""
        entry = self._entries.get(key)
        return entry.pins if entry else 0

    def pin(self, key: str) -> bool:
        """Mark ``key`` used and in use; False when it is not cached."""
        entry = self._entries.get(key)
        if entry is None:
            return False
        entry.pins += 1
        self._entries.move_to_end(key)
        return True

    def release(self, key: str) -> None:
        """One user of ``key`` is done with it."""
        entry = self._entries[key]
        if entry.pins <= 0:
            raise ValueError(f"cache entry {key} released more often than pinned")
        entry.pins -= 1

    def admit(self, key: str, size: int) -> tuple[bool, list[str]]:
        """Try to add ``key`` of ``size`` bytes; returns (admitted, keys evicted to make room).

        Evicts unpinned entries from the least recently used end, only if that frees enough; a
        refused entry evicts nothing.
        """
        if key in self._entries:
            raise ValueError(f"cache entry {key} is already present")
        if size < 0:
            raise ValueError(f"size must be >= 0, got {size}")
        room = self.capacity - self.used
        victims: list[str] = []
        for candidate, entry in self._entries.items():
            if room >= size:
                break
            if entry.pins == 0:
                victims.append(candidate)
                room += entry.size
        if room < size:
            return False, []
        for victim in victims:
            del self._entries[victim]
        self._entries[key] = _Entry(size)
        return True, victims

    def validate(self) -> None:
        """Invariants: pins and sizes are never negative.

        ``used`` may exceed ``capacity`` only after the capacity was lowered; the next
        :meth:`admit` evicts back under it.
        """
        for key, entry in self._entries.items():
            assert entry.pins >= 0, f"{key} has {entry.pins} pins"
            assert entry.size >= 0, f"{key} has size {entry.size}"


@dataclass(frozen=True)
class CacheLease:
    """A file a fetch may read until it calls :meth:`FetcherCache.release`."""

    key: str
    path: Path
    hit: bool
    """True when no download was started for this lease (cached, or joined one in flight)."""
    transient: bool
    """True when the file could not be kept in the cache and goes away after release."""


@dataclass
class _Inflight:
    task: asyncio.Task[tuple[Path, bool]]
    waiters: int = 0


@dataclass
class _Transient:
    holders: int


def _scan(directory: Path) -> list[tuple[float, str, int]]:
    """Existing entries as (mtime, key, size), oldest first; removes leftover partial files."""
    directory.mkdir(parents=True, exist_ok=True)
    found = []
    with os.scandir(directory) as scan:
        entries = list(scan)
    for entry in entries:
        if ".part-" in entry.name:
            os.unlink(entry.path)
        elif _KEY.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
            st = entry.stat(follow_symlinks=False)
            found.append((st.st_mtime, entry.name, st.st_size))
    return sorted(found)


def _unlink_all(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


@dataclass
class FetcherCache:
    """A cache directory shared by all fetches of one agent process."""

    directory: Path
    index: CacheIndex
    _loaded: bool = False
    _inflight: dict[str, _Inflight] = field(default_factory=dict)
    _transient: dict[Path, _Transient] = field(default_factory=dict)

    def path_for(self, key: str) -> Path:
        """Where the entry ``key`` lives once cached."""
        return self.directory / key

    def loaded(self) -> bool:
        """Whether entries left by an earlier run have been adopted."""
        return self._loaded

    async def _load(self) -> None:
        """Adopt entries left by an earlier run (oldest first), once."""
        if self._loaded:
            return
        found = await asyncio.to_thread(_scan, self.directory)
        if self.loaded():  # another fetch finished loading while this one scanned
            return
        stale = []
        for _, key, size in found:
            if key in self.index:
                continue
            admitted, evicted = self.index.admit(key, size)
            stale += [self.path_for(k) for k in evicted]
            if not admitted:
                stale.append(self.path_for(key))
        self._loaded = True
        await asyncio.to_thread(_unlink_all, stale)

    async def acquire(self, key: str, fill: Callable[[Path], Awaitable[int]]) -> CacheLease:
        """A lease on the entry ``key``, calling ``fill(temp_path) -> size`` on a miss.

        Concurrent acquires of one key share a single ``fill``; if it fails, all of them get its
        exception. Every successful acquire must be paired with :meth:`release`.
        """
        await self._load()
        if self.index.pin(key):
            return CacheLease(key, self.path_for(key), hit=True, transient=False)
        inflight = self._inflight.get(key)
        first = inflight is None
        if inflight is None:
            inflight = _Inflight(asyncio.ensure_future(self._fill(key, fill)))
            # Retrieve the exception even when every waiter has gone away.
            inflight.task.add_done_callback(lambda t: t.cancelled() or t.exception())
            self._inflight[key] = inflight
        inflight.waiters += 1
        task = inflight.task
        try:
            path, cached = await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done() and not task.cancelled() and task.exception() is None:
                # The fill finished and counted this waiter before it was cancelled.
                done_path, done_cached = task.result()
                self.release(CacheLease(key, done_path, not first, not done_cached))
            else:
                inflight.waiters -= 1
            raise
        return CacheLease(key, path, hit=not first, transient=not cached)

    async def _fill(self, key: str, fill: Callable[[Path], Awaitable[int]]) -> tuple[Path, bool]:
        temp = self.directory / f"{key}.part-{secrets.token_hex(6)}"
        try:
            size = await fill(temp)
        except BaseException:
            self._inflight.pop(key, None)
            temp.unlink(missing_ok=True)
            raise
        # From here to the return nothing awaits: the waiters' pins are taken atomically with
        # the admission, so no other fetch can evict the entry before its waiters read it.
        waiters = self._inflight.pop(key).waiters
        admitted, evicted = self.index.admit(key, size)
        if admitted:
            final = self.path_for(key)
            os.replace(temp, final)
            for _ in range(waiters):
                self.index.pin(key)
            result = (final, True)
        else:
            self._transient[temp] = _Transient(waiters)
            if waiters == 0:
                self._drop_transient(temp)
            result = (temp, False)
        if evicted:
            await asyncio.to_thread(_unlink_all, [self.path_for(k) for k in evicted])
        return result

    def _drop_transient(self, path: Path) -> None:
        del self._transient[path]
        path.unlink(missing_ok=True)

    def release(self, lease: CacheLease) -> None:
        """The holder of ``lease`` no longer reads its file."""
        if lease.transient:
            holder = self._transient[lease.path]
            holder.holders -= 1
            if holder.holders <= 0:
                self._drop_transient(lease.path)
        else:
            self.index.release(lease.key)


_CACHES: dict[str, FetcherCache] = {}


def cache_for(directory: Path, capacity: int) -> FetcherCache:
    """The process-wide cache object for ``directory`` (created on first use)."""
    name = os.path.abspath(directory)
    cache = _CACHES.get(name)
    if cache is None:
        cache = _CACHES[name] = FetcherCache(Path(name), CacheIndex(capacity))
    cache.index.capacity = capacity
    return cache
