"""A real agent process (``python -m agent``) with ``--credential`` and ``--tls-ca`` registers
with a secured master and runs a task for a framework using the SDK with its credential; an
agent with a wrong secret is refused (its log says UNAUTHENTICATED) and never registers.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from framework_sdk import ClientConfig
from framework_sdk import events as ev
from framework_sdk.aio import SchedulerClient
from master.runtime import MasterServer
from protos.security import basic_header
from protos.v1 import mesos_pb2
from tests.integration.agent.support import AgentProcess
from tests.integration.master.clients import wait_for
from tests.integration.security_auth.support import SECRETS, Secured, secured_master
from tests.integration.security_auth.test_penetration import framework


def agent_flags(secured: Secured, credential_file: Path) -> list[str]:
    d = secured.directory
    return [
        "--credential", str(credential_file),
        "--tls-ca", str(secured.ca),
        "--tls-cert", str(d / "server.pem"), "--tls-key", str(d / "server-key.pem"),
        "--isolation", "posix",
        "--tls-require-client-cert", "--hostname", "localhost",
    ]  # fmt: skip


def test_real_agent_with_credential_runs_a_task_over_tls(secured: Secured, tmp_path: Path) -> None:
    # Work dirs every user may traverse: the task runs as nobody (switch_user as root).
    work = Path(tempfile.mkdtemp(prefix="emporion-security-auth-"))
    work.chmod(0o711)
    try:
        _run(secured, tmp_path, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(secured: Secured, tmp_path: Path, work: Path) -> None:
    good = tmp_path / "agent-1.json"
    good.write_text(json.dumps({"principal": "agent-1", "secret": SECRETS["agent-1"]}))
    bad = tmp_path / "agent-2.txt"
    bad.write_text("agent-2 not-the-secret\n")

    async def main() -> None:
        async with secured_master(secured.master_config()) as server:
            core = server.core
            assert core is not None
            loop = asyncio.get_running_loop()
            impostor = await loop.run_in_executor(
                None,
                lambda: AgentProcess(server.address, work / "bad", agent_flags(secured, bad)),
            )
            real = await loop.run_in_executor(
                None,
                lambda: AgentProcess(server.address, work / "good", agent_flags(secured, good)),
            )
            try:
                await wait_for(lambda: len(core.state.agents) == 1, "the real agent")
                deadline = time.monotonic() + 30
                while "UNAUTHENTICATED" not in impostor.log():
                    assert time.monotonic() < deadline, impostor.log()
                    await asyncio.sleep(0.1)
                assert (
                    "authentication failed: invalid credentials for principal 'agent-2'"
                    in impostor.log()
                )
                assert "not-the-secret" not in impostor.log()
                (agent,) = core.state.agents.values()
                assert agent.info.hostname != ""
                framework_id = await run_one_task(server.address, secured)
                assert list(core.state.agents) == [agent.agent_id]  # The impostor never got in.
                await read_sandbox(server, secured, real, framework_id)
            finally:
                await loop.run_in_executor(None, impostor.stop)
                await loop.run_in_executor(None, real.stop)

    asyncio.run(main())


async def read_sandbox(
    server: MasterServer, secured: Secured, agent: AgentProcess, framework_id: str
) -> None:
    """The task's sandbox: not served by the agent to a client without the cluster's
    certificate; served through the master's proxy to the principal with access_sandboxes."""
    verify = secured.tls().client_ssl_context()
    async with httpx.AsyncClient(verify=verify, trust_env=False, timeout=10) as http:
        with pytest.raises(httpx.HTTPError):
            await http.get(f"https://{agent.http}/files/browse", params={"path": "/frameworks"})
        assert server.http is not None
        page = f"https://localhost:{server.http.port}/ui/sandbox/{framework_id}/t1/files"
        viewer = {"Authorization": basic_header("viewer", SECRETS["viewer"])}
        denied = await http.get(page, headers=viewer)
        assert denied.status_code == 403
        assert "principal 'viewer' is not authorized to access_sandboxes" in denied.text
        operator = {"Authorization": basic_header("operator", SECRETS["operator"])}
        listing = await http.get(page, headers=operator)
        assert listing.status_code == 200, listing.text
        assert "stdout" in listing.text


async def run_one_task(address: str, secured: Secured) -> str:
    """Launch ``true`` as ``nobody`` for framework-a, wait for TASK_FINISHED; the framework id."""
    client = SchedulerClient(
        address,
        framework("a", user="nobody"),
        config=ClientConfig(backoff_initial_seconds=0.05, backoff_max_seconds=0.5),
        credential=mesos_pb2.Credential(principal="framework-a", secret=SECRETS["framework-a"]),
        tls=secured.tls(),
    )
    async with client:
        async for event in client.events():
            if isinstance(event, ev.Offers):
                offer = event.offers[0]
                task = mesos_pb2.TaskInfo(name="t1")
                task.task_id.value = "t1"
                task.agent_id.CopyFrom(offer.agent_id)
                task.command.value = "true"
                task.resources.add(
                    name="cpus",
                    type=mesos_pb2.Value.SCALAR,
                    scalar=mesos_pb2.Value.Scalar(value=0.1),
                )
                await client.launch([offer.id], [task])
            elif isinstance(event, ev.Update):
                if event.status.uuid:
                    await client.acknowledge(event.status)
                if event.status.state == mesos_pb2.TASK_FINISHED:
                    assert client.framework_id is not None
                    return client.framework_id.value
                assert event.status.state in (mesos_pb2.TASK_STARTING, mesos_pb2.TASK_RUNNING), (
                    event.status
                )
    raise AssertionError("the events ended before TASK_FINISHED")
