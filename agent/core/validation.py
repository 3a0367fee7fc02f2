"""Checks of what the master asks the agent to run, each failure a precise, field-naming message.

These are the agent's last line of defence: the master validates launches too, but a message
that reaches the agent malformed must fail that one task (TASK_ERROR) and change nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable

from protos.resources import Resources
from protos.v1 import mesos_pb2

__all__ = [
    "TaskRejected",
    "compatible_executors",
    "parse_resources",
    "validate_command",
    "validate_executor_info",
    "validate_task_id",
    "validate_task_info",
]

_HEALTH_FIELDS = {
    mesos_pb2.HealthCheck.COMMAND: "command",
    mesos_pb2.HealthCheck.HTTP: "http",
    mesos_pb2.HealthCheck.TCP: "tcp",
}


class TaskRejected(Exception):  # noqa: N818 - a verdict, not an error of the agent's
    """TaskRejected: the task cannot run here; ``state``/``reason``/``message`` go to the master."""

    def __init__(
        self,
        message: str,
        state: mesos_pb2.TaskState.ValueType = mesos_pb2.TASK_ERROR,
        reason: mesos_pb2.TaskStatus.Reason.ValueType = mesos_pb2.TaskStatus.REASON_TASK_INVALID,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.state = state
        self.reason = reason


def parse_resources(resources: Iterable[mesos_pb2.Resource], where: str) -> Resources:
    """``Resources`` from protos; TaskRejected naming ``where`` and the bad resource if invalid."""
    try:
        return Resources.from_protos(resources)
    except ValueError as error:
        raise TaskRejected(f"{where}.resources: {error}") from None


def validate_command(command: mesos_pb2.CommandInfo, where: str) -> None:
    """Check a CommandInfo: something to run, well-formed environment and URIs."""
    if not command.value:
        form = "the shell command" if command.shell else "the executable to run"
        raise TaskRejected(f"{where}.value is empty: it must hold {form}")
    for index, variable in enumerate(command.environment.variables):
        field = f"{where}.environment.variables[{index}]"
        if not variable.name:
            raise TaskRejected(f"{field}.name is empty")
        if "=" in variable.name or "\0" in variable.name:
            raise TaskRejected(f"{field}.name {variable.name!r} contains '=' or NUL")
        if variable.type == mesos_pb2.Environment.Variable.SECRET:
            raise TaskRejected(f"{field}: SECRET variables are not supported by this agent")
    for index, uri in enumerate(command.uris):
        if not uri.value:
            raise TaskRejected(f"{where}.uris[{index}].value is empty")
        if "/" in uri.output_file or uri.output_file in (".", ".."):
            raise TaskRejected(
                f"{where}.uris[{index}].output_file {uri.output_file!r} must be a plain file name"
            )


def _validate_health_check(check: mesos_pb2.HealthCheck, where: str) -> None:
    field = _HEALTH_FIELDS.get(check.type)
    if field is None:
        raise TaskRejected(f"{where}.type must be COMMAND, HTTP or TCP")
    if not check.HasField(field):  # type: ignore[arg-type]
        raise TaskRejected(f"{where}.{field} must be set for a {field.upper()} check")
    if check.type == mesos_pb2.HealthCheck.COMMAND:
        validate_command(check.command, f"{where}.command")
    port = check.http.port if check.type == mesos_pb2.HealthCheck.HTTP else check.tcp.port
    if check.type != mesos_pb2.HealthCheck.COMMAND and not 0 < port < 65536:
        raise TaskRejected(f"{where}.{field}.port {port} is not a port number")
    for name in ("delay_seconds", "interval_seconds", "timeout_seconds", "grace_period_seconds"):
        if getattr(check, name) < 0:
            raise TaskRejected(f"{where}.{name} is negative")


NAME_MAX = 255
"""Bytes in one path component on Linux file systems: the longest id a directory can be named."""


def _check_path_safe(kind: str, value: str, where: str) -> None:
    # Ids name directories in the sandbox and checkpoint trees.
    if value in (".", "..") or "/" in value or "\0" in value:
        raise TaskRejected(f"{where} {value!r}: a {kind} cannot be '.', '..' or contain '/' or NUL")
    size = len(value.encode())
    if size > NAME_MAX:
        raise TaskRejected(
            f"{where} is {size} bytes: a {kind} names a directory, which holds at most"
            f" {NAME_MAX} bytes ({value[:32]!r}...)"
        )


def validate_task_id(task_id: str, where: str = "task") -> None:
    """Check a task id: not empty, and usable as a directory name."""
    if not task_id:
        raise TaskRejected(f"{where}.task_id is empty")
    _check_path_safe("task id", task_id, f"{where}.task_id")


def validate_task_info(task: mesos_pb2.TaskInfo, has_executor: bool, where: str = "task") -> None:
    """Check a TaskInfo's shape (resources are checked by :func:`parse_resources`).

    ``has_executor`` says whether an ExecutorInfo comes with the task (in the task or next to
    it): exactly one of that and ``command`` must be given.
    """
    validate_task_id(task.task_id.value, where)
    if has_executor and task.HasField("command"):
        raise TaskRejected(f"{where}: only one of 'executor' and 'command' may be set")
    if not has_executor and not task.HasField("command"):
        raise TaskRejected(f"{where}: one of 'executor' and 'command' must be set")
    if task.HasField("command"):
        validate_command(task.command, f"{where}.command")
        if task.HasField("health_check"):
            _validate_health_check(task.health_check, f"{where}.health_check")
    if task.container.type == mesos_pb2.ContainerInfo.DOCKER:
        raise TaskRejected(f"{where}.container.type DOCKER is not supported by this agent")
    if task.kill_policy.grace_period.nanoseconds < 0:
        raise TaskRejected(f"{where}.kill_policy.grace_period is negative")


def validate_executor_info(
    info: mesos_pb2.ExecutorInfo, framework_id: str, where: str = "executor"
) -> None:
    """Check an ExecutorInfo for a custom executor the agent may have to start."""
    if not info.executor_id.value:
        raise TaskRejected(f"{where}.executor_id is empty")
    _check_path_safe("executor id", info.executor_id.value, f"{where}.executor_id")
    if info.HasField("framework_id") and info.framework_id.value != framework_id:
        raise TaskRejected(
            f"{where}.framework_id {info.framework_id.value!r} is not the task's framework"
            f" {framework_id!r}"
        )
    if info.container.type == mesos_pb2.ContainerInfo.DOCKER:
        raise TaskRejected(f"{where}.container.type DOCKER is not supported by this agent")
    if info.HasField("command"):
        validate_command(info.command, f"{where}.command")


def compatible_executors(running: mesos_pb2.ExecutorInfo, asked: mesos_pb2.ExecutorInfo) -> bool:
    """Whether a task's ExecutorInfo names the running executor as it was started.

    Resources may differ (the master may send them stripped); everything else must match, as in
    Mesos, so a framework cannot silently get a different executor than it described.
    """
    a = mesos_pb2.ExecutorInfo()
    a.CopyFrom(running)
    b = mesos_pb2.ExecutorInfo()
    b.CopyFrom(asked)
    for info in (a, b):
        del info.resources[:]
        info.ClearField("framework_id")
    return a.SerializeToString(deterministic=True) == b.SerializeToString(deterministic=True)
