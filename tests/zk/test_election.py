"""Leader election and detection against a real ZooKeeper server.

Three contenders: the oldest leads, the next takes over when the leader's session ends or it
withdraws. A contender whose connection drops stops leading at once (SUSPENDED), and after its
session expires contends again with a new znode; two contenders never lead at the same time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from kazoo.client import KazooClient

from emporion.testing.zookeeper import ZooKeeperCluster
from protos.leader import (
    LeaderInfo,
    Leadership,
    ZooKeeperContender,
    ZooKeeperDetector,
    master_info_json,
)
from protos.leader_info import candidates, leader_from_json
from protos.v1 import mesos_pb2
from tests.zk.conftest import ClientFactory, wait_until
from tests.zk.proxy import TcpProxy

pytestmark = pytest.mark.zk


def candidate_data(name: str, port: int) -> bytes:
    info = mesos_pb2.MasterInfo(id=name, hostname="127.0.0.1", port=port)
    info.address.ip = "127.0.0.1"
    info.address.port = port
    return master_info_json(info)


class Timeline:
    """Every role change of every contender, in the order they happened."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Leadership]] = []
        self.overlap_allowed = False
        self._lock = threading.Lock()

    def follow(self, name: str, contender: ZooKeeperContender) -> None:
        def record(change: Leadership) -> None:
            with self._lock:
                self.events.append((name, change))

        contender.add_listener(record)

    def of(self, name: str) -> list[Leadership]:
        with self._lock:
            return [change for who, change in self.events if who == name]

    def never_two_leaders(self) -> None:
        if self.overlap_allowed:
            return
        leading: set[str] = set()
        with self._lock:
            events = list(self.events)
        for name, change in events:
            if change.leading:
                assert not leading, f"{name} elected while {leading} still led: {events}"
                leading.add(name)
            else:
                leading.discard(name)


@pytest.fixture
def timeline() -> Iterator[Timeline]:
    timeline = Timeline()
    yield timeline
    timeline.never_two_leaders()


class Contenders:
    """Contenders made for one test, each on its own client; withdrawn after the test."""

    def __init__(self, hosts: str, path: str, clients: ClientFactory, timeline: Timeline) -> None:
        self.hosts = hosts
        self.path = path
        self.clients = clients
        self.timeline = timeline
        self.made: list[ZooKeeperContender] = []

    def add(
        self, name: str, *, hosts: str | None = None, session_timeout: float = 2.0
    ) -> ZooKeeperContender:
        client = self.clients(hosts or self.hosts, session_timeout=session_timeout)
        contender = ZooKeeperContender(
            client, self.path, candidate_data(name, 5050 + len(self.made))
        )
        self.timeline.follow(name, contender)
        self.made.append(contender)
        contender.start()
        wait_until(lambda: contender.node is not None, f"{name}'s candidate znode")
        return contender


@pytest.fixture
def contenders(
    zk_server: ZooKeeperCluster, zk_path: str, zk_clients: ClientFactory, timeline: Timeline
) -> Iterator[Contenders]:
    made = Contenders(zk_server.hosts, zk_path, zk_clients, timeline)
    yield made
    for contender in made.made:
        contender.withdraw()


def leaders(made: Contenders) -> list[bool]:
    return [c.leading for c in made.made]


def test_the_oldest_of_three_leads_and_the_next_takes_over(
    contenders: Contenders, timeline: Timeline, zk_clients: ClientFactory
) -> None:
    a = contenders.add("a")
    b = contenders.add("b")
    c = contenders.add("c")
    wait_until(lambda: leaders(contenders) == [True, False, False], "a to lead alone")
    assert a.node is not None
    assert b.node is not None
    assert c.node is not None
    assert a.node < b.node < c.node
    b_node = b.node
    assert a.term == 1

    # The znodes are Mesos's: json.info_NNNNNNNNNN holding MasterInfo JSON.
    observer: KazooClient = zk_clients(contenders.hosts)
    names = candidates(observer.get_children(contenders.path))
    assert [f"{contenders.path}/{n}" for n in names] == [a.node, b.node, c.node]
    data, _ = observer.get(a.node)
    assert leader_from_json(data).master_id == "a"

    a.client.stop()  # a's session ends: its znode goes, b (watching it) leads.
    wait_until(lambda: leaders(contenders) == [False, True, False], "b to lead alone")
    assert timeline.of("a") == [
        Leadership(True, "json.info_0000000000 is the lowest candidate", 1),
        Leadership(False, "ZooKeeper session lost", 1),
    ]

    b.withdraw()
    wait_until(lambda: leaders(contenders) == [False, False, True], "c to lead alone")
    assert timeline.of("b")[-1] == Leadership(False, "withdrew", 1)
    assert observer.exists(b_node) is None


def test_a_leader_whose_link_drops_stops_leading_at_once_and_resumes_in_a_new_term(
    zk_server: ZooKeeperCluster, contenders: Contenders, timeline: Timeline
) -> None:
    proxy = TcpProxy(zk_server.node(1).client_port)
    try:
        a = contenders.add("a", hosts=proxy.address, session_timeout=6.0)
        wait_until(lambda: a.leading, "a to lead")
        node = a.node

        proxy.cut()
        wait_until(lambda: not a.leading, "a to stop leading on SUSPENDED")
        assert timeline.of("a")[-1] == Leadership(False, "ZooKeeper connection suspended", 1)

        proxy.restore()  # Back within the session: the same znode, a new term.
        wait_until(lambda: a.leading, "a to lead again")
        assert a.node == node
        assert timeline.of("a")[-1].term == 2
    finally:
        for contender in contenders.made:
            contender.withdraw()
        proxy.close()


