"""ZooKeeperRegistry: the registry in ZooKeeper, written with compare-and-set.

Layout, under the registry znode (``<zk path>/registry`` by convention)::

    <zk path>/registry                       header line (JSON) + "\\n" + the payload, if it fits
                                             (empty: no registry written yet)
    <zk path>/registry/chunk-<gen>-0000      else the payload in chunks, written before the header
    <zk path>/registry/chunk-<gen>-0001
    ...

The payload is the registry document (:mod:`master.registry.codec`, the file registry's JSON)
compressed with zlib. The header says ``{"format", "version", "encoding": "zlib", "size",
"sha256", "chunks", "generation"}``; ``generation`` is ``<version:010d>-<random hex>`` and names
the chunks of that version. A state whose compressed document does not fit in one znode
(ZooKeeper refuses requests over ``jute.maxbuffer``, 1 MiB by default) is written as chunks
first, each in its own request (a ZooKeeper transaction is one request, so it cannot carry more
than one znode's worth either), and then the header is switched to the new generation with one
compare-and-set: readers see the old version or the new one, never a mix. Old generations are
deleted after the switch; chunks a failed or crashed writer left behind are deleted by the next
load or write once the header's version passes theirs.

**Compare-and-set.** ``load()`` remembers the header's znode version; ``apply()`` writes only if
it is unchanged, and in the same transaction checks that the *fence* znode (the leader's own
candidate znode, see :mod:`protos.leader`) still exists. A master deposed by another, or whose
ZooKeeper session ended, therefore cannot overwrite its successor: its write fails with
:class:`~master.registry.protocol.RegistryConflictError` and changes nothing, and the master
must stop acting as leader (the master's outbox treats any registry error as fatal).

**Warm loads.** ``load()`` keeps the last document it decoded, keyed by the header line (which
names the version, the generation and the checksum): a load that finds the same header answers
a copy of it after one read of the header znode, without reading chunks or decoding. A standby
master loads now and then while following (:mod:`master.runtime.server`), so when elected its
load is one ZooKeeper read, not a decode of the whole registry.

**Batching.** ``apply`` may be called from several threads: calls arriving while a write is in
flight are merged into the next single write (each caller gets the version holding its
operations).

The ZooKeeper client is behind the :class:`ZnodeStore` protocol, so this module stays free of
kazoo (the architecture test holds ``master.registry`` to that): ``KazooZnodeStore`` (in
:mod:`protos.leader`) implements it over a kazoo client, ``MemoryZnodeStore``
(:mod:`master.registry.zk_memory`) in memory for tests.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import threading
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from master.registry.codec import FORMAT, StateCodec
from master.registry.protocol import RegistryConflictError, RegistryError
from master.registry.state import Operation, RegistryState, apply_operations

__all__ = ["DEFAULT_MAX_NODE_BYTES", "Fence", "ZnodeStore", "ZooKeeperRegistry"]

log = logging.getLogger(__name__)

DEFAULT_MAX_NODE_BYTES = 1_000_000
"""Most bytes of data put in one znode: under ZooKeeper's default 1 MiB request limit, with room
for the request's path and framing."""

_CHUNK_RE = re.compile(r"chunk-(\d{10})-([0-9a-f]+)-(\d{4})")
_LOAD_ATTEMPTS = 5


class ZnodeStore(Protocol):
    """ZnodeStore is the handful of znode operations the registry needs.

    Writes never raise for a lost race: ``create`` answers False and ``replace`` None. Any other
    failure (connection lost, timeout) raises, and the write's outcome is then unknown.
    ``fence``, when given, is a znode that must exist for the write to happen (checked in the
    same transaction).
    """

    def read(self, path: str) -> tuple[bytes, int] | None:
        """The znode's data and version, or None if it does not exist."""
        ...

    def children(self, path: str) -> list[str]:
        """The names of the znode's children ([] if it does not exist)."""
        ...

    def create(self, path: str, data: bytes, *, fence: str | None = None) -> bool:
        """Create a persistent znode (and its parents); False if it exists or the fence is gone."""
        ...

    def replace(
        self, path: str, data: bytes, version: int, *, fence: str | None = None
    ) -> int | None:
        """Set the data if at ``version``; the new version, or None (moved, gone, or fenced)."""
        ...

    def delete(self, path: str) -> None:
        """Delete the znode if it exists."""
        ...


Fence = str | Callable[[], str | None] | None
"""A fence znode path, a function giving the current one (None: not leading), or none."""


