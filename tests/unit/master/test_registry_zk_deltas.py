"""The ZooKeeper registry's snapshot + delta layout, over the in-memory znode store: writes
proportional to the change, compaction, a crash between a delta and a compaction, a leader
change in the middle of a compaction, reads racing a compaction's clean-up, damage, and
registries written before deltas existed."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

import pytest

from master.registry import (
    AdmitAgent,
    RegistryConflictError,
    RegistryError,
    RegistryState,
    RemoveAgent,
    UpdateWeights,
    apply_operations,
)
from master.registry.journal import encode_line
from master.registry.zk_layout import Header
from master.registry.zk_memory import MemoryZnodeStore
from master.registry.zookeeper import ZooKeeperRegistry
from tests.zk.samples import agent_info, every_kind, many_agents

NODE = "/emporion/registry"
FENCE_A = "/emporion/json.info_0000000001"
FENCE_B = "/emporion/json.info_0000000002"


def names(store: MemoryZnodeStore, kind: str) -> list[str]:
    return [n for n in store.children(NODE) if n.startswith(kind)]


def header_of(store: MemoryZnodeStore) -> bytes:
    got = store.read(NODE)
    assert got is not None
    return got[0].partition(b"\n")[0]


def test_a_write_after_the_snapshot_is_one_small_delta_whatever_the_size() -> None:
    store = MemoryZnodeStore()
    registry = ZooKeeperRegistry(store, NODE)
    registry.apply(many_agents(3000))  # One snapshot of 3,000 agents.
    assert registry.last_write_bytes > 20_000
    header, requests = store.read(NODE), store.requests

    assert registry.apply([AdmitAgent("new", agent_info("new", "new-host"))]) == 2
    assert registry.last_write_bytes < 1000  # Its own operations, not the 3,000 agents.
    assert store.requests == requests + 1  # One transaction.
    assert store.read(NODE) == header  # The header is not rewritten.
    assert names(store, "delta") == ["delta-0000000002"]
    assert registry.compactions == 1

    loaded = ZooKeeperRegistry(store, NODE).load()
    expected = apply_operations(
        apply_operations(RegistryState(), many_agents(3000)),
        [AdmitAgent("new", agent_info("new", "new-host"))],
    )
    assert loaded == expected


def test_every_kind_of_operation_survives_a_delta() -> None:
    store = MemoryZnodeStore()
    registry = ZooKeeperRegistry(store, NODE)
    registry.apply([UpdateWeights({"first": 1.0})])
    registry.apply(every_kind())  # A delta: the journal's encoding of every operation.
    assert names(store, "delta") == ["delta-0000000002"]
    expected = apply_operations(
        apply_operations(RegistryState(), [UpdateWeights({"first": 1.0})]), every_kind()
    )
    assert ZooKeeperRegistry(store, NODE).load() == expected


def test_deltas_are_compacted_when_they_pass_max_deltas() -> None:
    store = MemoryZnodeStore()
    registry = ZooKeeperRegistry(store, NODE, max_deltas=3)
    registry.apply(every_kind())
    for i in range(3):
        registry.apply([UpdateWeights({f"r{i}": 1.0})])
    assert names(store, "delta") == [f"delta-{v:010d}" for v in (2, 3, 4)]
    assert b'"version":1' in header_of(store)

    assert registry.apply([RemoveAgent("S1")]) == 5  # The fourth would pass 3: a snapshot.
    assert registry.compactions == 2
    assert names(store, "delta") == []  # The deltas it covers are gone.
    assert b'"version":5' in header_of(store)
    loaded = ZooKeeperRegistry(store, NODE).load()
    assert loaded.version == 5
    assert set(loaded.weights) == {"eng", "r0", "r1", "r2"}
    assert "S1" not in loaded.agents


def test_deltas_are_compacted_when_they_outgrow_the_snapshot() -> None:
    store = MemoryZnodeStore()
    registry = ZooKeeperRegistry(store, NODE)
    registry.apply([UpdateWeights({"a": 1.0})])  # A tiny snapshot: deltas may reach 64 KiB.
    batch = many_agents(40, noise_bytes=1600, seed=3)  # About 40 KB once compressed.
    registry.apply(batch)
    assert registry.compactions == 1
    registry.apply(many_agents(40, noise_bytes=1600, seed=4))  # Past 64 KiB: a snapshot.
    assert registry.compactions == 2
    assert names(store, "delta") == []


def test_a_delta_too_big_for_a_znode_is_written_as_a_snapshot() -> None:
    store = MemoryZnodeStore(max_request_bytes=8192)
    registry = ZooKeeperRegistry(store, NODE, max_node_bytes=4096)
    registry.apply([UpdateWeights({"a": 1.0})])
    registry.apply(many_agents(30, noise_bytes=600))  # Its delta would not fit in 4 KB.
    assert registry.compactions == 2
    assert names(store, "delta") == []
    assert names(store, "chunk")
    assert len(ZooKeeperRegistry(store, NODE, max_node_bytes=4096).load().agents) == 30


class CrashingStore(MemoryZnodeStore):
    """Dies (raises) on the transaction that would switch the header to a new snapshot."""

    crash = False

    def commit(
        self,
        *,
        checks: Sequence[tuple[str, int]] = (),
        creates: Sequence[tuple[str, bytes]] = (),
        sets: Sequence[tuple[str, bytes, int]] = (),
        fence: str | None = None,
    ) -> list[int] | None:
        if self.crash and sets:
            raise ConnectionError("the master died here")
        return super().commit(checks=checks, creates=creates, sets=sets, fence=fence)


def test_a_crash_between_the_deltas_and_their_compaction_loses_nothing_committed() -> None:
    store = CrashingStore(max_request_bytes=8192)
    registry = ZooKeeperRegistry(store, NODE, max_node_bytes=4096, max_deltas=2)
    registry.apply(many_agents(20, noise_bytes=300))
    registry.apply([UpdateWeights({"a": 1.0})])
    registry.apply([RemoveAgent("agent-000003")])  # Version 3, two deltas.
    store.crash = True
    with pytest.raises(RegistryError, match="outcome is unknown"):
        registry.apply([UpdateWeights({"b": 1.0})])  # A compaction: chunks written, then death.
    left = names(store, "chunk-0000000004")
    assert left  # The new snapshot's chunks, never switched to.

    store.crash = False
    successor = ZooKeeperRegistry(store, NODE, max_node_bytes=4096, max_deltas=2)
    loaded = successor.load()
    assert loaded.version == 3  # Exactly what was committed.
    assert loaded.weights == {"a": 1.0}
    assert "agent-000003" not in loaded.agents
    assert len(loaded.agents) == 19
    assert names(store, "chunk-0000000004") == left  # Perhaps a write in progress: kept.
    successor.apply([UpdateWeights({"c": 1.0})])  # Version 4, a snapshot of its own.
    ZooKeeperRegistry(store, NODE).load()
    assert not set(left) & set(store.children(NODE))  # Collected once passed.
    assert ZooKeeperRegistry(store, NODE).load().weights == {"a": 1.0, "c": 1.0}


class InterruptedStore(MemoryZnodeStore):
    """Runs ``before_switch`` once, just before a transaction that switches the header."""

    def __init__(self) -> None:
        super().__init__(max_request_bytes=8192)
        self.before_switch: Callable[[], None] | None = None

    def commit(
        self,
        *,
        checks: Sequence[tuple[str, int]] = (),
        creates: Sequence[tuple[str, bytes]] = (),
        sets: Sequence[tuple[str, bytes, int]] = (),
        fence: str | None = None,
    ) -> list[int] | None:
        if sets and self.before_switch is not None:
            hook, self.before_switch = self.before_switch, None
            hook()
        return super().commit(checks=checks, creates=creates, sets=sets, fence=fence)


@pytest.mark.parametrize("successor_compacts", [False, True], ids=["delta", "compaction"])
def test_a_leader_deposed_in_the_middle_of_a_compaction_writes_nothing(
    successor_compacts: bool,
) -> None:
    store = InterruptedStore()
    store.create(FENCE_A, b"{}")
    old = ZooKeeperRegistry(store, NODE, fence=FENCE_A, max_node_bytes=4096, max_deltas=1)
    old.apply(many_agents(20, noise_bytes=300))
    old.apply([UpdateWeights({"a": 1.0})])  # Version 2: one delta, so the next compacts.
    new = ZooKeeperRegistry(
        store, NODE, fence=FENCE_B, max_node_bytes=4096, max_deltas=0 if successor_compacts else 9
    )

    def leader_change() -> None:
        store.delete(FENCE_A)  # The old leader's session ended...
        store.create(FENCE_B, b"{}")  # ...and another master was elected.
        assert new.load().version == 2
        assert new.apply([UpdateWeights({"new": 1.0})]) == 3

    store.before_switch = leader_change
    with pytest.raises(RegistryConflictError, match="deposed"):
        old.apply([UpdateWeights({"old": 1.0})])
    # The deposed leader's chunks are gone: what is left is the current snapshot's.
    assert set(names(store, "chunk")) == set(Header.decode(header_of(store), NODE).chunk_names())
    loaded = ZooKeeperRegistry(store, NODE).load()
    assert loaded.version == 3
    assert loaded.weights == {"a": 1.0, "new": 1.0}
    assert len(loaded.agents) == 20
    assert new.apply([UpdateWeights({"more": 1.0})]) == 4  # The successor goes on writing.


def test_a_stale_writer_behind_a_compaction_is_refused() -> None:
    store = MemoryZnodeStore()
    first = ZooKeeperRegistry(store, NODE)
    first.apply(every_kind())
    stale = ZooKeeperRegistry(store, NODE)
    stale.load()
    compacting = ZooKeeperRegistry(store, NODE, max_deltas=0)
    compacting.load()
    compacting.apply([UpdateWeights({"x": 1.0})])
    before = dict(store.nodes)
    with pytest.raises(RegistryConflictError, match="deposed"):
        stale.apply([UpdateWeights({"y": 1.0})])  # Its delta-2 name is taken by the marker.
    assert store.nodes == before
    compacting.apply([UpdateWeights({"z": 1.0})])  # Version 3, a snapshot, delta-2 deleted.
    stale.load()
    stale2 = ZooKeeperRegistry(store, NODE)
    stale2.load()
    compacting.apply([UpdateWeights({"w": 1.0})])  # Version 4.
    with pytest.raises(RegistryConflictError):
        stale2.apply([UpdateWeights({"y": 1.0})])  # delta-4 free, but the header moved.


class RacingStore(MemoryZnodeStore):
    """Lets a writer compact just as a reader reads its first delta."""

    def __init__(self) -> None:
        super().__init__()
        self.interloper: ZooKeeperRegistry | None = None

    def read(self, path: str) -> tuple[bytes, int] | None:
        if "/delta-" in path and self.interloper is not None:
            interloper, self.interloper = self.interloper, None
            interloper.apply([UpdateWeights({"during": 1.0})])
        return super().read(path)


def test_a_read_racing_a_compaction_reads_again() -> None:
    store = RacingStore()
    writer = ZooKeeperRegistry(store, NODE, max_deltas=3)
    writer.apply(every_kind())
    for i in range(3):
        writer.apply([UpdateWeights({f"r{i}": 1.0})])
    store.interloper = writer  # Its next write compacts and deletes deltas 2-4.
    loaded = ZooKeeperRegistry(store, NODE).load()
    assert loaded.version == 5
    assert set(loaded.weights) == {"eng", "r0", "r1", "r2", "during"}


def test_a_standby_reads_only_the_deltas_written_since_its_last_load() -> None:
    store = MemoryZnodeStore()
    leader = ZooKeeperRegistry(store, NODE)
    leader.apply(many_agents(2000))
    standby = ZooKeeperRegistry(store, NODE)
    standby.load()
    leader.apply([RemoveAgent("agent-000001")])
    leader.apply([UpdateWeights({"a": 1.0})])

    reads: list[str] = []
    original = store.read

    def counting(path: str) -> tuple[bytes, int] | None:
        reads.append(path)
        return original(path)

    store.read = counting  # type: ignore[method-assign]
    state = standby.load()
    assert standby.delta_loads == 1
    assert state.version == 3
    assert "agent-000001" not in state.agents
    assert state.weights == {"a": 1.0}
    assert not [p for p in reads if "/chunk-" in p]  # The snapshot is not read again.
    assert sorted(p for p in reads if "/delta-" in p) == [
        f"{NODE}/delta-0000000002",
        f"{NODE}/delta-0000000003",
    ]
    assert standby.load() == state
    assert standby.warm_loads == 1


def test_a_registry_written_before_deltas_loads_and_takes_deltas() -> None:
    store = MemoryZnodeStore()
    old_style = ZooKeeperRegistry(store, NODE, max_deltas=0)
    old_style.apply(every_kind())
    old_style.apply([UpdateWeights({"ops": 1.0})])  # A single document at version 2.
    assert names(store, "delta") == []
    registry = ZooKeeperRegistry(store, NODE)
    assert registry.load().weights == {"eng": 2.0, "ops": 1.0}
    assert registry.apply([UpdateWeights({"new": 1.0})]) == 3
    assert names(store, "delta") == ["delta-0000000003"]
    assert ZooKeeperRegistry(store, NODE).load().weights == {"eng": 2.0, "ops": 1.0, "new": 1.0}


def test_damaged_deltas_are_refused() -> None:
    store = MemoryZnodeStore()
    registry = ZooKeeperRegistry(store, NODE)
    registry.apply(every_kind())
    registry.apply([UpdateWeights({"a": 1.0})])
    registry.apply([UpdateWeights({"b": 1.0})])
    path = f"{NODE}/delta-0000000002"
    good = store.nodes[path]

    store.nodes[path] = (zlib.compress(encode_line(7, [])), 0)
    with pytest.raises(RegistryError, match="delta-0000000002: holds version 7"):
        ZooKeeperRegistry(store, NODE).load()
    store.nodes[path] = (b"not zlib", 0)
    with pytest.raises(RegistryError, match="delta-0000000002: cannot decompress"):
        ZooKeeperRegistry(store, NODE).load()
    store.nodes[path] = (zlib.compress(b'{"version": 2, "ops": [{"op": "teleport"}]}'), 0)
    with pytest.raises(RegistryError, match="unknown operation 'teleport'"):
        ZooKeeperRegistry(store, NODE).load()
    del store.nodes[path]
    with pytest.raises(RegistryError, match="delta-0000000002 is missing, yet later deltas"):
        ZooKeeperRegistry(store, NODE).load()
    store.nodes[path] = good
    assert ZooKeeperRegistry(store, NODE).load().weights == {"eng": 2.0, "a": 1.0, "b": 1.0}


def test_bad_max_deltas_is_refused() -> None:
    with pytest.raises(ValueError, match="max_deltas must be at least 0, got -1"):
        ZooKeeperRegistry(MemoryZnodeStore(), NODE, max_deltas=-1)
