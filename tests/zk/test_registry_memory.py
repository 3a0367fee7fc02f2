"""The ZooKeeper registry's logic over the in-memory znode store: layout, compare-and-set, fence,
chunks, garbage, corruption, batching. The same registry runs against real ZooKeeper in
test_registry_zk.py."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from master.registry import (
    FileRegistry,
    RegistryConflictError,
    RegistryError,
    RegistryState,
    RemoveAgent,
    UpdateWeights,
)
from master.registry.codec import StateCodec
from master.registry.zk_memory import MemoryZnodeStore, ZnodeTooLargeError
from master.registry.zookeeper import ZnodeStore, ZooKeeperRegistry
from tests.zk.samples import every_kind, many_agents

NODE = "/emporion/registry"


def chunks(store: MemoryZnodeStore) -> list[str]:
    return store.children(NODE)


def test_the_document_is_the_file_registrys_byte_for_byte(tmp_path: Path) -> None:
    files = FileRegistry(tmp_path)
    files.apply(every_kind())
    state = FileRegistry(tmp_path).load()
    assert StateCodec().encode(state) == (tmp_path / "registry.json").read_bytes()
    assert StateCodec().decode(StateCodec().encode(state)) == state


def test_round_trip_and_versions() -> None:
    store = MemoryZnodeStore()
    registry = ZooKeeperRegistry(store, NODE)
    assert registry.load() == RegistryState()
    assert store.read(NODE) is None  # Reading writes nothing.

    assert registry.apply(every_kind()) == 1  # The first write creates the znode.
    assert registry.apply([UpdateWeights({"ops": 0.5})]) == 2
    loaded = ZooKeeperRegistry(store, NODE).load()
    assert loaded.version == 2
    assert loaded.weights == {"eng": 2.0, "ops": 0.5}
    assert set(loaded.agents) == {"S1"}
    assert loaded.frameworks["F2"].failover_deadline == 80.0
    znode = store.read(NODE)
    assert znode is not None
    assert znode[1] == 1  # ZooKeeper's own version: created empty at 0, set by the snapshot.
    assert chunks(store) == ["delta-0000000002"]  # Small: inline, and the second write a delta.


def test_a_stale_writer_is_refused_and_changes_nothing() -> None:
    store = MemoryZnodeStore()
    ZooKeeperRegistry(store, NODE).apply(every_kind())
    old_leader = ZooKeeperRegistry(store, NODE)
    new_leader = ZooKeeperRegistry(store, NODE)
    old_leader.load()
    new_leader.load()
    assert new_leader.apply([UpdateWeights({"eng": 3.0})]) == 2
    before = store.read(NODE)

    with pytest.raises(RegistryConflictError, match="deposed"):
        old_leader.apply([RemoveAgent("S1")])
    assert store.read(NODE) == before
    assert ZooKeeperRegistry(store, NODE).load().weights == {"eng": 3.0}


def test_two_first_writes_race_to_create_and_one_loses() -> None:
    store = MemoryZnodeStore()
    first, second = ZooKeeperRegistry(store, NODE), ZooKeeperRegistry(store, NODE)
    first.load()
    second.load()
    first.apply([UpdateWeights({"a": 1.0})])
    with pytest.raises(RegistryConflictError):
        second.apply([UpdateWeights({"b": 1.0})])
    assert ZooKeeperRegistry(store, NODE).load().weights == {"a": 1.0}


def test_writes_are_fenced_by_the_leaders_candidate_znode() -> None:
    store = MemoryZnodeStore()
    fence = "/emporion/json.info_0000000003"
    store.create(fence, b"{}")
    registry = ZooKeeperRegistry(store, NODE, fence=fence)
    registry.apply([UpdateWeights({"a": 1.0})])
    store.delete(fence)  # The session ended: the candidacy is gone.
    with pytest.raises(RegistryConflictError, match=r"json\.info_0000000003 is gone"):
        registry.apply([UpdateWeights({"a": 2.0})])
    assert ZooKeeperRegistry(store, NODE).load().weights == {"a": 1.0}


def test_a_master_without_a_candidacy_does_not_even_try() -> None:
    store = MemoryZnodeStore()
    registry = ZooKeeperRegistry(store, NODE, fence=lambda: None)
    registry.load()
    with pytest.raises(RegistryConflictError, match="not leading"):
        registry.apply([UpdateWeights({"a": 1.0})])
    assert store.requests == 0


def test_a_large_state_is_written_in_chunks_and_shrinks_back_inline() -> None:
    store = MemoryZnodeStore(max_request_bytes=8192)
    registry = ZooKeeperRegistry(store, NODE, max_node_bytes=4096, max_deltas=0)  # Snapshots.
    registry.apply(many_agents(40, noise_bytes=600))
    first = chunks(store)
    assert len(first) > 2
    header = store.read(NODE)
    assert header is not None
    assert header[0].endswith(b"\n")  # Only the header: the payload is in the chunks.
    loaded = ZooKeeperRegistry(store, NODE, max_node_bytes=4096).load()
    assert loaded == registry.load()
    assert len(loaded.agents) == 40

    registry.apply(many_agents(41, noise_bytes=600))  # A new generation replaces the old.
    second = chunks(store)
    assert second
    assert not set(first) & set(second)

    registry.apply([RemoveAgent(f"agent-{i:06d}") for i in range(41)])
    assert chunks(store) == []
    assert ZooKeeperRegistry(store, NODE).load().agents == {}


def test_the_losers_chunks_are_removed() -> None:
    store = MemoryZnodeStore(max_request_bytes=8192)
    winner = ZooKeeperRegistry(store, NODE, max_node_bytes=4096)
    loser = ZooKeeperRegistry(store, NODE, max_node_bytes=4096)
    winner.load()
    loser.load()
    winner.apply(many_agents(30, noise_bytes=600, seed=1))
    kept = chunks(store)
    with pytest.raises(RegistryConflictError):
        loser.apply(many_agents(30, noise_bytes=600, seed=2))
    assert chunks(store) == kept


def test_chunks_left_by_crashed_writers_are_collected_once_passed() -> None:
    store = MemoryZnodeStore()
    registry = ZooKeeperRegistry(store, NODE, max_deltas=0)  # Every write a snapshot.
    registry.apply([UpdateWeights({"a": 1.0})])
    registry.apply([UpdateWeights({"a": 2.0})])  # Version 2.
    stale = [f"{NODE}/chunk-0000000002-deadbeef-0000", f"{NODE}/chunk-0000000001-0badf00d-0001"]
    in_flight = f"{NODE}/chunk-0000000003-c0ffee00-0000"  # Maybe a write in progress.
    for path in [*stale, in_flight, f"{NODE}/not-a-chunk"]:
        store.create(path, b"x")
    ZooKeeperRegistry(store, NODE).load()
    assert chunks(store) == ["chunk-0000000003-c0ffee00-0000", "not-a-chunk"]


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda data: data.replace(b'"chunks"', b'"chonks"'), "bad header"),
        (lambda data: data.replace(b'"zlib"', b'"lz4"'), "unknown encoding"),
        (lambda data: data[:-3] + b"xyz", "corrupt"),
        (lambda data: b"\n" + data.split(b"\n", 1)[1], "bad header"),
        (lambda data: b"no newline", "no header line"),
    ],
)
def test_damaged_znodes_are_refused(tamper: object, message: str) -> None:
    store = MemoryZnodeStore()
    ZooKeeperRegistry(store, NODE).apply(every_kind())
    got = store.read(NODE)
    assert got is not None
    assert callable(tamper)
    store.nodes[NODE] = (tamper(got[0]), got[1])
    with pytest.raises(RegistryError, match=message):
        ZooKeeperRegistry(store, NODE).load()


class RewritingStore(MemoryZnodeStore):
    """Lets another master write a new generation just as a reader reads the first chunk."""

    def __init__(self) -> None:
        super().__init__(max_request_bytes=8192)
        self.interloper: ZooKeeperRegistry | None = None

    def read(self, path: str) -> tuple[bytes, int] | None:
        if "/chunk-" in path and self.interloper is not None:
            interloper, self.interloper = self.interloper, None
            interloper.apply([RemoveAgent("agent-000000")])
        return super().read(path)


def test_a_read_racing_a_new_generation_reads_again() -> None:
    store = RewritingStore()
    writer = ZooKeeperRegistry(store, NODE, max_node_bytes=4096)
    writer.apply(many_agents(30, noise_bytes=600))
    store.interloper = writer
    loaded = ZooKeeperRegistry(store, NODE, max_node_bytes=4096).load()
    assert loaded.version == 2
    assert "agent-000000" not in loaded.agents


class GatedStore(MemoryZnodeStore):
    """Holds the first registry write until released, so other applies queue behind it."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()
        self.writes = 0

    def commit(
        self,
        *,
        checks: Sequence[tuple[str, int]] = (),
        creates: Sequence[tuple[str, bytes]] = (),
        sets: Sequence[tuple[str, bytes, int]] = (),
        fence: str | None = None,
    ) -> list[int] | None:
        self.writes += 1
        if self.writes == 1:
            self.entered.set()
            assert self.release.wait(timeout=30)
        return super().commit(checks=checks, creates=creates, sets=sets, fence=fence)


