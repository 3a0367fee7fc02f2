"""The agent's HTTP API with Mesos's agent flags: ``--authenticate-http-readonly``,
``--authenticate-http-readwrite``, ``--http-credentials`` and ``--acls`` (``access_sandboxes``).

The agent's real HTTP server (uvicorn, the real files API over real sandbox directories) answers
401 without or with wrong credentials, 403 naming principal and action for a sandbox whose
framework's user the principal may not read (before anything is opened: a missing file there is
403 too), lists only admitted sandboxes, and leaves ``/health`` and the executor API open. Bad
files are flag errors naming them (``python -m agent`` exits 2 with one line). Then a real agent
process behind a secured master: the master's sandbox proxy forwards the user's credentials, so
the agent refuses a principal the master admits, and serves the one both admit; ``emporion
logs`` reads a task's output through the master with its credential.
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from agent.config import ConfigError, config_from_args
from agent.runtime.http import AgentHttpSecurity, AgentHttpServer, sandbox_roots
from framework_sdk import ClientConfig
from framework_sdk import events as ev
from framework_sdk.aio import SchedulerClient
from protos.acls import Acls
from protos.security import basic_header
from protos.v1 import mesos_pb2
from tests.integration.agent.support import AgentProcess
from tests.integration.security_auth.support import ACLS, SECRETS, Secured, secured_master
from tests.integration.security_auth.test_penetration import framework
from tests.integration.security_auth.test_real_agent import agent_flags

ROOT = Path(__file__).resolve().parents[3]

HTTP_SECRETS = {"ops": "ops-secret", "alice": "alice-secret", "bob": "bob-secret"}
USERS = {"F1": "alice", "F2": "bob"}
"""The users of the frameworks the agent runs; F3 has a sandbox but no longer runs."""
AGENT_ACLS = {
    "permissive": False,
    "access_sandboxes": [
        {"principals": {"values": ["ops"]}, "users": {"type": "ANY"}},
        {"principals": {"values": ["alice"]}, "users": {"values": ["alice"]}},
    ],
}


def auth(principal: str, secret: str | None = None) -> dict[str, str]:
    return {"Authorization": basic_header(principal, secret or HTTP_SECRETS[principal])}


def make_sandboxes(root: Path) -> Path:
    """Sandboxes of F1, F2 and F3 (one run each, with a stdout) under ``root``."""
    agent_dir = root / "agents" / "A1"
    for framework_id in ("F1", "F2", "F3"):
        run = agent_dir / "frameworks" / framework_id / "executors" / "E" / "runs" / "C"
        run.mkdir(parents=True)
        (run / "stdout").write_text(f"output of {framework_id}\n")
    return agent_dir


@asynccontextmanager
async def agent_http(
    sandboxes: Path, *, readonly: bool, readwrite: bool, acls: Mapping[str, object] | None
) -> AsyncIterator[httpx.AsyncClient]:
    security = AgentHttpSecurity(
        readonly=readonly,
        readwrite=readwrite,
        secrets=HTTP_SECRETS,
        acls=Acls.parse(acls) if acls is not None else None,
        framework_user=USERS.get,
    )
    server = AgentHttpServer(
        "127.0.0.1",
        0,
        lambda: sandbox_roots(sandboxes),
        lambda: {"id": "A1"},
        security=security,
    )
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        async with httpx.AsyncClient(base_url=base, trust_env=False, timeout=10) as client:
            yield client
    finally:
        await server.stop()


def sandbox_file(framework_id: str, name: str = "stdout") -> dict[str, str]:
    return {"path": f"/frameworks/{framework_id}/executors/E/runs/C/{name}"}


def test_agent_http_api_needs_credentials(tmp_path: Path) -> None:
    sandboxes = make_sandboxes(tmp_path)

    async def main() -> None:
        async with agent_http(sandboxes, readonly=True, readwrite=True, acls=None) as http:
            assert (await http.get("/health")).status_code == 200
            for path, params in (
                ("/state", {}),
                ("/files/browse", {"path": "/frameworks"}),
                ("/files/read", sandbox_file("F1")),
                ("/files/download", sandbox_file("F1")),
            ):
                refused = await http.get(path, params=params)
                assert refused.status_code == 401, (path, refused.text)
                assert refused.headers["www-authenticate"] == 'Basic realm="emporion"'
                assert refused.json() == {
                    "error": "authentication failed: no credentials given"
                    " (authentication is required)"
                }
            wrong = await http.get("/state", headers=auth("alice", "guessed-secret"))
            assert wrong.status_code == 401
            assert wrong.json()["error"] == (
                "authentication failed: invalid credentials for principal 'alice'"
            )
            assert "guessed-secret" not in wrong.text
            unknown = await http.get("/state", headers=auth("mallory", "x"))
            assert unknown.status_code == 401
            assert (await http.get("/state", headers=auth("alice"))).json() == {"id": "A1"}
            listing = await http.get(
                "/files/browse", params={"path": "/frameworks"}, headers=auth("bob")
            )
            assert [e["name"] for e in listing.json()] == ["F1", "F2", "F3"]  # No --acls.
            # Read-write: every other method; the executor API stays open (404: no such
            # route in this server, rather than 401).
            assert (await http.post("/state")).status_code == 401
            assert (await http.post("/state", headers=auth("ops"))).status_code == 405
            assert (await http.post("/api/v1/executor")).status_code == 404

        async with agent_http(sandboxes, readonly=True, readwrite=False, acls=None) as http:
            assert (await http.get("/state")).status_code == 401
            assert (await http.post("/state")).status_code == 405  # Not authenticated.
            # Credentials sent where none are needed are checked all the same.
            assert (await http.post("/state", headers=auth("ops", "bad"))).status_code == 401

    asyncio.run(main())


def test_access_sandboxes_on_the_frameworks_user(tmp_path: Path) -> None:
    sandboxes = make_sandboxes(tmp_path)

    async def main() -> None:
        async with agent_http(sandboxes, readonly=True, readwrite=True, acls=AGENT_ACLS) as http:
            alice, ops, bob = auth("alice"), auth("ops"), auth("bob")
            params = {**sandbox_file("F1"), "offset": "0"}
            read = await http.get("/files/read", params=params, headers=alice)
            assert read.status_code == 200
            assert read.json()["data"] == "output of F1\n"
            for params in (sandbox_file("F2"), sandbox_file("F2", "no-such-file")):
                denied = await http.get("/files/read", params=params, headers=alice)
                assert denied.status_code == 403
                assert denied.json()["detail"] == (
                    "principal 'alice' is not authorized to access_sandboxes: refused by the"
                    " ACLs on 'bob' (the user of framework F2)"
                )
            for endpoint in ("browse", "tail", "download"):
                denied = await http.get(
                    f"/files/{endpoint}", params=sandbox_file("F2"), headers=alice
                )
                assert denied.status_code == 403, endpoint
            gone = await http.get("/files/read", params=sandbox_file("F3"), headers=alice)
            assert gone.status_code == 403
            assert gone.json()["detail"] == (
                "principal 'alice' is not authorized to access_sandboxes: framework F3 is not"
                " known to this agent (not run since it started), so its user is unknown, and no"
                " rule for ANY user allows it"
            )
            listing = await http.get("/files/browse", params={"path": "/frameworks"}, headers=alice)
            assert [e["name"] for e in listing.json()] == ["F1"]
            everything = await http.get("/files/browse", params={"path": "/"}, headers=ops)
            assert [e["name"] for e in everything.json()] == ["frameworks"]
            listing = await http.get("/files/browse", params={"path": "/frameworks"}, headers=ops)
            assert [e["name"] for e in listing.json()] == ["F1", "F2", "F3"]
            for framework_id in ("F1", "F2", "F3"):
                served = await http.get(
                    "/files/download", params=sandbox_file(framework_id), headers=ops
                )
                assert served.text == f"output of {framework_id}\n"
            nothing = await http.get("/files/browse", params={"path": "/frameworks"}, headers=bob)
            assert nothing.status_code == 403
            assert "'/frameworks' is not inside any sandbox" in nothing.text

    asyncio.run(main())


def test_agent_http_flags(tmp_path: Path) -> None:
    credentials = tmp_path / "http.json"
    credentials.write_text(json.dumps({"credentials": [{"principal": "ops", "secret": "s"}]}))
    acls = tmp_path / "acls.json"
    acls.write_text(json.dumps(AGENT_ACLS))
    base = ["--master", "127.0.0.1:5050", "--work-dir", str(tmp_path / "w"), "--ip", "127.0.0.1"]
    config = config_from_args(
        [*base, "--authenticate-http-readonly", "--http-credentials", str(credentials)], {}
    )
    assert config.authenticate_http_readonly
    assert not config.authenticate_http_readwrite
    env = {
        "EMPORION_AUTHENTICATE_HTTP_READWRITE": "true",
        "EMPORION_HTTP_CREDENTIALS": str(credentials),
        "EMPORION_ACLS": str(acls),
    }
    config = config_from_args(base, env)
    assert config.authenticate_http_readwrite
    assert (config.http_credentials, config.acls) == (credentials, acls)
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"credentials": [{"principal": "ops"}]}')
    bad_acls = tmp_path / "bad-acls.json"
    bad_acls.write_text('{"access_sandbox": []}')
    refusals = {
        ("--authenticate-http-readonly",): "--authenticate-http-readonly: needs --http-credentials",
        ("--authenticate-http-readwrite",): (
            "--authenticate-http-readwrite: needs --http-credentials FILE"
        ),
        ("--http-credentials", str(bad_json)): (
            f"--http-credentials {bad_json}: credentials[0]: 'secret' of 'ops' must be a string"
        ),
        ("--http-credentials", str(tmp_path / "missing.json")): (
            f"--http-credentials {tmp_path / 'missing.json'}: No such file"
        ),
        ("--acls", str(bad_acls)): f"--acls {bad_acls}: unknown action 'access_sandbox'",
    }
    for args, message in refusals.items():
        with pytest.raises(ConfigError) as caught:
            config_from_args([*base, *args], {})
        assert message in str(caught.value), caught.value
    # The agent itself: exit 2, one line naming the file, nothing started.
    process = subprocess.run(
        [sys.executable, "-m", "agent", *base, "--acls", str(bad_acls)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert process.returncode == 2
    (line,) = process.stderr.strip().splitlines()
    assert line.startswith(f"agent: --acls {bad_acls}: unknown action 'access_sandbox'")


def test_a_real_agent_behind_the_masters_sandbox_proxy(secured: Secured, tmp_path: Path) -> None:
    # The master lets both operator and viewer read sandboxes; the agent only operator (viewer
    # only for root's tasks): a refusal of viewer through the proxy is the agent's own check
    # of the principal the master forwarded.
    master_acls = tmp_path / "master-acls.json"
    master_acls.write_text(
        json.dumps(
            {
                **ACLS,
                "access_sandboxes": [
                    {"principals": {"values": ["operator", "viewer"]}, "users": {"type": "ANY"}}
                ],
            }
        )
    )
    agent_acls = tmp_path / "agent-acls.json"
    agent_acls.write_text(
        json.dumps(
            {
                "permissive": False,
                "access_sandboxes": [
                    {"principals": {"values": ["operator"]}, "users": {"type": "ANY"}},
                    {"principals": {"values": ["viewer"]}, "users": {"values": ["root"]}},
                    {"principals": {"values": ["framework-a"]}, "users": {"values": ["nobody"]}},
                ],
            }
        )
    )
    credential_file = tmp_path / "agent-1.json"
    credential_file.write_text(json.dumps({"principal": "agent-1", "secret": SECRETS["agent-1"]}))
    flags = [
        *(f for f in agent_flags(secured, credential_file) if f != "--tls-require-client-cert"),
        "--authenticate-http-readonly",
        "--authenticate-http-readwrite",
        "--http-credentials", str(secured.credentials),
        "--acls", str(agent_acls),
    ]  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="emporion-agent-http-auth-"))
    work.chmod(0o711)  # The task may run as nobody (switch_user as root).

    async def main() -> None:
        async with secured_master(secured.master_config(acls=master_acls)) as server:
            core = server.core
            assert core is not None
            assert server.http is not None
            loop = asyncio.get_running_loop()
            agent = await loop.run_in_executor(
                None, lambda: AgentProcess(server.address, work / "agent", flags)
            )
            try:
                client = SchedulerClient(
                    server.address,
                    framework("a", user="nobody"),
                    config=ClientConfig(backoff_initial_seconds=0.05, backoff_max_seconds=0.5),
                    credential=mesos_pb2.Credential(
                        principal="framework-a", secret=SECRETS["framework-a"]
                    ),
                    tls=secured.tls(),
                )
                async with client:
                    framework_id = await launch_running(client)
                    await check_agent(agent.http, secured)
                    await check_proxy(server.http.port, framework_id, secured)
                    await loop.run_in_executor(
                        None, check_cli, server.address, framework_id, secured
                    )
                    await kill_and_forget(client, agent.http, secured)
                    await check_forgotten_framework(agent.http, framework_id, secured)
            finally:
                await loop.run_in_executor(None, agent.stop)

    try:
        asyncio.run(main())
    finally:
        subprocess.run(["rm", "-rf", str(work)], check=False)


async def launch_running(client: SchedulerClient) -> str:
    """Launch a task that prints a line and sleeps; its framework's id once it runs."""
    async for event in client.events():
        if isinstance(event, ev.Offers):
            offer = event.offers[0]
            task = mesos_pb2.TaskInfo(name="t1")
            task.task_id.value = "t1"
            task.agent_id.CopyFrom(offer.agent_id)
            task.command.value = "echo visible-output; exec sleep 120"
            task.resources.add(
                name="cpus", type=mesos_pb2.Value.SCALAR, scalar=mesos_pb2.Value.Scalar(value=0.1)
            )
            await client.launch([offer.id], [task])
        elif isinstance(event, ev.Update):
            if event.status.uuid:
                await client.acknowledge(event.status)
            if event.status.state == mesos_pb2.TASK_RUNNING:
                assert client.framework_id is not None
                return client.framework_id.value
            assert event.status.state == mesos_pb2.TASK_STARTING, event.status
    raise AssertionError("the events ended before TASK_RUNNING")


