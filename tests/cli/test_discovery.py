"""Finding a master's HTTP API from what frameworks are given: ``HOST:PORT``, ``zk://``, ``http://``.

Against real masters: the gRPC port answers ``/emporion.Discovery/MasterInfo``; the HTTP port
given by mistake still works; a master without HTTP says so; under ``--zk`` the leader's znode
names both addresses.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from emporion.cli import main
from emporion.client import UsageError, discover
from emporion.local_cluster import LocalCluster
from emporion.testing.zookeeper import ZooKeeperCluster, ZooKeeperUnavailableError


def test_the_grpc_port_names_the_http_api(cluster: LocalCluster) -> None:
    assert cluster.master_address is not None
    found = discover(cluster.master_address)
    assert found.http == cluster.master_http_address
    assert found.grpc == cluster.master_address
    assert found.given == cluster.master_address


def test_the_http_port_works_as_host_port_and_as_a_url(cluster: LocalCluster) -> None:
    http = cluster.master_http_address
    assert http is not None
    by_mistake = discover(http)
    assert by_mistake.grpc == cluster.master_address
    assert by_mistake.http == http
    as_url = discover(f"http://{http}/")
    assert (as_url.grpc, as_url.http) == (cluster.master_address, http)
    assert as_url.master_id == by_mistake.master_id == discover(http).master_id


def test_a_master_without_http_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    with LocalCluster(agents=0, http_port=None) as bare:
        assert bare.master_address is not None
        with pytest.raises(UsageError, match="serves no HTTP API"):
            discover(bare.master_address)
        assert main(["agents", "--master", bare.master_address]) == 2
    assert "started with --http-port off" in capsys.readouterr().err


@pytest.fixture(scope="module")
def zookeeper() -> Iterator[ZooKeeperCluster]:
    try:
        server = ZooKeeperCluster(1)
        server.start()
    except ZooKeeperUnavailableError as error:
        pytest.skip(f"ZooKeeper unavailable: {error}")
    try:
        yield server
    finally:
        server.close()


@pytest.mark.zk
def test_zk_finds_the_leader_and_a_follower_leads_to_it(
    zookeeper: ZooKeeperCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    url = zookeeper.url(f"/cli-{uuid.uuid4().hex[:8]}")
    with LocalCluster(
        agents=1,
        isolation="posix",
        agent_resources="cpus:1;mem:256",
        master_flags=("--zk", url),
    ) as leader:
        found = discover(url, timeout=30.0)
        assert found.http == leader.master_http_address
        assert found.grpc == url  # frameworks follow the leader through ZooKeeper themselves
        with LocalCluster(agents=0, master_flags=("--zk", url)) as follower:
            assert follower.master_address is not None
            # Given the follower, the commands end up at the leader (its HTTP API redirects).
            capsys.readouterr()
            assert main(["status", "--master", follower.master_address, "--json"]) == 0
            doc = json.loads(capsys.readouterr().out)
            # run too: the scheduler API and the sandbox reads both reach the leader.
            command = ["run", "--master", follower.master_address, "--", "echo", "via follower"]
            assert main(command) == 0
            assert capsys.readouterr().out == "via follower\n"
    assert doc["leader"]["address"] == leader.master_address
    assert doc["leader"]["http_address"] == leader.master_http_address


def test_tls_and_credentials_come_from_the_sdks_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    certs = tmp_path / "certs"
    assert main(["certs", "--out", str(certs)]) == 0
    credentials = tmp_path / "credentials.json"
    credentials.write_text(json.dumps({"credentials": [{"principal": "ops", "secret": "s3"}]}))
    flags = (
        "--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server-key.pem"),
        "--authenticate-http-readwrite", "--credentials", str(credentials),
    )  # fmt: skip
    with LocalCluster(agents=0, master_flags=flags) as secured:
        address = secured.master_address
        assert address is not None
        capsys.readouterr()
        # Plain gRPC to a TLS port: unreachable, in one line.
        assert main(["status", "--master", address]) == 2
        assert capsys.readouterr().err.startswith("emporion status: cannot reach the master at")
        monkeypatch.setenv("EMPORION_SDK_TLS_CA", str(certs / "ca.pem"))
        assert main(["status", "--master", address]) == 2  # TLS, but no credentials
        assert "asks for credentials" in capsys.readouterr().err
        monkeypatch.setenv("EMPORION_SDK_PRINCIPAL", "ops")
        monkeypatch.setenv("EMPORION_SDK_SECRET", "s3")
        assert main(["status", "--master", address, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["leader"]["address"] == address