def test_applies_arriving_during_a_write_share_the_next_write() -> None:
    store = GatedStore()
    registry = ZooKeeperRegistry(store, NODE)
    registry.load()
    versions: dict[str, int] = {}

    def apply(role: str) -> None:
        versions[role] = registry.apply([UpdateWeights({role: 1.0})])

    first = threading.Thread(target=apply, args=("first",))
    first.start()
    assert store.entered.wait(timeout=30)
    rest = [threading.Thread(target=apply, args=(f"r{i}",)) for i in range(4)]
    for thread in rest:
        thread.start()
    while len(registry._queue) < 4:  # All four queued behind the first write.
        threading.Event().wait(0.01)
    store.release.set()
    for thread in [first, *rest]:
        thread.join(timeout=30)

    assert store.writes == 2
    assert versions == {"first": 1, "r0": 2, "r1": 2, "r2": 2, "r3": 2}
    assert set(ZooKeeperRegistry(store, NODE).load().weights) == {"first", "r0", "r1", "r2", "r3"}


class FailingStore(MemoryZnodeStore):
    """Loses the connection on writes once ``failing`` is set."""

    failing = False

    def commit(
        self,
        *,
        checks: Sequence[tuple[str, int]] = (),
        creates: Sequence[tuple[str, bytes]] = (),
        sets: Sequence[tuple[str, bytes, int]] = (),
        fence: str | None = None,
    ) -> list[int] | None:
        if self.failing:
            raise ConnectionError("connection loss")
        return super().commit(checks=checks, creates=creates, sets=sets, fence=fence)