def agent_client(address: str, secured: Secured) -> httpx.AsyncClient:
    verify = secured.tls().client_ssl_context()
    return httpx.AsyncClient(
        base_url=f"https://{address}", verify=verify, trust_env=False, timeout=10
    )


def credentials_of(principal: str) -> dict[str, str]:
    return {"Authorization": basic_header(principal, SECRETS[principal])}


async def kill_and_forget(client: SchedulerClient, address: str, secured: Secured) -> None:
    """Kill the task; wait until the agent has forgotten its framework (no executor left)."""
    await client.kill("t1")
    async for event in client.events():
        if isinstance(event, ev.Update):
            if event.status.uuid:
                await client.acknowledge(event.status)
            if event.status.state == mesos_pb2.TASK_KILLED:
                break
    async with agent_client(address, secured) as http:
        deadline = asyncio.get_running_loop().time() + 30
        while (await http.get("/state", headers=credentials_of("operator"))).json()["frameworks"]:
            assert asyncio.get_running_loop().time() < deadline, "the agent kept the framework"
            await asyncio.sleep(0.1)


async def check_forgotten_framework(address: str, framework_id: str, secured: Secured) -> None:
    """The sandbox of a framework the agent no longer runs is still authorized by its user."""
    async with agent_client(address, secured) as http:
        owner = credentials_of("framework-a")
        executors = await http.get(
            "/files/browse", params={"path": f"/frameworks/{framework_id}/executors"}, headers=owner
        )
        assert executors.status_code == 200, executors.text
        (executor,) = [entry["name"] for entry in executors.json()]
        path = f"/frameworks/{framework_id}/executors/{executor}/runs/latest/stdout"
        read = await http.get("/files/read", params={"path": path, "offset": "0"}, headers=owner)
        assert read.status_code == 200, read.text
        assert "visible-output" in read.json()["data"]
        denied = await http.get(
            "/files/read", params={"path": path}, headers=credentials_of("viewer")
        )
        assert denied.status_code == 403
        assert denied.json()["detail"] == (
            "principal 'viewer' is not authorized to access_sandboxes: refused by the ACLs on"
            f" 'nobody' (the user of framework {framework_id})"
        )


