"""A three-node ZooKeeper ensemble: losing (or freezing) one node does not stop the election,
the detectors or the registry. Each test brings the node back before it ends."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from emporion.testing.zookeeper import ZooKeeperCluster
from master.registry import UpdateWeights
from master.registry.zookeeper import ZooKeeperRegistry
from protos.leader import (
    KazooZnodeStore,
    LeaderInfo,
    Leadership,
    ZooKeeperContender,
    ZooKeeperDetector,
    master_info_json,
)
from protos.v1 import mesos_pb2
from tests.zk.conftest import ClientFactory, wait_until

pytestmark = pytest.mark.zk

SESSION = 6.0  # Long enough to ride out the ensemble electing a new leader among two.


class Cluster:
    """Two contending masters, a detector and a registry, each on its own ZooKeeper session."""

    def __init__(self, ensemble: ZooKeeperCluster, clients: ClientFactory, path: str) -> None:
        self.ensemble = ensemble
        self.path = path
        self.changes: list[tuple[str, Leadership]] = []
        self._lock = threading.Lock()
        self.masters = [self._master(name, clients) for name in ("a", "b")]
        self.detector = ZooKeeperDetector(clients(ensemble.hosts, SESSION), path)
        self.detector.start()
        self.registry_client = clients(ensemble.hosts, SESSION)
        self.registry = ZooKeeperRegistry(KazooZnodeStore(self.registry_client), f"{path}/registry")

    def _master(self, name: str, clients: ClientFactory) -> ZooKeeperContender:
        info = mesos_pb2.MasterInfo(id=name, hostname="127.0.0.1", port=5050)
        data = master_info_json(info, grpc_address=f"127.0.0.1:{5050 + len(name)}")
        contender = ZooKeeperContender(clients(self.ensemble.hosts, SESSION), self.path, data)

        def record(change: Leadership) -> None:
            with self._lock:
                self.changes.append((name, change))

        contender.add_listener(record)
        contender.start()
        wait_until(lambda: contender.node is not None, f"{name}'s candidacy")
        return contender

    def leader_id(self) -> str | None:
        leader: LeaderInfo | None = self.detector.leader
        return leader.master_id if leader else None

    def never_two_leaders(self) -> None:
        leading: set[str] = set()
        with self._lock:
            changes = list(self.changes)
        for name, change in changes:
            if change.leading:
                assert not leading, f"{name} elected while {leading} led: {changes}"
                leading.add(name)
            else:
                leading.discard(name)

    def close(self) -> None:
        self.detector.close()
        for master in self.masters:
            master.withdraw()


@pytest.fixture
def cluster(
    zk_ensemble: ZooKeeperCluster, zk_clients: ClientFactory, zk_path: str
) -> Iterator[Cluster]:
    made = Cluster(zk_ensemble, zk_clients, zk_path)
    yield made
    made.close()
    made.never_two_leaders()


def test_one_zookeeper_node_of_three_lost_the_cluster_goes_on(
    zk_ensemble: ZooKeeperCluster, cluster: Cluster
) -> None:
    a, b = cluster.masters
    wait_until(lambda: a.leading and cluster.leader_id() == "a", "a to lead")
    cluster.registry.apply([UpdateWeights({"before": 1.0})])

    lost = zk_ensemble.leader_id()
    assert lost is not None
    zk_ensemble.kill(lost)  # The ensemble's own leader: the other two elect a new one.
    try:
        wait_until(lambda: zk_ensemble.leader_id() is not None, "a new ZooKeeper leader")
        # Sessions survive on the other servers; a leads on (perhaps in a new term).
        wait_until(lambda: a.leading and a.client.connected, "a to lead after the loss")
        wait_until(lambda: cluster.registry_client.connected, "the registry's session")
        cluster.registry.apply([UpdateWeights({"after": 1.0})])

        a.withdraw()  # Failover still works with two servers.
        wait_until(lambda: b.leading and cluster.leader_id() == "b", "b to lead")
        assert set(cluster.registry.load().weights) == {"before", "after"}
    finally:
        zk_ensemble.restart(lost)


def test_a_frozen_zookeeper_node_does_not_stop_a_failover(
    zk_ensemble: ZooKeeperCluster, cluster: Cluster
) -> None:
    a, b = cluster.masters
    wait_until(lambda: a.leading, "a to lead")
    session = b.client.client_id[0]
    frozen = next(n.myid for n in zk_ensemble.nodes if session in n.session_ids())
    zk_ensemble.pause(frozen)  # b's server: b's client times out and moves to another.
    try:
        a.withdraw()  # b hears of it once its session has moved (watches move with it).
        wait_until(lambda: b.leading and cluster.leader_id() == "b", "b to lead")
        live = [n for n in zk_ensemble.nodes if n.myid != frozen]

        def registry_on_a_live_server() -> bool:
            client_id = cluster.registry_client.client_id  # None while reconnecting.
            return client_id is not None and any(client_id[0] in n.session_ids() for n in live)

        wait_until(registry_on_a_live_server, "the registry's session on a live server")
        cluster.registry.apply([UpdateWeights({"during": 1.0})])
    finally:
        zk_ensemble.resume(frozen)
    wait_until(lambda: zk_ensemble.node(frozen).mode() in ("leader", "follower"), "it to rejoin")