@dataclass(frozen=True, slots=True)
class _Header:
    version: int
    size: int
    sha256: str
    chunks: int
    generation: str

    def encode(self) -> bytes:
        doc = {
            "format": FORMAT,
            "version": self.version,
            "encoding": "zlib",
            "size": self.size,
            "sha256": self.sha256,
            "chunks": self.chunks,
            "generation": self.generation,
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @staticmethod
    def decode(line: bytes, where: str) -> _Header:
        try:
            doc: Any = json.loads(line)
            if not isinstance(doc, dict) or doc.get("format") != FORMAT:
                raise ValueError(f"not in format {FORMAT!r}")
            if doc.get("encoding") != "zlib":
                raise ValueError(f"unknown encoding {doc.get('encoding')!r}")
            header = _Header(
                int(doc["version"]),
                int(doc["size"]),
                str(doc["sha256"]),
                int(doc["chunks"]),
                str(doc["generation"]),
            )
        except (UnicodeDecodeError, KeyError, TypeError, ValueError) as error:
            raise RegistryError(f"registry {where}: bad header: {error}") from None
        if header.chunks < 0 or header.size < 0:
            raise RegistryError(f"registry {where}: bad header: negative size or chunk count")
        return header

    def chunk_names(self) -> list[str]:
        return [f"chunk-{self.generation}-{i:04d}" for i in range(self.chunks)]


@dataclass
class _Batch:
    operations: list[Operation]
    done: bool = False
    version: int = 0
    error: RegistryError | None = None


class ZooKeeperRegistry:
    """ZooKeeperRegistry keeps the registry under znode ``node`` (see the module doc).

    ``store`` reaches ZooKeeper; ``fence`` is the leader's candidate znode (or a function
    returning it), checked by every write. ``max_node_bytes`` bounds each znode's data;
    ``compression_level`` is zlib's (1 fastest .. 9 smallest).
    """

    def __init__(
        self,
        store: ZnodeStore,
        node: str,
        *,
        fence: Fence = None,
        max_node_bytes: int = DEFAULT_MAX_NODE_BYTES,
        compression_level: int = 6,
    ) -> None:
        if not node.startswith("/") or node.endswith("/"):
            raise ValueError(
                f"registry znode {node!r} must be an absolute path like /emporion/registry"
            )
        if max_node_bytes < 1024:
            raise ValueError(f"max_node_bytes must be at least 1024, got {max_node_bytes}")
        self.store = store
        self.node = node
        self.fence = fence
        self.max_node_bytes = max_node_bytes
        self.compression_level = compression_level
        self._codec = StateCodec()
        self._state: RegistryState | None = None
        self._znode_version: int | None = None  # None: the znode did not exist at load.
        self._header: _Header | None = None
        self._warm: tuple[bytes, RegistryState] | None = None  # Header line, its document.
        self._load_lock = threading.Lock()  # A standby's warm load and an elected one's.
        self._cond = threading.Condition()
        self._queue: list[_Batch] = []
        self._writing = False
        self.writes = 0
        """Successful writes (for tests and metrics)."""
        self.warm_loads = 0
        """Loads answered from the last decoded document (the header had not changed)."""
        self.last_write_bytes = 0
        """Compressed size of the last document written."""

    # -- reading ------------------------------------------------------------------------------

    def load(self) -> RegistryState:
        """The stored state (empty at version 0 if there is none yet); raises RegistryError."""
        try:
            with self._load_lock:
                state, znode_version, header = self._read()
        except RegistryError:
            raise
        except Exception as error:
            raise RegistryError(f"cannot read registry {self.node}: {error!r}") from None
        with self._cond:
            self._state, self._znode_version, self._header = state, znode_version, header
        if header is not None:
            self._collect_garbage(header)
        return state

    def _read(self) -> tuple[RegistryState, int | None, _Header | None]:
        for _ in range(_LOAD_ATTEMPTS):
            got = self.store.read(self.node)
            if got is None:
                return RegistryState(), None, None
            data, znode_version = got
            if not data:  # Created, but never written (see _create_empty).
                return RegistryState(), znode_version, None
            line, newline, inline = data.partition(b"\n")
            if not newline:
                raise RegistryError(f"registry {self.node}: no header line")
            header = _Header.decode(line, self.node)
            warm = self._warm
            if warm is not None and warm[0] == line:
                self.warm_loads += 1
                return warm[1].copy(), znode_version, header
            if header.chunks:
                parts = [self.store.read(f"{self.node}/{name}") for name in header.chunk_names()]
                if any(part is None for part in parts):
                    continue  # A newer version replaced these chunks as we read: read again.
                payload = b"".join(part[0] for part in parts if part is not None)
            else:
                payload = inline
            state = self._decode(header, payload)
            self._warm = (line, state.copy())
            return state, znode_version, header
        raise RegistryError(f"registry {self.node} kept changing while being read")

    def _decode(self, header: _Header, payload: bytes) -> RegistryState:
        if len(payload) != header.size or hashlib.sha256(payload).hexdigest() != header.sha256:
            raise RegistryError(
                f"registry {self.node} version {header.version} is corrupt"
                f" (size or checksum of its {max(header.chunks, 1)} part(s) do not match)"
            )
        try:
            raw = zlib.decompress(payload)
        except zlib.error as error:
            raise RegistryError(f"registry {self.node}: cannot decompress: {error}") from None
        state = self._codec.decode(raw)
        if state.version != header.version:
            raise RegistryError(
                f"registry {self.node}: header says version {header.version},"
                f" document {state.version}"
            )
        return state

    # -- writing ------------------------------------------------------------------------------

    def apply(self, operations: Sequence[Operation]) -> int:
        """Apply ``operations`` with one compare-and-set write (merged with concurrent calls);
        the new version. Raises RegistryConflictError if another master wrote since, or the
        fence is gone; RegistryError on any other failure. Either way nothing is changed."""
        batch = _Batch(list(operations))
        with self._cond:
            self._queue.append(batch)
            while not batch.done:
                if self._writing:
                    self._cond.wait()
                    continue
                batches, self._queue = self._queue, []
                self._writing = True
                self._cond.release()
                try:
                    version, error = self._write_merged(batches)
                finally:
                    self._cond.acquire()
                    self._writing = False
                for each in batches:
                    each.done, each.version, each.error = True, version, error
                self._cond.notify_all()
        if batch.error is not None:
            raise batch.error
        return batch.version

    def _write_merged(self, batches: list[_Batch]) -> tuple[int, RegistryError | None]:
        operations = [op for batch in batches for op in batch.operations]
        try:
            return self._write(operations), None
        except RegistryError as error:
            return 0, error
        except Exception as error:
            return 0, RegistryError(
                f"registry {self.node}: write failed, its outcome is unknown: {error!r}"
            )

    def _fence_path(self) -> str | None:
        fence = self.fence
        if callable(fence):
            path = fence()
            if path is None:
                raise RegistryConflictError(
                    f"registry {self.node}: this master is not leading (no candidate znode);"
                    " it may not write"
                )
            return path
        return fence

    def _write(self, operations: list[Operation]) -> int:
        if self._state is None:
            self.load()
        current, znode_version, old = self._state, self._znode_version, self._header
        assert current is not None
        fence = self._fence_path()
        new = apply_operations(current, operations)
        payload = zlib.compress(self._codec.encode(new), self.compression_level)
        generation = f"{new.version:010d}-{secrets.token_hex(4)}"
        header = _Header(
            new.version, len(payload), hashlib.sha256(payload).hexdigest(), 0, generation
        )
        chunk_size = self.max_node_bytes
        if len(header.encode()) + 1 + len(payload) <= chunk_size:
            data = header.encode() + b"\n" + payload
        else:
            count = -(-len(payload) // chunk_size)
            header = _Header(header.version, header.size, header.sha256, count, generation)
            data = header.encode() + b"\n"
            self._write_chunks(header, payload, chunk_size)
        if znode_version is None:
            znode_version = self._create_empty(fence)
        written = None
        if znode_version is not None:
            written = self.store.replace(self.node, data, znode_version, fence=fence)
        if written is None:
            self._delete_chunks(header)
            raise RegistryConflictError(
                f"registry {self.node}: another master wrote it since version {current.version}"
                f"{f', or candidate {fence} is gone' if fence else ''}; this master is deposed"
                " and must stop leading"
            )
        with self._cond:
            self._state, self._znode_version, self._header = new, written, header
        self.writes += 1
        self.last_write_bytes = len(payload)
        if old is not None and old.chunks:
            self._delete_chunks(old)
        return new.version

    def _create_empty(self, fence: str | None) -> int | None:
        """Before the first write: the version of the (new or found) empty registry znode, or
        None if someone wrote a registry there since our load. (Writing chunks creates their
        parent empty, so the first write cannot simply create the znode with its data.)"""
        self.store.create(self.node, b"", fence=fence)
        got = self.store.read(self.node)
        if got is None or got[0]:
            return None
        return got[1]

    def _write_chunks(self, header: _Header, payload: bytes, chunk_size: int) -> None:
        for index, name in enumerate(header.chunk_names()):
            part = payload[index * chunk_size : (index + 1) * chunk_size]
            if not self.store.create(f"{self.node}/{name}", part):
                self._delete_chunks(header)
                raise RegistryError(f"registry {self.node}: chunk {name} exists already")

    def _delete_chunks(self, header: _Header) -> None:
        for name in header.chunk_names():
            try:
                self.store.delete(f"{self.node}/{name}")
            except Exception as error:  # Garbage at worst: the next load collects it.
                log.warning("registry %s: cannot delete chunk %s: %r", self.node, name, error)

    def _collect_garbage(self, header: _Header) -> None:
        """Delete chunks of versions up to the header's that it does not use: left by writers
        that lost the compare-and-set or crashed. Newer ones may be a write in progress."""
        try:
            names = self.store.children(self.node)
        except Exception as error:
            log.warning("registry %s: cannot list chunks: %r", self.node, error)
            return
        live = set(header.chunk_names())
        for name in names:
            match = _CHUNK_RE.fullmatch(name)
            if match is None or name in live or int(match.group(1)) > header.version:
                continue
            try:
                self.store.delete(f"{self.node}/{name}")
            except Exception as error:
                log.warning("registry %s: cannot delete stale chunk %s: %r", self.node, name, error)
