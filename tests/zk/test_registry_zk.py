"""The ZooKeeper registry against a real ZooKeeper server: round trip, reload after a restart,
compare-and-set between two masters, the leader's fence, and state over ZooKeeper's 1 MB limit."""

from __future__ import annotations

import pytest

from emporion.testing.zookeeper import ZooKeeperCluster
from master.registry import RegistryConflictError, RemoveAgent, UpdateWeights
from master.registry.zookeeper import Fence, ZnodeStore, ZooKeeperRegistry
from protos.leader import KazooZnodeStore, ZooKeeperContender
from tests.zk.conftest import ClientFactory, wait_until
from tests.zk.samples import every_kind, many_agents

pytestmark = pytest.mark.zk


def registry(
    zk_server: ZooKeeperCluster,
    clients: ClientFactory,
    path: str,
    *,
    fence: Fence = None,
    compression_level: int = 6,
    max_deltas: int = 1000,
) -> ZooKeeperRegistry:
    """A registry at ``<path>/registry`` on a client of its own (a master of its own)."""
    store: ZnodeStore = KazooZnodeStore(clients(zk_server.hosts))
    return ZooKeeperRegistry(
        store,
        f"{path}/registry",
        fence=fence,
        compression_level=compression_level,
        max_deltas=max_deltas,
    )


def test_round_trip_and_reload_after_a_restart(
    zk_server: ZooKeeperCluster, zk_clients: ClientFactory, zk_path: str
) -> None:
    first = registry(zk_server, zk_clients, zk_path)
    assert first.load().version == 0
    assert first.apply(every_kind()) == 1
    assert first.apply([UpdateWeights({"ops": 0.5})]) == 2
    state = first.load()

    # A new master process: a new session, a new registry object.
    again = registry(zk_server, zk_clients, zk_path).load()
    assert again == state
    assert again.weights == {"eng": 2.0, "ops": 0.5}
    assert again.frameworks["F2"].failover_deadline == 80.0


def test_the_master_with_the_stale_version_is_refused_and_changes_nothing(
    zk_server: ZooKeeperCluster, zk_clients: ClientFactory, zk_path: str
) -> None:
    registry(zk_server, zk_clients, zk_path).apply(every_kind())
    old = registry(zk_server, zk_clients, zk_path)
    new = registry(zk_server, zk_clients, zk_path)
    old.load()
    new.load()
    new.apply([UpdateWeights({"eng": 5.0})])
    observer = zk_clients(zk_server.hosts)
    before = observer.get(f"{zk_path}/registry")

    with pytest.raises(RegistryConflictError, match="deposed"):
        old.apply([RemoveAgent("S1")])
    after = observer.get(f"{zk_path}/registry")
    assert after[0] == before[0]
    assert after[1].version == before[1].version
    assert registry(zk_server, zk_clients, zk_path).load().weights == {"eng": 5.0}


def test_a_leader_whose_session_ended_cannot_write(
    zk_server: ZooKeeperCluster, zk_clients: ClientFactory, zk_path: str
) -> None:
    contender_client = zk_clients(zk_server.hosts)
    contender = ZooKeeperContender(contender_client, zk_path, b'{"id": "m1"}')
    contender.start()
    wait_until(lambda: contender.leading, "the contender to lead")
    fenced = registry(zk_server, zk_clients, zk_path, fence=lambda: contender.node)
    fenced.apply([UpdateWeights({"a": 1.0})])

    fence = contender.node
    contender_client.stop()  # The session ends: the candidate znode is deleted.
    wait_until(lambda: not contender.leading, "the contender to stop leading")
    fenced.fence = fence  # As if the master had not yet heard: ZooKeeper still refuses.
    with pytest.raises(RegistryConflictError, match="is gone"):
        fenced.apply([UpdateWeights({"a": 2.0})])
    fenced.fence = lambda: contender.node
    with pytest.raises(RegistryConflictError, match="not leading"):
        fenced.apply([UpdateWeights({"a": 3.0})])
    assert registry(zk_server, zk_clients, zk_path).load().weights == {"a": 1.0}


def test_state_over_a_megabyte_round_trips_in_chunks(
    zk_server: ZooKeeperCluster, zk_clients: ClientFactory, zk_path: str
) -> None:
    big = registry(zk_server, zk_clients, zk_path, compression_level=1, max_deltas=0)
    big.apply(many_agents(1500, noise_bytes=1400))
    assert big.last_write_bytes > 1024 * 1024  # More than one znode may hold.
    observer = zk_clients(zk_server.hosts)
    parts = observer.get_children(f"{zk_path}/registry")
    assert len(parts) == 2

    loaded = registry(zk_server, zk_clients, zk_path).load()
    assert len(loaded.agents) == 1500
    assert loaded == big.load()

    big.apply([RemoveAgent(f"agent-{i:06d}") for i in range(1500)])
    assert observer.get_children(f"{zk_path}/registry") == []
    assert registry(zk_server, zk_clients, zk_path).load().agents == {}
