"""ZooKeeperRegistry: the registry in ZooKeeper, a snapshot and the deltas written since.

Layout, under the registry znode (``<zk path>/registry`` by convention)::

    <zk path>/registry                       header line (JSON) + "\\n" + the snapshot, if it fits
                                             (empty: no registry written yet)
    <zk path>/registry/chunk-<gen>-0000      else the snapshot in chunks, written before the header
    <zk path>/registry/chunk-<gen>-0001
    ...
    <zk path>/registry/delta-<version>       the operations of each write since the snapshot

The snapshot is the registry document (:mod:`master.registry.codec`, the file registry's JSON)
compressed with zlib; the header (:class:`~master.registry.zk_layout.Header`) says its
``version``, size, checksum and chunks. A delta is one write's operations, as a line of the file
registry's journal (:mod:`master.registry.journal`) compressed with zlib, in the znode named
after the version that write made. The registry at version V is the snapshot with the deltas
after it, up to V, applied in order.

**Writes proportional to the change.** A write creates one delta znode holding its operations:
one agent registering writes a few hundred bytes however many agents there are. The header is
not touched. Now and then a write is a *compaction* instead: the whole state as a new snapshot
(chunks first, each in its own request, then the header switched with one compare-and-set),
after which the deltas it covers are deleted. It happens when the deltas since the snapshot
would outgrow it (``max(snapshot bytes, 64 KiB)``) or number more than ``max_deltas``, or when
one write's delta would not fit in a znode; so writes cost at most about twice what they
change, amortized, and a load reads at most about twice the snapshot. ``max_deltas=0`` makes
every write a compaction (the single-document registry of before).

**Compare-and-set.** Every write is one ZooKeeper transaction that creates the delta znode of
the version it makes (a compaction creates it empty, a marker) and checks that the fence znode
(the leader's own candidate znode, see :mod:`protos.leader`) still exists; a delta write also
checks that the header is at the version it loaded, a compaction sets the header at that
version. Two writers from the same version therefore collide on the delta's name, and a writer
behind a compaction on the header's version: a master deposed by another, or whose ZooKeeper
session ended, cannot overwrite its successor. Its write fails with
:class:`~master.registry.protocol.RegistryConflictError` and changes nothing, and the master must
stop acting as leader (the master's outbox treats any registry error as fatal).

**Reads.** ``load()`` reads the header, the snapshot, lists the children, reads the deltas after
the snapshot in order, then reads the header again: if it moved (a compaction meanwhile, whose
clean-up may have deleted deltas being read), it reads again. What it answers is therefore
exactly a version that was committed. Deltas at or below the snapshot's version, and chunks of
no current snapshot up to the latest version, are garbage (left by a writer that lost the
compare-and-set, crashed mid-compaction, or was stopped before its clean-up) and are deleted by
the next load or compaction.

**Migration.** A registry written before deltas existed is a snapshot with no deltas: it loads
as it is, and the first write after adds the first delta. (The other way round, a master
without delta support would read only the snapshot: do not downgrade once deltas exist.)

**Warm loads.** ``load()`` keeps the last state it read, keyed by the header line: a load that
finds the same header reads only the deltas written since (``delta_loads``), or nothing at all
if there are none (``warm_loads``). A standby master loads now and then while following
(:mod:`master.runtime.server`), so when elected its load is a few ZooKeeper reads.

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
import logging
import secrets
import threading
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from master.registry.codec import StateCodec
from master.registry.protocol import RegistryConflictError, RegistryError
from master.registry.state import Operation, RegistryState, apply_in_place, apply_operations
from master.registry.zk_layout import (
    CHUNK_RE,
    DELTA_RE,
    Header,
    decode_delta,
    delta_name,
    encode_delta,
)

__all__ = [
    "DEFAULT_MAX_DELTAS",
    "DEFAULT_MAX_NODE_BYTES",
    "Fence",
    "ZnodeStore",
    "ZooKeeperRegistry",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_NODE_BYTES = 1_000_000
"""Most bytes of data put in one znode: under ZooKeeper's default 1 MiB request limit, with room
for the request's path and framing."""

