"""examples.custom_executor against scripted components: its executor as a real process on a
scripted agent, its scheduler on a scripted master, and both wired into a scripted cluster.

The same example runs against a real master and agent in tests/integration/sdk_executor.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from examples.custom_executor import scheduler as pingpong
from framework_sdk import messages
from protos.resources import Resources
from protos.v1 import executor_pb2
from tests.unit.sdk.scripted_master import (
    RecordedCall,
    ScriptedMaster,
    make_offer,
    offers_event,
    update_event,
)
from tests.unit.sdk.scripted_master import message_event as master_message_event
from tests.unit.sdk_executor.scripted_agent import (
    WAIT_SECONDS,
    ScriptedAgent,
    kill_event,
    launch_event,
    message_event,
    shutdown_event,
)

ROOT = Path(__file__).resolve().parents[3]


class ExecutorProcess:
    """``python -m examples.custom_executor.executor`` with an agent's environment."""

    def __init__(self, environ: dict[str, str], argv: list[str] | None = None) -> None:
        argv = argv or [sys.executable, "-m", "examples.custom_executor.executor"]
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **environ}
        self.process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def wait(self) -> tuple[int, str]:
        """Wait for the exit; (status, stderr)."""
        _, err = self.process.communicate(timeout=WAIT_SECONDS)
        return self.process.returncode, err

    def kill(self) -> None:
        """Make sure it is gone (after a failed test)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate(timeout=WAIT_SECONDS)


@pytest.fixture
def processes() -> Iterator[list[ExecutorProcess]]:
    """Executor processes started by a test, killed if still running at its end."""
    started: list[ExecutorProcess] = []
    yield started
    for process in started:
        process.kill()


def test_executor_plays_ping_pong_then_finishes(
    agent: ScriptedAgent, processes: list[ExecutorProcess]
) -> None:
    process = ExecutorProcess(agent.environ())
    processes.append(process)
    agent.wait_streams(1)
    agent.send(launch_event("t1"))
    [running] = agent.wait_updates(1)
    assert (running.task_id.value, running.state) == ("t1", messages.TASK_RUNNING)
    for n in (1, 2, 3):
        agent.send(message_event(f"ping {n}".encode()))
        assert agent.wait_messages(n)[-1] == f"pong {n}".encode()
    agent.send(message_event(b"finish"))
    finished = agent.wait_updates(2)[-1]
    assert (finished.task_id.value, finished.state) == ("t1", messages.TASK_FINISHED)
    assert finished.message == "answered 3 pings"
    code, err = process.wait()
    assert code == 0, err


def test_executor_reports_kills_and_shutdown(
    agent: ScriptedAgent, processes: list[ExecutorProcess]
) -> None:
    process = ExecutorProcess(agent.environ())
    processes.append(process)
    agent.wait_streams(1)
    agent.send(launch_event("t1"), launch_event("t2"), kill_event("t1"))
    agent.wait_updates(3)
    agent.send(shutdown_event())
    code, err = process.wait()
    assert code == 0, err
    states = {(u.task_id.value, u.state) for u in agent.wait_updates(4)}
    assert states == {
        ("t1", messages.TASK_RUNNING),
        ("t2", messages.TASK_RUNNING),
        ("t1", messages.TASK_KILLED),
        ("t2", messages.TASK_KILLED),
    }


def test_executor_run_by_hand_names_the_missing_variable(processes: list[ExecutorProcess]) -> None:
    process = ExecutorProcess({})
    processes.append(process)
    code, err = process.wait()
    assert code == 2
    assert "MESOS_AGENT_ENDPOINT" in err


# -- the scheduler half, with the scripted master playing the executors --


class PlayedExecutors:
    """Answers the scheduler's framework messages as the executors would (pongs twice: a
    repeat must not be counted), and reports TASK_RUNNING/TASK_FINISHED."""

    def __init__(self, master: ScriptedMaster) -> None:
        self.master = master
        self.uuid = 0
        master.on_subscribed = lambda framework_id: master.send(
            offers_event(make_offer("o1", agent_id="agent-1", resources="cpus:1;mem:1024"))
        )
        master.on_call = self.handle

    def update(self, task_id: str, state: int, agent_id: str) -> None:
        self.uuid += 1
        uuid = self.uuid.to_bytes(16, "big")
        self.master.send(update_event(task_id, state, uuid=uuid, agent_id=agent_id))

    def handle(self, recorded: RecordedCall) -> None:
        call = recorded.call
        if recorded.method == "Accept":
            for op in call.accept.operations:
                for task in op.launch.task_infos:
                    self.update(task.task_id.value, messages.TASK_RUNNING, task.agent_id.value)
        elif recorded.method == "Message":
            executor_id, agent_id = call.message.executor_id.value, call.message.agent_id.value
            words = call.message.data.decode().split()
            if words[0] == "ping":
                pong = master_message_event(agent_id, executor_id, f"pong {words[1]}".encode())
                self.master.send(pong, pong)
            elif words == ["finish"]:
                task_id = executor_id.removeprefix("pingpong-")
                self.update(task_id, messages.TASK_FINISHED, agent_id)


def test_scheduler_launches_with_its_executor_and_counts_pongs(
    master: ScriptedMaster, capsys: pytest.CaptureFixture[str]
) -> None:
    PlayedExecutors(master)
    code = pingpong.main(
        ["--master", master.address, "--tasks", "3", "--pings", "2", "--timeout", "20"]
    )
    summary = json.loads(capsys.readouterr().out)
    assert code == 0, summary
    assert summary["finished"] == 3
    assert summary["pongs"] == 6
    assert summary["failed"] == {}
    [accept] = master.wait_calls("Accept")
    tasks = [t for op in accept.call.accept.operations for t in op.launch.task_infos]
    assert len(tasks) == 3
    for task in tasks:
        assert not task.HasField("command")
        executor = task.executor
        assert executor.executor_id.value == f"pingpong-{task.task_id.value}"
        assert executor.type == messages.ExecutorInfo.CUSTOM
        assert list(executor.command.arguments)[1:] == ["-m", "examples.custom_executor.executor"]
        assert executor.command.environment.variables[0].name == "PYTHONPATH"
        assert str(Resources.from_protos(executor.resources)) == "cpus:0.1;mem:128"
        assert str(Resources.from_protos(task.resources)) == "cpus:0.1;mem:32"
    pings = [c.call.message.data for c in master.wait_calls("Message", 9)]
    assert sorted(pings) == sorted([b"ping 1", b"ping 2", b"finish"] * 3)
    assert master.methods()[-1] == "Teardown"


def test_example_arguments_are_checked() -> None:
    with pytest.raises(SystemExit):
        pingpong.parse_args(["--master", "127.0.0.1:1", "--pings", "0"])
    with pytest.raises(SystemExit):
        pingpong.parse_args(["--tasks", "2"])


# -- both halves, wired through a scripted master and a scripted agent --


class ScriptedCluster:
    """Relays between a ScriptedMaster and a ScriptedAgent, starting the executor process the
    ExecutorInfo describes, as a master and an agent would (one task: one executor stream)."""

    def __init__(self, master: ScriptedMaster, agent: ScriptedAgent) -> None:
        self.master, self.agent = master, agent
        self.processes: list[ExecutorProcess] = []
        self.launched: list[messages.TaskInfo] = []
        master.on_subscribed = lambda framework_id: master.send(
            offers_event(make_offer("o1", agent_id="agent-1", resources="cpus:1;mem:1024"))
        )
        master.on_call = self.master_call
        agent.on_subscribed = lambda call: agent.send(
            *(self.launch(task) for task in self.launched)
        )
        agent.on_update = self.agent_update
        agent.on_message = lambda call: master.send(
            master_message_event("agent-1", call.executor_id.value, call.message.data)
        )

    @staticmethod
    def launch(task: messages.TaskInfo) -> executor_pb2.Event:
        event = launch_event(task.task_id.value)
        event.launch.task.CopyFrom(task)
        return event

    def master_call(self, recorded: RecordedCall) -> None:
        call = recorded.call
        if recorded.method == "Accept":
            for op in call.accept.operations:
                for task in op.launch.task_infos:
                    self.launched.append(task)
                    self.start_executor(task.executor)
        elif recorded.method == "Message":
            self.agent.send(message_event(call.message.data))
        elif recorded.method == "Teardown" and self.processes[-1].process.poll() is None:
            self.agent.send(shutdown_event())

    def start_executor(self, info: messages.ExecutorInfo) -> None:
        command = info.command
        argv = [command.value, *command.arguments[1:]]
        environ = self.agent.environ()
        environ["MESOS_EXECUTOR_ID"] = info.executor_id.value
        for variable in command.environment.variables:
            environ[variable.name] = variable.value
        self.processes.append(ExecutorProcess(environ, argv))

    def agent_update(self, call: executor_pb2.Call) -> None:
        status = call.update.status
        self.master.send(
            update_event(status.task_id.value, status.state, uuid=status.uuid, agent_id="agent-1")
        )


def test_framework_and_executor_exchange_messages_both_ways(
    master: ScriptedMaster, agent: ScriptedAgent
) -> None:
    cluster = ScriptedCluster(master, agent)
    try:
        result = subprocess.run(
            [
                *(sys.executable, "-m", "examples.custom_executor"),
                *("--master", master.address, "--tasks", "1", "--pings", "3"),
                *("--timeout", str(WAIT_SECONDS)),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=WAIT_SECONDS * 2,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        summary = json.loads(result.stdout)
        assert (summary["finished"], summary["pongs"], summary["status"]) == (
            1,
            3,
            "DRIVER_STOPPED",
        )
        [executor] = cluster.processes
        code, err = executor.wait()
        assert code == 0, err
        assert agent.wait_messages(3) == [b"pong 1", b"pong 2", b"pong 3"]
        states = [u.state for u in agent.wait_updates(2)]
        assert states == [messages.TASK_RUNNING, messages.TASK_FINISHED]
    finally:
        for process in cluster.processes:
            process.kill()