def test_a_failed_write_is_an_error_with_an_unknown_outcome() -> None:
    store = FailingStore()
    registry = ZooKeeperRegistry(store, NODE)
    registry.apply([UpdateWeights({"a": 1.0})])
    store.failing = True
    with pytest.raises(RegistryError, match="outcome is unknown"):
        registry.apply([UpdateWeights({"a": 2.0})])
    assert registry.load().weights == {"a": 1.0}


def test_state_over_a_megabyte_fits_in_zookeepers_request_limit() -> None:
    store = MemoryZnodeStore()  # ZooKeeper's default 1 MiB limit: over it raises.
    registry = ZooKeeperRegistry(store, NODE, compression_level=1)
    registry.apply(many_agents(1500, noise_bytes=1400))
    assert registry.last_write_bytes > 1024 * 1024
    assert len(chunks(store)) == 2
    assert len(ZooKeeperRegistry(store, NODE).load().agents) == 1500
    with pytest.raises(ZnodeTooLargeError):
        store.create("/big", b"x" * (1024 * 1024))


def test_bad_arguments_are_refused() -> None:
    store: ZnodeStore = MemoryZnodeStore()
    with pytest.raises(ValueError, match="absolute path"):
        ZooKeeperRegistry(store, "emporion/registry")
    with pytest.raises(ValueError, match="absolute path"):
        ZooKeeperRegistry(store, "/emporion/")
    with pytest.raises(ValueError, match="max_node_bytes"):
        ZooKeeperRegistry(store, NODE, max_node_bytes=10)


@pytest.mark.parametrize("max_node_bytes", [1024, 1_000_000], ids=["chunked", "inline"])
def test_a_standby_load_of_an_unchanged_registry_is_warm(max_node_bytes: int) -> None:
    store = MemoryZnodeStore()
    fence = "/emporion/json.info_0000000001"
    store.create(fence, b"{}")
    leader = ZooKeeperRegistry(store, NODE, fence=fence, max_node_bytes=max_node_bytes)
    leader.load()
    leader.apply(many_agents(200))
    standby = ZooKeeperRegistry(store, NODE, max_node_bytes=max_node_bytes)
    first = standby.load()
    assert standby.warm_loads == 0
    # Unchanged: answered from the decoded document, equal, and a copy of its own.
    again = standby.load()
    assert standby.warm_loads == 1
    assert again == first
    again.weights["changed"] = 1.0
    assert "changed" not in standby.load().weights
    # Written since: decoded again, and the new content is what a warm load gives later.
    leader.apply([UpdateWeights({"eng": 3.0})])
    fresh = standby.load()
    assert standby.warm_loads == 2  # Not a warm one.
    assert fresh.weights == {"eng": 3.0}
    assert fresh.version == first.version + 1
    assert standby.load() == fresh
    assert standby.warm_loads == 3
    # A standby elected after a warm load writes with compare-and-set as usual.
    store.create("/emporion/json.info_0000000002", b"{}")
    standby.fence = "/emporion/json.info_0000000002"
    assert standby.apply([UpdateWeights({"ops": 1.0})]) == fresh.version + 1
