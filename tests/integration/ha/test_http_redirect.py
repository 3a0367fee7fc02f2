"""The HTTP API under ``--zk``: followers redirect (307) to the leader, 503 without one.

Real ``python -m master --zk --http-port 0`` processes and a real ZooKeeper server; each
master publishes its ``http_address`` in its candidate znode.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from emporion.testing.master_processes import ZkMaster, probe
from protos.leader_info import parse_zk_url
from protos.leader_zk import zookeeper_client
from tests.integration.ha.conftest import MasterFactory, wait_one_leader, wait_until

pytestmark = pytest.mark.zk

NO_LEADER = {"detail": "no leading master is known"}


def get(master: ZkMaster, path: str, *, follow: bool = False) -> httpx.Response:
    """GET ``path`` from ``master``'s HTTP API (following redirects if ``follow``)."""
    return httpx.get(f"http://{master.http_address}{path}", follow_redirects=follow, timeout=10)


def location(master: ZkMaster, path: str) -> str | None:
    """Where ``master`` redirects ``path`` (None if it does not answer 307)."""
    response = get(master, path)
    return response.headers["location"] if response.status_code == 307 else None


def test_followers_redirect_to_the_leader_then_to_its_successor(
    zk_masters: MasterFactory,
) -> None:
    masters = zk_masters(3)
    leader = wait_one_leader(masters)
    followers = [m for m in masters if m is not leader]
    assert len({m.http_address for m in masters}) == 3

    state = get(leader, "/master/state?x=y")
    assert state.status_code == 200
    assert state.json()["id"] == leader.master_id
    assert location(leader, "/master/redirect") == f"http://{leader.http_address}/"
    for follower in followers:
        assert location(follower, "/master/state?x=y") == (
            f"http://{leader.http_address}/master/state?x=y"
        )
        assert location(follower, "/master/redirect") == f"http://{leader.http_address}/"
        assert get(follower, "/health").json() == {"healthy": True, "leading": False}
        assert get(follower, "/metrics/snapshot").json()["master/elected"] == 0.0
        followed = get(follower, "/master/tasks?limit=5", follow=True)
        assert followed.status_code == 200
        assert followed.url.port == leader.http_port

    leader.stop(signal.SIGKILL)
    successor = wait_one_leader(followers)
    [survivor] = [m for m in followers if m is not successor]
    state = get(successor, "/master/state")
    assert state.status_code == 200
    assert state.json()["id"] == successor.master_id
    assert get(successor, "/metrics/snapshot").json()["master/elected"] == 1.0
    wanted = f"http://{successor.http_address}/master/frameworks?framework_id=f"
    wait_until(
        lambda: location(survivor, "/master/frameworks?framework_id=f") == wanted,
        "the survivor to redirect to the new leader",
    )


@pytest.fixture
def foreign_leader(zk_url: str) -> Iterator[Any]:
    """A leading candidate written as Mesos writes it (no ``http_address``), lowest sequence:
    it leads while this fixture's kazoo client (yielded) keeps its session."""
    url = parse_zk_url(zk_url)
    client = zookeeper_client(url, session_timeout=2.0)
    client.start(timeout=15)
    info = {
        "id": "mesos-master-1",
        "hostname": "127.0.0.1",
        "port": 1,
        "pid": "master@127.0.0.1:1",
        "version": "1.11.0",
        "address": {"hostname": "127.0.0.1", "ip": "127.0.0.1", "port": 1},
    }
    client.create(
        f"{url.path}/json.info_",
        json.dumps(info).encode(),
        ephemeral=True,
        sequence=True,
        makepath=True,
    )
    try:
        yield client
    finally:
        client.stop()
        client.close()


def test_a_leader_without_an_http_address_gets_503_until_one_with_it_leads(
    zk_masters: MasterFactory, foreign_leader: Any
) -> None:
    [master] = zk_masters(1)
    wait_until(lambda: probe(master.address).leader == "127.0.0.1:1", "the foreign leader")
    assert get(master, "/health").json() == {"healthy": True, "leading": False}
    for path in ("/master/state", "/master/roles", "/master/redirect"):
        response = get(master, path)
        assert (response.status_code, response.json()) == (503, NO_LEADER)

    foreign_leader.stop()  # its session ends: its candidate znode goes
    wait_until(lambda: get(master, "/master/state").status_code == 200, "the master to lead")
    assert location(master, "/master/redirect") == f"http://{master.http_address}/"
