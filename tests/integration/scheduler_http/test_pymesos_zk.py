"""Discovery as Mesos does it: the candidate znode sends Mesos clients to the HTTP port, and
pymesos given ``zk://`` follows the leader across a leader kill (real ZooKeeper, masters and an
agent as processes)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from emporion.testing.master_processes import ZkMaster
from protos.leader_info import leader_from_json, parse_zk_url
from tests.integration.agent.support import AgentProcess
from tests.integration.ha.conftest import MasterFactory, wait_one_leader, wait_until
from tests.integration.scheduler_http.test_pymesos import ROOT, SCRIPT

pytestmark = pytest.mark.zk


def candidates(zk_url: str) -> dict[str, bytes]:
    url = parse_zk_url(zk_url)
    client = KazooClient(hosts=url.connect_string)
    client.start(timeout=30)
    try:
        names = [n for n in client.get_children(url.path) if n.startswith("json.info_")]
        return {name: client.get(f"{url.path}/{name}")[0] for name in names}
    finally:
        client.stop()
        client.close()


def test_the_candidate_znode_names_the_http_port_for_mesos_clients(
    zk_url: str, zk_masters: MasterFactory
) -> None:
    master = wait_one_leader(zk_masters(1))
    ((_name, data),) = candidates(zk_url).items()
    document = json.loads(data)
    # What pymesos reads (address.ip, address.port) and Mesos's own fields: the HTTP port.
    assert document["address"] == {
        "ip": "127.0.0.1",
        "hostname": "127.0.0.1",
        "port": master.http_port,
    }
    assert document["port"] == master.http_port
    assert document["pid"] == f"master@127.0.0.1:{master.http_port}"
    # What Emporion's SDK and agents read: the gRPC address, beside it.
    leader = leader_from_json(data)
    assert leader.grpc_address == master.address
    assert leader.http_address == master.http_address


def test_pymesos_through_zk_follows_a_leader_kill(
    zk_url: str, zk_masters: MasterFactory, tmp_path: Path
) -> None:
    masters = zk_masters(3)
    first = wait_one_leader(masters)
    agent = AgentProcess(zk_url, tmp_path / "agent", ("--zk-session-timeout", "2s"), "posix")
    log = (tmp_path / "pymesos.log").open("w+")
    try:
        release = tmp_path / "release"
        command = f"while [ ! -e {release} ]; do sleep 0.1; done"
        scheduler = subprocess.Popen(
            [sys.executable, str(SCRIPT), zk_url, "2", command],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        try:
            wait_until(
                lambda: (tmp_path / "pymesos.log").read_text().count("TASK_RUNNING") >= 2,
                "both tasks running",
                60,
            )
            first.stop(signal.SIGKILL)
            rest: list[ZkMaster] = [m for m in masters if m is not first]
            second = wait_one_leader(rest)
            # The tasks end now: their TASK_FINISHED reaches pymesos only through the new
            # leader, which pymesos finds in ZooKeeper (the old one is dead).
            release.touch()
            out, _ = scheduler.communicate(timeout=120)
        finally:
            if scheduler.poll() is None:
                scheduler.kill()
                scheduler.communicate()
        assert scheduler.returncode == 0, (tmp_path / "pymesos.log").read_text()[-4000:]
        summary = json.loads(out.strip().splitlines()[-1])
        assert summary["finished"] == 2
        # pymesos failed over to the new leader's HTTP port, as it does with Mesos.
        assert summary["master_info"]["port"] == second.http_port
    finally:
        log.close()
        agent.stop()
