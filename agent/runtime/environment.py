"""The argv and environment a container's process starts with.

Processes do not inherit the agent's environment (as in Mesos): they get ``PATH`` (the agent's,
so tools it finds are found), the Mesos variables describing where they run, the
``EMPORION_*`` equivalents, and last the CommandInfo's own variables, which win.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from protos.durations import format_duration
from protos.v1 import mesos_pb2

__all__ = ["DEFAULT_PATH", "ExecutorEndpoint", "command_argv", "process_environment"]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SUBSCRIPTION_BACKOFF_MAX = 2.0  # Mesos's DEFAULT_SUBSCRIPTION_BACKOFF_MAX.


def command_argv(command: mesos_pb2.CommandInfo) -> tuple[list[str], bool]:
    """(argv, shell) for a CommandInfo.

    ``shell`` (the default) runs ``value`` with ``/bin/sh -c``. Otherwise ``value`` is the
    program and ``arguments`` its argv, whose first entry Mesos passes as ``argv[0]``; here the
    program itself is ``argv[0]``, and the remaining arguments follow.
    """
    if command.shell:
        return [command.value], True
    return [command.value, *command.arguments[1:]], False


@dataclass(frozen=True)
class ExecutorEndpoint:
    """What a custom executor is told about the agent it talks to."""

    address: str  # 127.0.0.1:<port> of the executor API (gRPC)
    shutdown_grace_period: float
    recovery_timeout: float
    http_address: str | None = None
    """host:port of the agent's HTTP API, where ``/api/v1/executor`` is (None: not served)."""


def process_environment(
    command: mesos_pb2.CommandInfo,
    *,
    sandbox: Path,
    agent_id: str,
    framework_id: str,
    executor_id: str,
    container_id: str,
    task_id: str | None,
    checkpoint: bool,
    executor: ExecutorEndpoint | None,
    agent_environ: Mapping[str, str] = os.environ,
) -> dict[str, str]:
    """The environment of a command task (``task_id`` set) or executor (``executor`` set)."""
    env = {
        "PATH": agent_environ.get("PATH", DEFAULT_PATH),
        "MESOS_SANDBOX": str(sandbox),
        "MESOS_DIRECTORY": str(sandbox),
        "MESOS_AGENT_ID": agent_id,
        "MESOS_FRAMEWORK_ID": framework_id,
        "MESOS_EXECUTOR_ID": executor_id,
        "MESOS_CONTAINER_ID": container_id,
        "MESOS_CHECKPOINT": "1" if checkpoint else "0",
        "EMPORION_SANDBOX": str(sandbox),
        "EMPORION_CONTAINER_ID": container_id,
    }
    for name in ("LANG", "LC_ALL", "TZ"):
        if name in agent_environ:
            env[name] = agent_environ[name]
    if task_id is not None:
        env["MESOS_TASK_ID"] = task_id
    if executor is not None:
        env.update(
            {
                # Mesos's name for the agent's HTTP address (pymesos's MesosExecutorDriver
                # talks /api/v1/executor there); Emporion's SDK reads EMPORION_AGENT_ENDPOINT.
                "MESOS_AGENT_ENDPOINT": executor.http_address or executor.address,
                "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": format_duration(
                    executor.shutdown_grace_period
                ),
                "MESOS_RECOVERY_TIMEOUT": format_duration(executor.recovery_timeout),
                "MESOS_SUBSCRIPTION_BACKOFF_MAX": format_duration(SUBSCRIPTION_BACKOFF_MAX),
                "EMPORION_AGENT_ENDPOINT": executor.address,
                "EMPORION_FRAMEWORK_ID": framework_id,
                "EMPORION_EXECUTOR_ID": executor_id,
                "EMPORION_CHECKPOINT": "1" if checkpoint else "0",
            }
        )
    for variable in command.environment.variables:
        if variable.type != mesos_pb2.Environment.Variable.SECRET:
            env[variable.name] = variable.value
    return env
