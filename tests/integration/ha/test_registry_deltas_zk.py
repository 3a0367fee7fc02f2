"""The ZooKeeper registry's deltas against a real ZooKeeper server: the transaction that writes a
delta is all or nothing, deltas and their compaction round trip, a stale writer collides on the
delta's name or the header's version, and a leader whose session ended cannot add a delta.
Then masters: a new leader elected after the old one wrote deltas reads them all (its own
writes would collide with them otherwise), and the registry keeps every framework."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator

import pytest
from kazoo.client import KazooClient

from emporion.testing.failover_job import FailoverFramework
from master.registry import RegistryConflictError, RemoveAgent, UpdateWeights
from master.registry.zookeeper import ZooKeeperRegistry
from protos.leader import ZooKeeperContender
from protos.leader_info import parse_zk_url
from protos.leader_zk import KazooZnodeStore, zookeeper_client
from tests.integration.ha.conftest import WAIT, MasterFactory, wait_one_leader, wait_until
from tests.zk.samples import every_kind, many_agents

pytestmark = pytest.mark.zk


@pytest.fixture
def clients(zk_url: str) -> Iterator[list[KazooClient]]:
    """Kazoo clients made by :func:`client`; all stopped after the test."""
    made: list[KazooClient] = []
    yield made
    for each in made:
        each.stop()
        each.close()


def client(zk_url: str, made: list[KazooClient]) -> KazooClient:
    """A started kazoo client (a master's session of its own)."""
    zk = zookeeper_client(parse_zk_url(zk_url), session_timeout=5.0)
    zk.start(timeout=WAIT)
    made.append(zk)
    return zk


def registry(zk_url: str, made: list[KazooClient], **kwargs: object) -> ZooKeeperRegistry:
    """The registry at ``<path>/registry`` on a client of its own."""
    path = f"{parse_zk_url(zk_url).path}/registry"
    return ZooKeeperRegistry(KazooZnodeStore(client(zk_url, made)), path, **kwargs)  # type: ignore[arg-type]


def test_a_transaction_is_all_or_nothing(zk_url: str, clients: list[KazooClient]) -> None:
    zk = client(zk_url, clients)
    store = KazooZnodeStore(zk)
    base = parse_zk_url(zk_url).path
    assert store.create(f"{base}/a", b"1")
    assert store.create(f"{base}/b", b"2")
    # The create collides: the set before it in the same transaction is not done.
    assert store.commit(creates=[(f"{base}/b", b"x")], sets=[(f"{base}/a", b"changed", 0)]) is None
    assert store.read(f"{base}/a") == (b"1", 0)
    # A check fails: the create is not done.
    assert store.commit(checks=[(f"{base}/a", 5)], creates=[(f"{base}/c", b"3")]) is None
    assert store.read(f"{base}/c") is None
    assert store.commit(checks=[(f"{base}/a", 0)], creates=[(f"{base}/c", b"3")]) == []
    assert store.commit(creates=[(f"{base}/d", b"")], sets=[(f"{base}/a", b"new", 0)]) == [1]
    assert store.read(f"{base}/a") == (b"new", 1)
    assert store.commit(creates=[(f"{base}/e", b"")], fence=f"{base}/gone") is None
    assert store.read(f"{base}/e") is None


def test_deltas_and_their_compaction_round_trip(zk_url: str, clients: list[KazooClient]) -> None:
    writer = registry(zk_url, clients, max_deltas=2)
    writer.apply(many_agents(500))
    writer.apply([UpdateWeights({"a": 1.0})])
    writer.apply([RemoveAgent("agent-000007")])
    path = f"{parse_zk_url(zk_url).path}/registry"
    observer = client(zk_url, clients)
    children = observer.get_children(path)
    assert sorted(n for n in children if n.startswith("delta-")) == [
        "delta-0000000002",
        "delta-0000000003",
    ]
    loaded = registry(zk_url, clients).load()
    assert loaded.version == 3
    assert loaded.weights == {"a": 1.0}
    assert len(loaded.agents) == 499

    writer.apply([UpdateWeights({"b": 1.0})])  # A third delta would pass 2: a snapshot.
    assert writer.compactions == 2
    assert not [n for n in observer.get_children(path) if n.startswith("delta-")]
    assert registry(zk_url, clients).load() == writer.load()


def test_stale_writers_collide(zk_url: str, clients: list[KazooClient]) -> None:
    registry(zk_url, clients).apply(every_kind())
    old, new = registry(zk_url, clients), registry(zk_url, clients, max_deltas=0)
    old.load()
    new.load()
    new.apply([UpdateWeights({"eng": 5.0})])  # A snapshot (and its delta-2 marker).
    with pytest.raises(RegistryConflictError, match="deposed"):
        old.apply([RemoveAgent("S1")])  # delta-2 is taken.
    old.load()
    new.apply([UpdateWeights({"eng": 6.0})])  # Another snapshot: the header moved.
    with pytest.raises(RegistryConflictError, match="deposed"):
        old.apply([RemoveAgent("S1")])
    state = registry(zk_url, clients).load()
    assert state.weights == {"eng": 6.0}
    assert "S1" in state.agents


def test_a_leader_whose_session_ended_cannot_add_a_delta(
    zk_url: str, clients: list[KazooClient]
) -> None:
    contender_client = zookeeper_client(parse_zk_url(zk_url), session_timeout=5.0)
    contender_client.start(timeout=WAIT)
    contender = ZooKeeperContender(contender_client, parse_zk_url(zk_url).path, b'{"id": "m1"}')
    contender.start()
    wait_until(lambda: contender.leading, "the contender to lead")
    fenced = registry(zk_url, clients, fence=contender.node)
    fenced.apply([UpdateWeights({"a": 1.0})])
    fenced.apply([UpdateWeights({"a": 2.0})])  # A delta.
    contender_client.stop()  # The session ends: the candidate znode is deleted.
    contender_client.close()
    with pytest.raises(RegistryConflictError, match="is gone"):
        fenced.apply([UpdateWeights({"a": 3.0})])
    assert registry(zk_url, clients).load().weights == {"a": 2.0}


def test_a_new_leader_reads_the_deltas_of_the_old(
    zk_url: str, zk_masters: MasterFactory, clients: list[KazooClient]
) -> None:
    masters = zk_masters(2)
    old = wait_one_leader(masters)
    names = [f"deltas-{i}" for i in range(3)]

    async def subscribe_all() -> list[FailoverFramework]:
        frameworks = [FailoverFramework(zk_url, name, 0) for name in names]
        for framework in frameworks:
            await framework.start()
            await framework.wait_back(old.master_id, WAIT)
        return frameworks

    async def body() -> None:
        frameworks = await subscribe_all()
        try:
            before = registry(zk_url, clients).load()
            assert {r.info.name for r in before.frameworks.values()} >= set(names)
            path = f"{parse_zk_url(zk_url).path}/registry"
            observer = client(zk_url, clients)
            assert [n for n in observer.get_children(path) if n.startswith("delta-")]
            old.stop(signal.SIGKILL)
            new = await asyncio.to_thread(wait_one_leader, [m for m in masters if m is not old])
            for framework in frameworks:
                await framework.wait_back(new.master_id, WAIT)
            # A framework new to the new leader: it writes after the old leader's deltas, from
            # the latest version (or its delta would collide and it would step down).
            late = FailoverFramework(zk_url, "late", 0)
            frameworks.append(late)
            await late.start()
            await late.wait_back(new.master_id, WAIT)
            reader = registry(zk_url, clients)

            def written() -> bool:
                return any(r.info.name == "late" for r in reader.load().frameworks.values())

            await asyncio.to_thread(wait_until, written, "the new leader's write")
            after = reader.load()
            assert after.version > before.version
            assert {r.info.name for r in after.frameworks.values()} >= {*names, "late"}
            assert "stepped down" not in new.log_path.read_text()
        finally:
            for framework in frameworks:
                await framework.close()

    asyncio.run(body())
