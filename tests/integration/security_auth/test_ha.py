"""TLS and authentication with three masters on ZooKeeper: the leader's znode says ``https``,
the SDK follows it over TLS with its credential, and after the leader is killed the new leader
still knows who owns the framework (its principal is in the registry) and refuses a takeover.
"""

from __future__ import annotations

import asyncio
import signal

import grpc
import httpx
import pytest

from emporion.testing.master_processes import ZkMaster
from framework_sdk import ClientConfig
from framework_sdk.aio import SchedulerClient
from protos.leader_info import LeaderInfo, candidates, leader_from_json, parse_zk_url
from protos.leader_zk import zookeeper_client
from protos.security import basic_header
from protos.v1 import mesos_pb2
from tests.integration.ha.conftest import WAIT, MasterFactory
from tests.integration.security_auth.support import SECRETS, Secured, credential, scheduler
from tests.integration.security_auth.test_penetration import framework, subscribe_refusal

pytestmark = pytest.mark.zk

CONFIG = ClientConfig(backoff_initial_seconds=0.05, backoff_max_seconds=0.5)


def secured_flags(secured: Secured) -> tuple[str, ...]:
    d = secured.directory
    return (
        "--registry", "zookeeper",
        "--tls-cert", str(d / "server.pem"), "--tls-key", str(d / "server-key.pem"),
        "--tls-ca", str(secured.ca),
        "--authenticate-frameworks", "--authenticate-agents",
        "--authenticate-http-readonly", "--authenticate-http-readwrite",
        "--credentials", str(secured.credentials), "--acls", str(secured.acls),
    )  # fmt: skip


def leader_info(zk_url: str) -> LeaderInfo:
    url = parse_zk_url(zk_url)
    zk = zookeeper_client(url, session_timeout=5.0)
    zk.start(timeout=WAIT)
    try:
        first = candidates(zk.get_children(url.path))[0]
        data, _ = zk.get(f"{url.path}/{first}")
        return leader_from_json(data, first)
    finally:
        zk.stop()
        zk.close()


def test_tls_and_credentials_survive_a_failover(
    secured: Secured, zk_url: str, zk_masters: MasterFactory
) -> None:
    masters = zk_masters(3, extra_args=secured_flags(secured))
    first = leader_info(zk_url)
    assert first.scheme == "https"
    by_address = {m.address: m for m in masters}
    # A follower sends HTTP clients to the leader over https, after authenticating them.
    follower = next(m for m in masters if m.address != first.grpc_address)
    with httpx.Client(verify=secured.tls().client_ssl_context(), trust_env=False) as http:
        url = f"https://127.0.0.1:{follower.http_port}/master/redirect"
        assert http.get(url).status_code == 401
        viewer = {"Authorization": basic_header("viewer", SECRETS["viewer"])}
        moved = http.get(url, headers=viewer)
        assert moved.status_code == 307
        assert moved.headers["location"] == f"https://{first.http_address}/"

    async def main() -> None:
        client = SchedulerClient(
            zk_url,
            framework("a"),
            config=CONFIG,
            credential=mesos_pb2.Credential(principal="framework-a", secret="secret-a"),
            tls=secured.tls(),
        )
        async with client:
            framework_id = client.framework_id
            assert framework_id is not None
            assert client.master_address == first.grpc_address
            leader: ZkMaster = by_address[first.grpc_address]
            leader.send(signal.SIGKILL)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + WAIT
            while client.master_address == first.grpc_address or not client.subscribed:
                assert loop.time() < deadline, "no resubscription to a new leader"
                await asyncio.sleep(0.05)
            assert client.framework_id == framework_id
            second = leader_info(zk_url)
            assert second.scheme == "https"
            assert second.grpc_address == client.master_address
            # The new leader learnt the owner from the registry: the takeover is refused.
            attacker = await scheduler(
                second.grpc_address, secured.tls(), credential("framework-b")
            )
            info = framework("b")
            error = await subscribe_refusal(attacker, info, framework_id.value)
            assert error.code() == grpc.StatusCode.PERMISSION_DENIED
            assert f"framework {framework_id.value} belongs to principal 'framework-a'" in (
                error.details() or ""
            )
            await attacker.close()
            # A client without credentials is refused by the new leader too.
            anonymous = await scheduler(second.grpc_address, secured.tls(), None)
            error = await subscribe_refusal(anonymous, framework("a"))
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED
            await anonymous.close()
            assert client.subscribed

    asyncio.run(main())
