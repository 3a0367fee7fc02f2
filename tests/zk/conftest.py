"""Fixtures: real ZooKeeper servers shared per module, a fresh znode path per test, clients.

``zk_server`` is one standalone server and ``zk_ensemble`` three servers, each started once per
test module (a test that kills or pauses a node brings it back before it ends). ``zk_path`` is
a znode path no other test uses, so tests sharing a server never see each other's znodes.
``zk_clients`` makes kazoo clients and stops every one of them after the test.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from kazoo.client import KazooClient

from emporion.testing.zookeeper import ZooKeeperCluster, ZooKeeperUnavailableError
from protos.leader import zookeeper_client

WAIT = 30.0
"""How long a test waits for something that should happen (a bound, not an expectation)."""


def wait_until(predicate: Callable[[], object], what: str, timeout: float = WAIT) -> None:
    """Poll ``predicate`` until true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.02)


def _cluster(size: int) -> Iterator[ZooKeeperCluster]:
    try:
        cluster = ZooKeeperCluster(size)
    except ZooKeeperUnavailableError as error:
        pytest.skip(f"ZooKeeper unavailable: {error}")
    try:
        try:
            cluster.start()
        except ZooKeeperUnavailableError as error:
            pytest.skip(f"ZooKeeper would not start: {error}")
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def zk_server() -> Iterator[ZooKeeperCluster]:
    """One standalone ZooKeeper server for the module."""
    yield from _cluster(1)


@pytest.fixture(scope="module")
def zk_ensemble() -> Iterator[ZooKeeperCluster]:
    """A three-server ZooKeeper ensemble for the module."""
    yield from _cluster(3)


@pytest.fixture
def zk_path() -> str:
    """A znode path of this test's own."""
    return f"/emporion-test-{uuid.uuid4().hex[:12]}"


ClientFactory = Callable[..., KazooClient]


@pytest.fixture
def zk_clients() -> Iterator[ClientFactory]:
    """``zk_clients(hosts, session_timeout=2.0, start=True)``: a kazoo client, stopped after."""
    made: list[KazooClient] = []

    def make(hosts: str, session_timeout: float = 2.0, start: bool = True) -> KazooClient:
        client = zookeeper_client(
            f"zk://{hosts}/unused", session_timeout=session_timeout, reconnect_max_delay=0.2
        )
        made.append(client)
        if start:
            client.start(timeout=WAIT)
        return client

    yield make
    for client in made:
        client.stop()
        client.close()
