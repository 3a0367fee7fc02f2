"""A real agent frozen with SIGSTOP is found by the transport, not by pings.

The master pings an answering agent at the application level only once per 24
``--agent-ping-timeout`` (see ``master.core.liveness``); between those, the liveness of each agent's
connection is HTTP/2 keepalive in gRPC's C core. Here the ping deadline is made long (1 s x 30),
so that a frozen agent could not be found by pings for a minute or more: the master
must still see it DISCONNECTED (its stream broken by the keepalive) while it is frozen, keep its
task, and take it back when it wakes.
"""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.request
from pathlib import Path

import pytest

from emporion.testing.failover_job import FailoverFramework
from emporion.testing.master_processes import ZkMaster
from protos.v1 import mesos_pb2
from tests.integration.agent.support import AgentProcess, processes_with
from tests.integration.ha.conftest import WAIT, MasterFactory, wait_one_leader, wait_until

pytestmark = pytest.mark.zk

REREGISTERED = "Reregistered with the master"


def phases(master: ZkMaster) -> list[str]:
    """The phase of each agent in the master's ``/master/slaves``."""
    with urllib.request.urlopen(f"http://{master.http_address}/master/slaves", timeout=10) as r:
        return [agent["phase"] for agent in json.load(r)["slaves"]]


def test_a_frozen_agent_is_disconnected_by_keepalive_and_comes_back(
    zk_url: str, zk_masters: MasterFactory, tmp_path: Path
) -> None:
    flags = ("--agent-ping-timeout", "1secs", "--max-agent-ping-timeouts", "30")
    (master,) = zk_masters(1, extra_args=flags)
    wait_one_leader([master])
    work = tmp_path / "work"
    agent = AgentProcess(zk_url, work, ("--zk-session-timeout", "10s"), isolation="posix")
    done = tmp_path / "done"
    command = f"while [ ! -e {done} ]; do sleep 0.1; done"
    try:

        async def body() -> None:
            framework = FailoverFramework(zk_url, "frozen", 1, command=command)
            await framework.start()
            try:
                await framework.wait_running(WAIT)
                assert phases(master) == ["connected"]
                agent.process.send_signal(signal.SIGSTOP)
                try:
                    await asyncio.to_thread(
                        wait_until,
                        lambda: phases(master) == ["disconnected"],
                        "the master to see the frozen agent's stream break",
                    )
                finally:
                    agent.process.send_signal(signal.SIGCONT)
                await asyncio.to_thread(
                    wait_until, lambda: REREGISTERED in agent.log(), "the agent to reregister"
                )
                await asyncio.to_thread(
                    wait_until, lambda: phases(master) == ["connected"], "the agent back"
                )
                assert framework.terminal == {}  # Its task was never lost.
                done.touch()
                await framework.wait_terminal("frozen-0", mesos_pb2.TASK_FINISHED, WAIT)
            finally:
                await framework.close()

        asyncio.run(body())
        assert agent.process.poll() is None
    finally:
        agent.stop()
        wait_until(lambda: not processes_with(str(work)), "task processes to end", 15)