async def check_agent(address: str, secured: Secured) -> None:
    """The agent itself: 401 without credentials, its executor API and /health open."""
    operator = {"Authorization": basic_header("operator", SECRETS["operator"])}
    verify = secured.tls().client_ssl_context()
    async with httpx.AsyncClient(
        base_url=f"https://{address}", verify=verify, trust_env=False, timeout=10
    ) as http:
        assert (await http.get("/health")).status_code == 200
        for path in ("/state", "/metrics/snapshot", "/files/browse?path=/frameworks"):
            refused = await http.get(path)
            assert refused.status_code == 401, path
            assert refused.headers["www-authenticate"] == 'Basic realm="emporion"'
            assert (await http.get(path, headers=operator)).status_code == 200, path
        executor_api = await http.post("/api/v1/executor", content=b"{}")
        assert executor_api.status_code not in (401, 403), executor_api.text
        assert executor_api.status_code in (400, 415), executor_api.text


async def check_proxy(http_port: int, framework_id: str, secured: Secured) -> None:
    """Through the master: viewer refused by the agent, operator served."""
    verify = secured.tls().client_ssl_context()
    page = f"https://localhost:{http_port}/ui/sandbox/{framework_id}/t1"
    async with httpx.AsyncClient(verify=verify, trust_env=False, timeout=10) as http:
        viewer = {"Authorization": basic_header("viewer", SECRETS["viewer"])}
        denied = await http.get(f"{page}/files", headers=viewer)
        assert denied.status_code == 403, denied.text
        assert (
            "principal 'viewer' is not authorized to access_sandboxes: refused by the ACLs on"
            " 'nobody' (the user of framework " + framework_id + ")"
        ) in html.unescape(denied.text)
        operator = {"Authorization": basic_header("operator", SECRETS["operator"])}
        listing = await http.get(f"{page}/files", headers=operator)
        assert listing.status_code == 200, listing.text
        assert "stdout" in listing.text
        deadline = asyncio.get_running_loop().time() + 30
        data = ""
        while "visible-output" not in data:  # The task may not have written it yet.
            assert asyncio.get_running_loop().time() < deadline, data
            params = {"path": "stdout", "offset": "0"}
            read = await http.get(f"{page}/read", params=params, headers=operator)
            assert read.status_code == 200, read.text
            data = read.json()["data"]
            await asyncio.sleep(0.1)


def check_cli(master: str, framework_id: str, secured: Secured) -> None:
    """``emporion logs`` with the operator's credential reads the task's stdout."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "EMPORION_MASTER": master,
        "EMPORION_SDK_TLS_CA": str(secured.ca),
        "EMPORION_SDK_PRINCIPAL": "operator",
        "EMPORION_SDK_SECRET": SECRETS["operator"],
    }
    logs = subprocess.run(
        [sys.executable, "-m", "emporion", "logs", "t1", "--framework", framework_id],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
        check=False,
    )
    assert logs.returncode == 0, logs.stderr
    assert "visible-output" in logs.stdout
