"""The HTTP API of a real standalone master: MasterServer in-process on port 0, real HTTP
(httpx over a socket), a real gRPC scheduler and agent giving it something to show; and
``python -m master`` processes for the flag and the startup line."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx

from emporion.local_cluster import LocalCluster
from master.http.scheduler_api.version import MESOS_VERSION
from master.runtime import MasterServer
from protos.resources import Resources
from protos.v1 import mesos_pb2
from tests.integration.master.clients import (
    Call,
    FakeAgent,
    Scheduler,
    quick_config,
    running_master,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[3]
LINE = re.compile(r"Emporion master (\S+) listening on (\S+) \(http (\S+)\)$")


def launch(offer: mesos_pb2.Offer, task_id: str) -> Call:
    """ACCEPT ``offer`` launching one cpus:1;mem:128 command task."""
    call = Call(type=Call.ACCEPT)
    call.accept.offer_ids.add().CopyFrom(offer.id)
    call.accept.filters.refuse_seconds = 0
    op = call.accept.operations.add(type=mesos_pb2.Offer.Operation.LAUNCH)
    task = op.launch.task_infos.add(name=task_id)
    task.task_id.value = task_id
    task.agent_id.CopyFrom(offer.agent_id)
    task.resources.extend(Resources.parse("cpus:1;mem:128").to_protos())
    task.command.value = "true"
    return call


async def get_json(client: httpx.AsyncClient, url: str, status: int = 200) -> Any:
    response = await client.get(url)
    assert response.status_code == status, f"{url}: {response.status_code} {response.text}"
    assert response.headers["content-type"] == "application/json"
    return response.json()


def test_every_endpoint_of_a_running_master() -> None:
    async def main() -> None:
        config = quick_config(http_port=0, weights={"eng": 3.0})
        async with running_master(config) as server:
            assert server.http_address is not None
            assert server.leader_http_address() == server.http_address
            agent, scheduler = FakeAgent(server.address), Scheduler(server.address)
            base = f"http://{server.http_address}"
            try:
                agent_id = await agent.register("cpus:2;mem:1024", hostname="node-1")
                info = mesos_pb2.FrameworkInfo(user="u", name="web", role="eng")
                framework_id = await scheduler.subscribe(info)
                await wait_for(lambda: bool(scheduler.offers()), "an offer")
                await scheduler.call(launch(scheduler.offers()[0], "t1"), "Accept")
                await wait_for(lambda: bool(agent.of("run_task")), "RunTask")
                await agent.status_update(
                    framework_id, "t1", mesos_pb2.TASK_RUNNING, uuid.uuid4().bytes
                )
                await wait_for(lambda: bool(scheduler.updates("t1")), "the update")
                async with httpx.AsyncClient(base_url=base) as client:
                    await check_endpoints(client, server, agent_id, framework_id)
            finally:
                await scheduler.close()
                await agent.close()

    asyncio.run(main())


async def check_endpoints(
    client: httpx.AsyncClient, server: MasterServer, agent_id: str, framework_id: str
) -> None:
    assert await get_json(client, "/health") == {"healthy": True, "leading": True}
    version = await get_json(client, "/version")
    assert version == {
        "version": MESOS_VERSION,
        "emporion_version": server.version,
        "master_id": server.master_id,
    }

    redirect = await client.get("/master/redirect")
    assert redirect.status_code == 307
    assert redirect.headers["location"] == f"http://{server.http_address}/"

    state = await get_json(client, "/master/state")
    wrapped = await client.get("/master/state?jsonp=angular.callbacks._1")  # Mesos's JSONP
    assert wrapped.headers["content-type"].startswith("text/javascript")
    assert wrapped.text.startswith("angular.callbacks._1({")
    assert state["id"] == server.master_id
    assert state["start_time"] == server.start_time
    assert state["elected_time"] == server.elected_time
    [slave] = state["slaves"]
    assert (slave["id"], slave["hostname"], slave["active"]) == (agent_id, "node-1", True)
    assert slave["resources"]["cpus"] == 2.0
    assert slave["used_resources"]["cpus"] == 1.0
    [framework] = state["frameworks"]
    assert (framework["id"], framework["name"], framework["role"]) == (framework_id, "web", "eng")
    [task] = framework["tasks"]
    assert (task["id"], task["state"], task["slave_id"]) == ("t1", "TASK_RUNNING", agent_id)
    # Whatever is left of the agent is offered again (refuse_seconds=0) or about to be.
    assert all(o["slave_id"] == agent_id for o in framework["offers"])

    summary = await get_json(client, "/master/state-summary")
    assert summary["frameworks"][0]["TASK_RUNNING"] == 1
    assert summary["slaves"][0]["framework_ids"] == [framework_id]
    frameworks = await get_json(client, f"/master/frameworks?framework_id={framework_id}")
    assert [f["id"] for f in frameworks["frameworks"]] == [framework_id]
    slaves = await get_json(client, "/master/slaves")
    assert [s["id"] for s in slaves["slaves"]] == [agent_id]
    tasks = await get_json(client, "/master/tasks?limit=10&offset=0&order=asc")
    assert [t["id"] for t in tasks["tasks"]] == ["t1"]
    roles = await get_json(client, "/master/roles")
    assert [(r["name"], r["weight"], r["frameworks"]) for r in roles["roles"]] == [
        ("eng", 3.0, [framework_id])
    ]
    assert await get_json(client, "/master/weights") == [{"role": "eng", "weight": 3.0}]

    metrics = await get_json(client, "/metrics/snapshot")
    assert metrics["master/elected"] == 1.0
    assert metrics["master/slaves_active"] == 1.0
    assert metrics["master/frameworks_connected"] == 1.0
    assert metrics["master/tasks_running"] == 1.0
    assert (metrics["master/cpus_total"], metrics["master/cpus_used"]) == (2.0, 1.0)
    assert metrics["master/uptime_secs"] > 0

    bad = await get_json(client, "/master/tasks?limit=many", 400)
    assert bad["detail"].startswith("query parameter 'limit': input should be a valid integer")
    bad = await get_json(client, "/master/tasks?order=sideways", 400)
    assert "query parameter 'order'" in bad["detail"]
    assert await get_json(client, "/master/nothing-here", 404) == {"detail": "Not Found"}


def test_stop_releases_the_http_port_and_no_port_means_no_http() -> None:
    async def main() -> None:
        server = MasterServer(quick_config(http_port=0))
        await server.start()
        assert server.http_address is not None
        host, port = server.http_address.rsplit(":", 1)
        await server.stop(grace=0.5)
        with socket.socket() as probe:
            probe.bind((host, int(port)))  # free again
        async with running_master(quick_config()) as plain:
            assert plain.http is None
            assert plain.http_address is None
            assert plain.leader_http_address() is None

    asyncio.run(main())


def master_process(*flags: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "master", "--port", "0", "--registry", "memory", *flags],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_python_m_master_prints_and_serves_its_http_address() -> None:
    process = master_process("--http-port", "0", "--log-level", "WARNING")
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        found = LINE.fullmatch(line)
        assert found, line
        master_id, grpc_address, http_address = found.groups()
        assert grpc_address != http_address
        assert httpx.get(f"http://{http_address}/health").json()["leading"] is True
        assert httpx.get(f"http://{http_address}/version").json()["master_id"] == master_id
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def test_http_port_off_and_a_busy_http_port() -> None:
    off = master_process("--http-port", "off", "--log-level", "WARNING")
    try:
        assert off.stdout is not None
        line = off.stdout.readline().strip()
        assert re.fullmatch(r"Emporion master \S+ listening on \S+", line), line
        off.send_signal(signal.SIGTERM)
        assert off.wait(30) == 0
    finally:
        if off.poll() is None:
            off.kill()
        off.communicate()

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        process = master_process("--http-port", str(port))
        out, err = process.communicate(timeout=60)
    assert process.returncode == 2  # a start-up failure: one line, exit 2
    assert out == ""
    assert f"emporion master: cannot bind the HTTP API to 127.0.0.1:{port}" in err


def test_the_local_cluster_reports_its_masters_http_address() -> None:
    with LocalCluster(agents=0) as cluster:
        assert cluster.master_http_address is not None
        health = httpx.get(f"http://{cluster.master_http_address}/health").json()
        assert health == {"healthy": True, "leading": True}
    with LocalCluster(agents=0, http_port=None) as cluster:
        assert cluster.master_address is not None
        assert cluster.master_http_address is None
