"""Fixtures: one real ZooKeeper server per module, a znode path per test, masters stopped after.

``zk_masters(n, session_timeout=...)`` starts ``n`` masters under the test's own ``zk://`` path
and kills whatever still runs after the test.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from emporion.testing.master_processes import ZkMaster, probe
from emporion.testing.zookeeper import ZooKeeperCluster, ZooKeeperUnavailableError
from protos.leader_info import parse_zk_url

WAIT = 30.0
"""How long a test waits for something that should happen (a bound, not an expectation)."""


def wait_until(predicate: Callable[[], object], what: str, timeout: float = WAIT) -> None:
    """Poll ``predicate`` until true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


def leaders(masters: list[ZkMaster]) -> list[ZkMaster]:
    """The running, unfrozen masters that answer as the leader."""
    return [
        m for m in masters if m.process is not None and not m.paused and probe(m.address).leading
    ]


def wait_one_leader(masters: list[ZkMaster], timeout: float = WAIT) -> ZkMaster:
    """Wait until exactly one of ``masters`` leads and the others (running, not frozen) name
    it in their refusals (each learns of the leader from ZooKeeper in its own time); that one."""
    found: list[ZkMaster] = []

    def one() -> bool:
        live = [m for m in masters if m.process is not None and not m.paused]
        answers = {m.name: probe(m.address) for m in live}
        found[:] = [m for m in live if answers[m.name].leading]
        return len(found) == 1 and all(
            answers[m.name].leader == found[0].address for m in live if m is not found[0]
        )

    wait_until(one, "exactly one leading master", timeout)
    return found[0]


@pytest.fixture(scope="module")
def zk_server() -> Iterator[ZooKeeperCluster]:
    """One standalone ZooKeeper server for the module."""
    try:
        cluster = ZooKeeperCluster(1)
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


@pytest.fixture
def zk_url(zk_server: ZooKeeperCluster) -> str:
    """A ``zk://`` URL with a znode path of this test's own."""
    url = zk_server.url(f"/emporion-ha-{uuid.uuid4().hex[:12]}")
    parse_zk_url(url)
    return url


MasterFactory = Callable[..., list[ZkMaster]]


@pytest.fixture
def zk_masters(zk_url: str, tmp_path: Path) -> Iterator[MasterFactory]:
    """``zk_masters(n, session_timeout=2.0)``: ``n`` started masters; all killed after."""
    made: list[ZkMaster] = []

    def make(count: int, session_timeout: float = 2.0, **kwargs: object) -> list[ZkMaster]:
        masters = [
            ZkMaster(
                zk_url,
                tmp_path,
                session_timeout=session_timeout,
                name=f"master{len(made) + i}",
                **kwargs,  # type: ignore[arg-type]
            )
            for i in range(count)
        ]
        made.extend(masters)
        for master in masters:
            master.start()
        return masters

    yield make
    for master in made:
        master.close()
