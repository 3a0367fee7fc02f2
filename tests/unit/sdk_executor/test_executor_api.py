"""The executor side's surface: Mesos callback names, no-op defaults, the I/O-free core."""

from __future__ import annotations

import inspect

import pytest

from framework_sdk.executor import Executor
from framework_sdk.executor_driver import ExecutorDriver
from protos.v1 import mesos_pb2
from tests.unit.test_architecture import IO_MODULES, transitive_imports

# Modules that decide what happens; only executor_aio.py and executor_driver.py may do I/O.
SANS_IO = ("framework_sdk.executor_session", "framework_sdk.executor_config")

CALLBACKS = {
    "registered": ["driver", "executorInfo", "frameworkInfo", "agentInfo"],
    "reregistered": ["driver", "agentInfo"],
    "disconnected": ["driver"],
    "launchTask": ["driver", "task"],
    "launchTaskGroup": ["driver", "taskGroup"],
    "killTask": ["driver", "taskId"],
    "frameworkMessage": ["driver", "message"],
    "shutdown": ["driver"],
    "error": ["driver", "message"],
}


def test_executor_callbacks_have_mesos_names_and_arguments() -> None:
    for name, params in CALLBACKS.items():
        signature = inspect.signature(getattr(Executor, name))
        assert list(signature.parameters)[1:] == params, name


def test_driver_methods_have_mesos_names() -> None:
    for name in ("start", "stop", "abort", "join", "run", "sendStatusUpdate"):
        assert callable(getattr(ExecutorDriver, name)), name
    assert list(inspect.signature(ExecutorDriver.sendFrameworkMessage).parameters) == [
        "self",
        "data",
    ]


def test_default_callbacks_do_nothing() -> None:
    executor = Executor()
    driver = object()
    for name, params in CALLBACKS.items():
        if name == "launchTaskGroup":
            continue
        args = [None] * (len(params) - 1)
        assert getattr(executor, name)(driver, *args) is None


def test_task_group_defaults_to_one_launch_per_task() -> None:
    launched: list[str] = []

    class Recording(Executor):
        def launchTask(self, driver: ExecutorDriver, task: mesos_pb2.TaskInfo) -> None:
            launched.append(task.task_id.value)

    group = mesos_pb2.TaskGroupInfo()
    for task_id in ("a", "b", "c"):
        group.tasks.add(name=task_id).task_id.value = task_id
    Recording().launchTaskGroup(None, group)  # type: ignore[arg-type]
    assert launched == ["a", "b", "c"]


@pytest.mark.parametrize("module", SANS_IO)
def test_core_modules_do_no_io(module: str) -> None:
    reached = sorted(n for n in transitive_imports(module) if n.split(".")[0] in IO_MODULES)
    assert reached == []


def test_executor_side_never_imports_agent_or_master() -> None:
    modules = [
        "framework_sdk.executor",
        "framework_sdk.executor_aio",
        "framework_sdk.executor_config",
        "framework_sdk.executor_driver",
        "framework_sdk.executor_session",
        "examples.custom_executor",
    ]
    for module in modules:
        reached = {n.split(".")[0] for n in transitive_imports(module)}
        assert not reached & {"agent", "master"}, module