DEFAULT_MAX_DELTAS = 1000
"""Most deltas after a snapshot before a write compacts them (each is one read at a cold load)."""

MIN_DELTA_BYTES = 64 * 1024
"""Deltas may add up to the snapshot's size, or this much if the snapshot is smaller."""

_LOAD_ATTEMPTS = 5


class ZnodeStore(Protocol):
    """ZnodeStore is the handful of znode operations the registry needs.

    Writes never raise for a lost race: ``create`` answers False and ``commit`` None. Any other
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

    def commit(
        self,
        *,
        checks: Sequence[tuple[str, int]] = (),
        creates: Sequence[tuple[str, bytes]] = (),
        sets: Sequence[tuple[str, bytes, int]] = (),
        fence: str | None = None,
    ) -> list[int] | None:
        """In one transaction: check that each ``(path, version)`` of ``checks`` is at that
        version, create each ``(path, data)`` of ``creates`` (their parents must exist), set
        each ``(path, data, version)`` of ``sets`` if at that version. The new versions of
        ``sets``, or None if any part failed (then nothing was done)."""
        ...

    def delete(self, path: str) -> None:
        """Delete the znode if it exists."""
        ...


Fence = str | Callable[[], str | None] | None
"""A fence znode path, a function giving the current one (None: not leading), or none."""


@dataclass
class _Batch:
    operations: list[Operation]
    done: bool = False
    version: int = 0
    error: RegistryError | None = None


@dataclass
class _Loaded:
    """What a read found: the state, and where the next write must start from."""

    state: RegistryState
    znode_version: int | None  # The header znode's; None: it did not exist.
    header: Header | None  # None: no snapshot written yet.
    deltas: list[int]  # Sizes of the deltas after the snapshot, in order.


class ZooKeeperRegistry:
    """ZooKeeperRegistry keeps the registry under znode ``node`` (see the module doc).

    ``store`` reaches ZooKeeper; ``fence`` is the leader's candidate znode (or a function
    returning it), checked by every write. ``max_node_bytes`` bounds each znode's data;
    ``compression_level`` is zlib's (1 fastest .. 9 smallest) for snapshots; ``max_deltas``
    bounds the deltas after a snapshot (0: every write is a snapshot).
    """

    def __init__(
        self,
        store: ZnodeStore,
        node: str,
        *,
        fence: Fence = None,
        max_node_bytes: int = DEFAULT_MAX_NODE_BYTES,
        compression_level: int = 6,
        max_deltas: int = DEFAULT_MAX_DELTAS,
    ) -> None:
        if not node.startswith("/") or node.endswith("/"):
            raise ValueError(
                f"registry znode {node!r} must be an absolute path like /emporion/registry"
            )
        if max_node_bytes < 1024:
            raise ValueError(f"max_node_bytes must be at least 1024, got {max_node_bytes}")
        if max_deltas < 0:
            raise ValueError(f"max_deltas must be at least 0, got {max_deltas}")
        self.store = store
        self.node = node
        self.fence = fence
        self.max_node_bytes = max_node_bytes
        self.compression_level = compression_level
        self.max_deltas = max_deltas
        self._codec = StateCodec()
        self._at: _Loaded | None = None  # The writer's view: its own state, never handed out.
        self._warm: tuple[bytes, _Loaded] | None = None  # Header line, what was read with it.
        self._load_lock = threading.Lock()  # A standby's warm load and an elected one's.
        self._cond = threading.Condition()
        self._queue: list[_Batch] = []
        self._writing = False
        self.writes = 0
        """Successful writes (for tests and metrics)."""
        self.compactions = 0
        """Successful writes that were a new snapshot."""
        self.warm_loads = 0
        """Loads answered from the last state read (nothing written since)."""
        self.delta_loads = 0
        """Loads answered from the last state read and the deltas written since."""
        self.last_write_bytes = 0
        """Compressed size of the last delta or snapshot written."""

    # -- reading ------------------------------------------------------------------------------

    def load(self) -> RegistryState:
        """The stored state (empty at version 0 if there is none yet); raises RegistryError."""
        try:
            with self._load_lock:
                loaded = self._read()
        except RegistryError:
            raise
        except Exception as error:
            raise RegistryError(f"cannot read registry {self.node}: {error!r}") from None
        mine = _Loaded(loaded.state.copy(), loaded.znode_version, loaded.header, loaded.deltas)
        with self._cond:
            self._at = mine
        if loaded.header is not None:
            self._collect_garbage(loaded.header, loaded.state.version)
        return loaded.state

    def _read(self) -> _Loaded:
        for _ in range(_LOAD_ATTEMPTS):
            got = self.store.read(self.node)
            if got is None:
                return _Loaded(RegistryState(), None, None, [])
            data, znode_version = got
            if not data:  # Created, but never written (see _create_empty).
                return _Loaded(RegistryState(), znode_version, None, [])
            line, newline, inline = data.partition(b"\n")
            if not newline:
                raise RegistryError(f"registry {self.node}: no header line")
            header = Header.decode(line, self.node)
            warm = self._warm
            if warm is not None and warm[0] == line:
                state, deltas = warm[1].state.copy(), list(warm[1].deltas)
            else:
                snapshot = self._read_snapshot(header, inline)
                if snapshot is None:
                    continue  # A compaction replaced these chunks as we read: read again.
                state, deltas = snapshot, []
            found = self._read_deltas(state, deltas, line)
            if found is None or self.store.read(self.node) != got:
                continue  # Compacted meanwhile (the deltas may be half deleted): read again.
            if warm is not None and warm[0] == line:
                if found:
                    self.delta_loads += 1
                else:
                    self.warm_loads += 1
            loaded = _Loaded(state, znode_version, header, deltas)
            self._warm = (line, _Loaded(state.copy(), znode_version, header, list(deltas)))
            return loaded
        raise RegistryError(f"registry {self.node} kept changing while being read")

    def _read_snapshot(self, header: Header, inline: bytes) -> RegistryState | None:
        if header.chunks:
            parts = [self.store.read(f"{self.node}/{name}") for name in header.chunk_names()]
            if any(part is None for part in parts):
                return None
            payload = b"".join(part[0] for part in parts if part is not None)
        else:
            payload = inline
        return self._decode(header, payload)

    def _read_deltas(self, state: RegistryState, sizes: list[int], line: bytes) -> int | None:
        """Apply to ``state`` the deltas after its version, appending their sizes to ``sizes``;
        how many, or None if one vanished as it was read."""
        after = {
            int(m.group(1))
            for name in self.store.children(self.node)
            if (m := DELTA_RE.fullmatch(name)) and int(m.group(1)) > state.version
        }
        count = 0
        version = state.version
        while version + 1 in after:
            version += 1
            where = f"registry {self.node}/{delta_name(version)}"
            got = self.store.read(f"{self.node}/{delta_name(version)}")
            if got is None:
                return None
            apply_in_place(state, decode_delta(got[0], version, where))
            state.version = version
            sizes.append(len(got[0]))
            count += 1
        if any(v > version for v in after):
            # A hole: deltas being deleted by a compaction's clean-up, or damage if the header
            # has not moved.
            current = self.store.read(self.node)
            if current is not None and current[0].partition(b"\n")[0] == line:
                raise RegistryError(
                    f"registry {self.node}: {delta_name(version + 1)} is missing,"
                    " yet later deltas exist"
                )
            return None
        return count

    def _decode(self, header: Header, payload: bytes) -> RegistryState:
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

    def _conflict(self, version: int, fence: str | None) -> RegistryConflictError:
        return RegistryConflictError(
            f"registry {self.node}: another master wrote it since version {version}"
            f"{f', or candidate {fence} is gone' if fence else ''}; this master is deposed"
            " and must stop leading"
        )

    def _write(self, operations: list[Operation]) -> int:
        if self._at is None:
            self.load()
        at = self._at
        assert at is not None
        fence = self._fence_path()
        version = at.state.version + 1
        if at.header is not None and at.znode_version is not None and self.max_deltas:
            delta = encode_delta(version, operations)
            room = max(at.header.size, MIN_DELTA_BYTES) - sum(at.deltas)
            path = f"{self.node}/{delta_name(version)}"
            if (
                len(at.deltas) < self.max_deltas
                and len(delta) <= room
                and len(delta) + len(path) <= self.max_node_bytes
            ):
                return self._write_delta(at, operations, path, delta, fence)
        return self._compact(at, operations, fence)

    def _write_delta(
        self, at: _Loaded, operations: list[Operation], path: str, delta: bytes, fence: str | None
    ) -> int:
        assert at.znode_version is not None
        done = self.store.commit(
            checks=[(self.node, at.znode_version)], creates=[(path, delta)], fence=fence
        )
        if done is None:
            raise self._conflict(at.state.version, fence)
        with self._cond:
            apply_in_place(at.state, operations)
            at.state.version += 1
            at.deltas.append(len(delta))
        self.writes += 1
        self.last_write_bytes = len(delta)
        return at.state.version

    def _compact(self, at: _Loaded, operations: list[Operation], fence: str | None) -> int:
        """Write the state after ``operations`` as a new snapshot (see the module doc)."""
        new = apply_operations(at.state, operations)
        payload = zlib.compress(self._codec.encode(new), self.compression_level)
        generation = f"{new.version:010d}-{secrets.token_hex(4)}"
        header = Header(
            new.version, len(payload), hashlib.sha256(payload).hexdigest(), 0, generation
        )
        chunk_size = self.max_node_bytes
        if len(header.encode()) + 1 + len(payload) <= chunk_size:
            data = header.encode() + b"\n" + payload
        else:
            count = -(-len(payload) // chunk_size)
            header = Header(header.version, header.size, header.sha256, count, generation)
            data = header.encode() + b"\n"
            self._write_chunks(header, payload, chunk_size)
        znode_version = at.znode_version
        if znode_version is None:
            znode_version = self._create_empty(fence)
        done = None
        if znode_version is not None:
            marker = (f"{self.node}/{delta_name(new.version)}", b"")
            done = self.store.commit(
                creates=[marker], sets=[(self.node, data, znode_version)], fence=fence
            )
        if done is None:
            self._delete(header.chunk_names(), "chunk")
            raise self._conflict(at.state.version, fence)
        old = at.header
        covered = at.state.version - len(at.deltas)
        with self._cond:
            self._at = _Loaded(new, done[0], header, [])
        self.writes += 1
        self.compactions += 1
        self.last_write_bytes = len(payload)
        if old is not None and old.chunks:
            self._delete(old.chunk_names(), "chunk")
        self._delete([delta_name(v) for v in range(covered + 1, new.version + 1)], "delta")
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

    def _write_chunks(self, header: Header, payload: bytes, chunk_size: int) -> None:
        for index, name in enumerate(header.chunk_names()):
            part = payload[index * chunk_size : (index + 1) * chunk_size]
            if not self.store.create(f"{self.node}/{name}", part):
                self._delete(header.chunk_names(), "chunk")
                raise RegistryError(f"registry {self.node}: chunk {name} exists already")

    def _delete(self, names: list[str], what: str) -> None:
        for name in names:
            try:
                self.store.delete(f"{self.node}/{name}")
            except Exception as error:  # Garbage at worst: the next load collects it.
                log.warning("registry %s: cannot delete %s %s: %r", self.node, what, name, error)

    def _collect_garbage(self, header: Header, latest: int) -> None:
        """Delete deltas the snapshot covers, and chunks of versions up to ``latest`` (the
        version read) that it does not use: left by writers that lost the compare-and-set or
        crashed. Newer chunks may be a compaction in progress."""
        try:
            names = self.store.children(self.node)
        except Exception as error:
            log.warning("registry %s: cannot list its children: %r", self.node, error)
            return
        live = set(header.chunk_names())
        stale = []
        for name in names:
            chunk = CHUNK_RE.fullmatch(name)
            if chunk is not None and name not in live and int(chunk.group(1)) <= latest:
                stale.append(name)
            delta = DELTA_RE.fullmatch(name)
            if delta is not None and int(delta.group(1)) <= header.version:
                stale.append(name)
        self._delete(stale, "stale znode")
