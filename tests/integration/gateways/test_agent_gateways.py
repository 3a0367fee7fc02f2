"""Agent gateways (``python -m master --agent-gateways N``): real master, gateway and agent
processes. Tasks run through relayed sessions; a gateway killed is restarted and its agents come
back; bad bytes through a gateway get the master's answers; gateways die with the master."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from grpc import aio

from emporion.cli import main
from emporion.local_cluster import LocalCluster
from protos.limits import GRPC_MESSAGE_OPTIONS, MAX_MESSAGE_BYTES
from protos.v1 import agent_internal_pb2 as ai
from protos.v1 import agent_internal_pb2_grpc
from tests.integration.master.clients import FakeAgent, quick_config, running_master
from tests.integration.master.clients import wait_for as wait_async

Capture = pytest.CaptureFixture[str]
CONNECT_BATCHED = "/emporion.internal.v1.AgentGateway/ConnectBatched"


def gateway_pids(master_pid: int) -> set[int]:
    found = subprocess.run(
        ["pgrep", "-P", str(master_pid), "-f", "master.gateway"],
        check=False,
        capture_output=True,
        text=True,
    )
    return {int(pid) for pid in found.stdout.split()}


def master_pid(cluster: LocalCluster) -> int:
    found = subprocess.run(
        ["pgrep", "-f", "--", f"--work-dir {cluster.root / 'master'}"],
        capture_output=True,
        text=True,
        check=True,
    )
    (pid,) = (int(p) for p in found.stdout.split() if "gateway" not in p)
    return pid


def active_agents(cluster: LocalCluster) -> list[dict[str, Any]]:
    state = httpx.get(f"http://{cluster.master_http_address}/master/state-summary", timeout=30)
    state.raise_for_status()
    return [s for s in state.json()["slaves"] if s["active"]]


def wait_for(predicate: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def run_task(cluster: LocalCluster, capsys: Capture, text: str) -> None:
    capsys.readouterr()
    status = main(
        ["run", "--master", str(cluster.master_address), "--", "sh", "-c", f"echo {text}"]
    )
    out, err = capsys.readouterr()
    assert status == 0, out + err
    assert text in out


def test_tasks_run_through_gateways_and_a_killed_gateway_is_replaced(
    tmp_path: Path, capsys: Capture
) -> None:
    with LocalCluster(
        agents=2,
        isolation="posix",
        agent_resources="cpus:1;mem:256;disk:100;ports:[31200-31209]",
        master_flags=("--agent-gateways", "2"),
        work_dir=tmp_path,
    ) as cluster:
        assert cluster.agents_address is not None
        assert cluster.agents_address != cluster.master_address
        wait_for(lambda: len(active_agents(cluster)) == 2, "the agents never registered")
        run_task(cluster, capsys, "through-a-gateway")

        pid = master_pid(cluster)
        before = gateway_pids(pid)
        assert len(before) == 2
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        # The master starts another; the agents whose connections it held reconnect (through
        # either gateway) and reregister.
        wait_for(
            lambda: len(gateway_pids(pid)) == 2 and victim not in gateway_pids(pid),
            "the killed gateway was not replaced",
        )
        wait_for(lambda: len(active_agents(cluster)) == 2, "the agents did not come back")
        run_task(cluster, capsys, "after-the-kill")
        gateways = gateway_pids(pid)
        relay = relay_socket(min(gateways))
        assert relay.is_socket()
        assert relay.parent.stat().st_mode & 0o777 == 0o700  # Only the master's user.
    # Stopped: no gateway outlives its master, and the relay's socket directory is gone.
    wait_for(lambda: not any(Path(f"/proc/{g}").exists() for g in gateways), "gateways leaked")
    assert not relay.parent.exists()


def relay_socket(gateway: int) -> Path:
    """The relay socket a gateway was given (``--relay unix:PATH``)."""
    argv = Path(f"/proc/{gateway}/cmdline").read_bytes().split(b"\0")
    value = argv[argv.index(b"--relay") + 1].decode()
    assert value.startswith("unix:"), value
    return Path(value.removeprefix("unix:"))


def _raw(
    address: str, requests: list[bytes]
) -> tuple[list[ai.MasterMessages], grpc.StatusCode, str]:
    async def exchange() -> tuple[list[ai.MasterMessages], grpc.StatusCode, str]:
        async with aio.insecure_channel(address) as channel:
            call = channel.stream_stream(
                CONNECT_BATCHED,
                request_serializer=lambda b: b,
                response_deserializer=ai.MasterMessages.FromString,
            )(iter(requests))
            replies: list[ai.MasterMessages] = []
            try:
                async for reply in call:
                    replies.append(reply)
            except aio.AioRpcError:
                pass
            code = await call.code()
            return replies, code, await call.details() or ""

    return asyncio.run(exchange())


def test_bad_bytes_through_a_gateway_get_the_masters_answers(tmp_path: Path) -> None:
    with LocalCluster(
        agents=0, master_flags=("--agent-gateways", "1"), work_dir=tmp_path
    ) as cluster:
        address = str(cluster.agents_address)
        # Not a message at all, first: refused before any session, as the master refuses it.
        replies, code, details = _raw(address, [b"\xff\xff\xff"])
        assert (replies, code) == ([], grpc.StatusCode.INVALID_ARGUMENT)
        assert "is not a valid emporion.internal.v1.AgentMessages" in details, details
        # A registration, then garbage: the master registers the agent, then refuses the
        # session with an Error, in order, and ends it.
        hello = ai.AgentMessages(
            messages=[
                ai.AgentMessage(
                    register_agent=ai.RegisterAgent(
                        agent_info=_agent_info("raw-agent"), version="test", boot_id="b1"
                    )
                )
            ]
        )
        replies, code, details = _raw(address, [hello.SerializeToString(), b"\xff\xff"])
        kinds = [m.WhichOneof("payload") for r in replies for m in r.messages]
        assert kinds[0] == "agent_registered", kinds
        assert "error" in kinds, kinds
        errors = [m.error.message for r in replies for m in r.messages if m.HasField("error")]
        assert any("not a valid" in e for e in errors), errors


def _agent_info(hostname: str) -> Any:
    from google.protobuf import json_format

    from protos.v1 import mesos_pb2

    info = mesos_pb2.AgentInfo()
    json_format.ParseDict(
        {
            "hostname": hostname,
            "port": 5051,
            "resources": [
                {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1}},
                {"name": "mem", "type": "SCALAR", "scalar": {"value": 128}},
            ],
        },
        info,
    )
    return info


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--agent-gateways", "65"], "--agent-gateways: must be between 0 and 64, got 65"),
        (["--agent-gateways", "two"], "--agent-gateways: expected a whole number, got 'two'"),
        (
            ["--port", "5999", "--agent-gateways", "1", "--agent-port", "5999"],
            "--agent-port: must differ from --port",
        ),
        (["--agent-port", "5998"], "--agent-port: needs --agent-gateways"),
    ],
)
def test_bad_gateway_flags_are_refused_in_one_line(
    tmp_path: Path, flags: list[str], message: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "master", "--work-dir", str(tmp_path), *flags],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result
    assert message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_agent_port_in_use_is_refused_and_nothing_is_left(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable, "-m", "master", "--port", "0", "--http-port", "0",
                "--work-dir", str(tmp_path), "--agent-gateways", "1", "--agent-port", str(port),
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )  # fmt: skip
    assert result.returncode == 2, result
    assert f"cannot serve agents on 127.0.0.1:{port} (--agent-port)" in result.stderr
    assert json.dumps(result.stderr).count("\\n") == 1, result.stderr


def test_messages_at_the_limit_cross_the_relay_both_ways() -> None:
    """The one message limit holds through a gateway: the master's batches for a relayed agent
    are split under it, a message as large as the limit allows goes down alone, and an agent's
    message at the limit goes up without breaking the relay."""

    async def main() -> None:
        async with running_master(quick_config(agent_gateways=1)) as server:
            assert server.agent_address is not None
            agent = FakeAgent(server.agent_address, batched=True)
            await agent.channel.close(None)
            agent.channel = aio.insecure_channel(server.agent_address, options=GRPC_MESSAGE_OPTIONS)
            agent.stub = agent_internal_pb2_grpc.AgentGatewayStub(agent.channel)
            try:
                agent_id = await agent.register("cpus:4;mem:1024")
                assert server.outbox is not None
                assert server.core is not None
                record = server.core.agent(agent_id)
                assert record is not None
                assert record.connection_id is not None
                session = server.outbox.connections[record.connection_id]
                sizes = [7 << 20, 7 << 20, 7 << 20, MAX_MESSAGE_BYTES - 1024]
                for n, size in enumerate(sizes):
                    message = ai.MasterMessage()
                    message.framework_to_executor.executor_id.value = f"e{n}"
                    message.framework_to_executor.data = b"x" * size
                    session.put(message)  # Queued together: one relay write's worth and more.
                await wait_async(lambda: len(agent.of("framework_to_executor")) == 4, "4 messages")
                received = agent.of("framework_to_executor")
                assert [m.framework_to_executor.executor_id.value for m in received] == [
                    "e0",
                    "e1",
                    "e2",
                    "e3",
                ]
                big = ai.AgentMessage()
                big.executor_to_framework.executor_id.value = "e0"
                big.executor_to_framework.data = b"y" * (MAX_MESSAGE_BYTES - 1024)
                await agent.send(big)
                # The relay and the session survive: the master still answers this agent.
                session.put(ai.MasterMessage(ping=ai.Ping(seq=7)))
                await wait_async(lambda: bool(agent.of("ping")), "a ping after the big message")
                assert server.core.agent(agent_id) is not None
                assert record.connection_id is not None
            finally:
                await agent.close()

    asyncio.run(main())


@pytest.mark.slow
def test_a_hung_gateway_is_noticed_and_its_agents_come_back_through_another(
    tmp_path: Path, capsys: Capture
) -> None:
    """SIGSTOP a gateway: the relay's keepalive ends its sessions in the master within half a minute
    (the agents show as disconnected, their tasks stay), the agents' own keepalive makes them
    reconnect, and the kernel hands their new connections to the other gateway in the end."""
    with LocalCluster(
        agents=2,
        isolation="posix",
        agent_resources="cpus:1;mem:256;disk:100;ports:[31300-31309]",
        master_flags=("--agent-gateways", "2"),
        work_dir=tmp_path,
    ) as cluster:
        wait_for(lambda: len(active_agents(cluster)) == 2, "the agents never registered")
        pid = master_pid(cluster)
        holding = [g for g in gateway_pids(pid) if not _served_by_others(pid, g)]
        assert holding, "no gateway holds an agent's connection"
        stopped = holding[0]  # It holds at least one agent's stream.
        os.kill(stopped, signal.SIGSTOP)
        try:
            wait_for(
                lambda: len(active_agents(cluster)) == 2 and _served_by_others(pid, stopped),
                "the agents to come back through the other gateway",
                timeout=240,
            )
            run_task(cluster, capsys, "past-a-hung-gateway")
        finally:
            os.kill(stopped, signal.SIGCONT)


def _served_by_others(master: int, stopped: int) -> bool:
    """Whether no agent connection is open to the stopped gateway any more."""
    found = subprocess.run(
        ["ss", "-Htnp", "state", "established"], check=False, capture_output=True, text=True
    )
    return f"pid={stopped}," not in found.stdout
