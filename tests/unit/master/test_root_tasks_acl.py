"""Running a task as root needs a ``run_tasks`` rule that allows it once ``--acls`` is given:
``permissive`` lets through users no rule names, but never root (protos.acls.PRIVILEGED_USERS).
Without ``--acls`` nothing is authorized, root included, as in Mesos."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from master.auth import MasterSecurity, PermissionDeniedError
from master.config import MasterConfig
from protos.v1 import mesos_pb2, scheduler_pb2


def accept_as(user: str | None) -> scheduler_pb2.Call:
    call = scheduler_pb2.Call(type=scheduler_pb2.Call.ACCEPT)
    operation = call.accept.operations.add(type=mesos_pb2.Offer.Operation.LAUNCH)
    task = operation.launch.task_infos.add(name="t")
    task.task_id.value = "t"
    if user is not None:
        task.command.user = user
    return call


def security(tmp_path: Path, acls: dict[str, object] | None) -> MasterSecurity:
    path = None
    if acls is not None:
        path = tmp_path / "acls.json"
        path.write_text(json.dumps(acls))
    return MasterSecurity(MasterConfig(port=0, http_port=0, registry="memory", acls=path))


def framework(user: str) -> mesos_pb2.FrameworkInfo:
    info = mesos_pb2.FrameworkInfo(user=user, name="f", principal="etl")
    info.id.value = "F1"
    return info


def test_a_permissive_acl_file_does_not_let_tasks_run_as_root(tmp_path: Path) -> None:
    checks = security(tmp_path, {"permissive": True})
    checks.check_call("etl", accept_as("nobody"), framework("nobody"))
    with pytest.raises(PermissionDeniedError) as denied:
        checks.check_call("etl", accept_as("root"), framework("nobody"))
    assert str(denied.value) == (
        "principal 'etl' is not authorized to run_tasks: tasks may not run as user 'root':"
        " running as root needs a run_tasks rule that allows it ('permissive' does not cover it)"
    )
    # The framework's user is the task's when the task names none.
    with pytest.raises(PermissionDeniedError):
        checks.check_call("etl", accept_as(None), framework("root"))


def test_a_rule_naming_root_or_any_user_allows_it(tmp_path: Path) -> None:
    named = security(
        tmp_path,
        {"run_tasks": [{"principals": {"values": ["etl"]}, "users": {"values": ["root"]}}]},
    )
    named.check_call("etl", accept_as("root"), framework("nobody"))
    with pytest.raises(PermissionDeniedError):
        named.check_call("other", accept_as("root"), framework("nobody"))
    anyone = security(
        tmp_path, {"run_tasks": [{"principals": {"type": "ANY"}, "users": {"type": "ANY"}}]}
    )
    anyone.check_call(None, accept_as("root"), framework("root"))


def test_a_rule_refusing_root_refuses_it(tmp_path: Path) -> None:
    checks = security(
        tmp_path,
        {"run_tasks": [{"principals": {"type": "ANY"}, "users": {"values": ["nobody"]}}]},
    )
    with pytest.raises(PermissionDeniedError):
        checks.check_call("etl", accept_as("root"), framework("nobody"))


def test_without_acls_root_is_not_authorized_at_all(tmp_path: Path) -> None:
    security(tmp_path, None).check_call("etl", accept_as("root"), framework("root"))
