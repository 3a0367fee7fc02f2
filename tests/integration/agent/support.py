"""Running a real agent process in tests, and building the messages a master sends it."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from protos.resources import Resources
from protos.v1 import agent_internal_pb2 as ai
from protos.v1 import mesos_pb2

ROOT = Path(__file__).resolve().parents[3]
BANNER = re.compile(r"emporion agent: http=(\S+):(\d+) executor=127\.0\.0\.1:(\d+)")
AGENT_RESOURCES = "cpus:2;mem:2048;disk:4096;ports:[31000-31100]"
FW = "fw-1"


class AgentProcess:
    """An agent started with ``python -m agent`` against ``master``; stderr goes to a log file."""

    def __init__(
        self, master: str, work_dir: Path, extra: Sequence[str] = (), isolation: str = "auto"
    ) -> None:
        self.work_dir = work_dir
        self.log_path = work_dir.parent / f"{work_dir.name}-agent.log"
        args = [
            sys.executable,
            "-m",
            "agent",
            "--master",
            master,
            "--work-dir",
            str(work_dir),
            "--port",
            "0",
            "--ip",
            "127.0.0.1",
            "--resources",
            AGENT_RESOURCES,
            "--isolation",
            isolation,
            "--registration-backoff-factor",
            "50ms",
            "--status-update-retry-min",
            "1s",
            "--status-update-retry-max",
            "2s",
            *extra,
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                args, stdout=subprocess.PIPE, stderr=log, env=env, cwd=ROOT, text=True
            )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        match = BANNER.search(line)
        if match is None:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"agent did not start: {line!r}\n{self.log()}")
        self.http = f"{match.group(1)}:{match.group(2)}"
        self.executor_port = int(match.group(3))

    def log(self) -> str:
        """What the agent logged so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self, signum: int = signal.SIGUSR1, timeout: float = 60.0) -> int:
        """Signal the agent (default: shut down, killing its tasks) and wait for it to exit."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            if self.process.stdout is not None:
                self.process.stdout.close()

    def crash(self) -> None:
        """kill -9 the agent (its containers keep running)."""
        self.process.kill()
        self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def framework_info(checkpoint: bool = False) -> mesos_pb2.FrameworkInfo:
    info = mesos_pb2.FrameworkInfo(name="test", checkpoint=checkpoint)
    info.id.value = FW
    return info


def command_task(
    task_id: str, command: str, resources: str = "cpus:0.1;mem:64"
) -> mesos_pb2.TaskInfo:
    task = mesos_pb2.TaskInfo(name=task_id)
    task.task_id.value = task_id
    task.command.value = command
    task.resources.extend(Resources.parse(resources).to_protos())
    return task


def run_task(
    task: mesos_pb2.TaskInfo,
    checkpoint: bool = False,
    executor: mesos_pb2.ExecutorInfo | None = None,
) -> ai.MasterMessage:
    message = ai.MasterMessage()
    run = message.run_task
    run.framework_info.CopyFrom(framework_info(checkpoint))
    run.framework_id.value = FW
    run.task.CopyFrom(task)
    if executor is not None:
        run.executor.CopyFrom(executor)
    return message


def run_task_group(
    tasks: Sequence[mesos_pb2.TaskInfo], executor_id: str = "dex", checkpoint: bool = False
) -> ai.MasterMessage:
    """A RunTaskGroup of ``tasks`` under the default executor ``executor_id``."""
    message = ai.MasterMessage()
    run = message.run_task_group
    run.framework_info.CopyFrom(framework_info(checkpoint))
    run.executor.type = mesos_pb2.ExecutorInfo.DEFAULT
    run.executor.executor_id.value = executor_id
    run.executor.framework_id.value = FW
    run.executor.resources.extend(Resources.parse("cpus:0.1;mem:32").to_protos())
    run.task_group.tasks.extend(tasks)
    return message


def kill_task(task_id: str, grace_seconds: float | None = None) -> ai.MasterMessage:
    message = ai.MasterMessage()
    message.kill_task.framework_id.value = FW
    message.kill_task.task_id.value = task_id
    if grace_seconds is not None:
        message.kill_task.kill_policy.grace_period.nanoseconds = int(grace_seconds * 1e9)
    return message


def processes_with(marker: str) -> list[int]:
    """Pids of processes whose environment or command line mentions ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            blob = (entry / "environ").read_bytes() + (entry / "cmdline").read_bytes()
            if marker.encode() in blob:
                found.append(int(entry.name))
    return found


def wait_until(predicate: object, what: str, timeout: float = 60.0) -> None:
    """Poll ``predicate()`` until true; fail the test if ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


RAW_EXECUTOR = Path(__file__).with_name("raw_executor.py")


def executor_info_for(
    executor_id: str, command: str | None = "raw", resources: str = "cpus:0.1;mem:64"
) -> mesos_pb2.ExecutorInfo:
    """A custom ExecutorInfo; ``command="raw"`` runs :mod:`raw_executor`."""
    info = mesos_pb2.ExecutorInfo(type=mesos_pb2.ExecutorInfo.CUSTOM, name=executor_id)
    info.executor_id.value = executor_id
    info.resources.extend(Resources.parse(resources).to_protos())
    if command == "raw":
        info.command.value = f"{sys.executable} {RAW_EXECUTOR}"
        info.command.environment.variables.add(name="PYTHONPATH", value=str(ROOT))
    elif command is not None:
        info.command.value = command
    return info


def executor_task(
    task_id: str, data: bytes = b"", resources: str = "cpus:0.1;mem:32"
) -> mesos_pb2.TaskInfo:
    """A task for a custom executor (no command); ``data`` tells raw_executor what to do."""
    task = mesos_pb2.TaskInfo(name=task_id, data=data)
    task.task_id.value = task_id
    task.resources.extend(Resources.parse(resources).to_protos())
    return task