def test_after_its_session_expires_a_cut_off_leader_contends_again_behind_the_new_one(
    zk_server: ZooKeeperCluster, contenders: Contenders, timeline: Timeline
) -> None:
    proxy = TcpProxy(zk_server.node(1).client_port)
    try:
        a = contenders.add("a", hosts=proxy.address, session_timeout=1.0)
        b = contenders.add("b")
        wait_until(lambda: leaders(contenders) == [True, False], "a to lead")
        old_node = a.node

        proxy.cut()  # a is partitioned: not leading now, and its session expires on the server.
        wait_until(lambda: b.leading, "b to lead once a's session expired")
        assert not a.leading

        proxy.restore()  # a hears LOST, gets a new session and contends again, behind b.
        wait_until(lambda: a.node is not None and a.node != old_node, "a's new candidate znode")
        assert a.node is not None
        assert b.node is not None
        assert a.node > b.node
        assert [c.reason for c in timeline.of("a")] == [
            "json.info_0000000000 is the lowest candidate",
            "ZooKeeper connection suspended",
        ]
        assert leaders(contenders) == [False, True]
    finally:
        for contender in contenders.made:
            contender.withdraw()
        proxy.close()


def test_session_expiry_forced_by_a_second_client_ends_leadership(
    zk_server: ZooKeeperCluster, contenders: Contenders, timeline: Timeline
) -> None:
    a = contenders.add("a")
    b = contenders.add("b")
    wait_until(lambda: a.leading, "a to lead")
    old_node = a.node

    # The standard ZooKeeper test trick: open a's session from another client and close it.
    intruder = KazooClient(zk_server.hosts, client_id=a.client.client_id)
    try:
        intruder.start(timeout=30)
    finally:
        intruder.stop()  # Closing the session ends it for a's client too.
        intruder.close()

    wait_until(lambda: b.leading, "b to lead")
    wait_until(lambda: a.node is not None and a.node != old_node, "a to contend again")
    assert not a.leading
    lost = timeline.of("a")[-1]
    assert not lost.leading
    assert lost.term == 1


def test_a_leader_whose_znode_is_deleted_steps_down_and_contends_again(
    contenders: Contenders, zk_clients: ClientFactory, timeline: Timeline
) -> None:
    # The watches of a and b fire independently: b may lead before a hears its znode went.
    # Only a session's end guarantees the order (the registry's fence covers this case).
    timeline.overlap_allowed = True
    a = contenders.add("a")
    b = contenders.add("b")
    wait_until(lambda: a.leading, "a to lead")
    old = a.node
    assert old is not None
    zk_clients(contenders.hosts).delete(old)  # An operator removes it.
    wait_until(lambda: b.leading and a.node not in (None, old), "b to lead, a to re-contend")
    assert not a.leading


def test_detector_follows_the_leader_and_reports_none_without_candidates(
    contenders: Contenders, zk_clients: ClientFactory
) -> None:
    detector = ZooKeeperDetector(zk_clients(contenders.hosts), contenders.path)
    seen: list[LeaderInfo | None] = []
    detector.add_listener(seen.append)
    detector.start()
    try:
        wait_until(lambda: seen == [None], "the detector's first look (no path yet)")

        a = contenders.add("a")
        wait_until(lambda: detector.leader is not None, "a to be detected")
        assert detector.leader is not None
        assert detector.leader.master_id == "a"
        assert detector.leader.grpc_address == "127.0.0.1:5050"
        assert detector.leader.node == (a.node or "").rsplit("/", 1)[1]

        contenders.add("b")
        a.withdraw()
        wait_until(
            lambda: detector.leader is not None and detector.leader.master_id == "b", "b detected"
        )
        contenders.made[1].withdraw()
        wait_until(lambda: detector.leader is None, "no leader")
        assert [x.master_id if x else None for x in seen] == [None, "a", "b", None]
    finally:
        detector.close()


def test_an_unusable_leader_is_reported_as_none(
    contenders: Contenders, zk_clients: ClientFactory
) -> None:
    client = zk_clients(contenders.hosts)
    client.create(f"{contenders.path}/json.info_", b"\x08\x01binary", sequence=True, makepath=True)
    detector = ZooKeeperDetector(client, contenders.path)
    seen: list[LeaderInfo | None] = []
    detector.add_listener(seen.append)
    detector.start()
    try:
        contenders.add("a")  # Behind the garbage: not the leader.
        wait_until(lambda: len(seen) >= 1, "the detector's first look")
        assert detector.leader is None
    finally:
        detector.close()


def test_a_candidacy_whose_create_answer_was_lost_is_adopted_not_doubled(
    zk_server: ZooKeeperCluster, zk_path: str, zk_clients: ClientFactory
) -> None:
    client = zk_clients(zk_server.hosts)
    data = candidate_data("a", 5050)
    # What a create leaves behind when the connection drops before its answer arrives.
    orphan = client.create(
        f"{zk_path}/json.info_", data, ephemeral=True, sequence=True, makepath=True
    )
    contender = ZooKeeperContender(client, zk_path, data)
    contender.start()
    try:
        wait_until(lambda: contender.leading, "the contender to lead")
        assert contender.node == orphan
        assert client.get_children(zk_path) == [orphan.rsplit("/", 1)[1]]
    finally:
        contender.withdraw()
