"""Custom executors on a real agent: the executor API end to end, timeouts, exits."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import grpc
import pytest

from protos.v1 import agent_internal_pb2 as ai
from protos.v1 import executor_pb2, executor_pb2_grpc, mesos_pb2
from tests.integration.agent.conftest import StartAgent
from tests.integration.agent.fake_master import FakeMaster
from tests.integration.agent.support import (
    FW,
    ROOT,
    executor_info_for,
    executor_task,
    kill_task,
    run_task,
)

Reason = mesos_pb2.TaskStatus
SDK_EXECUTOR = Path(__file__).with_name("sdk_executor.py")


def test_a_custom_executor_runs_tasks_and_relays_messages(
    master: FakeMaster, start_agent: StartAgent
) -> None:
    start_agent()
    executor = executor_info_for("ex")
    master.send(run_task(executor_task("a", b"finish"), executor=executor))
    running = master.wait_and_ack("a", mesos_pb2.TASK_RUNNING)
    assert running.executor_id.value == "ex"
    assert running.status.source == Reason.SOURCE_EXECUTOR
    master.wait_and_ack("a", mesos_pb2.TASK_FINISHED)
    master.send(run_task(executor_task("b"), executor=executor))  # To the running executor.
    master.wait_and_ack("b", mesos_pb2.TASK_RUNNING)
    message = ai.MasterMessage()
    message.framework_to_executor.framework_id.value = FW
    message.framework_to_executor.executor_id.value = "ex"
    message.framework_to_executor.data = b"ping"
    master.send(message)
    master.wait_for(lambda: master.messages("executor_to_framework"), "the echo")
    [echo] = master.messages("executor_to_framework")
    assert echo.executor_to_framework.data == b"echo:ping"
    master.send(kill_task("b"))
    master.wait_and_ack("b", mesos_pb2.TASK_KILLED)
    shutdown = ai.MasterMessage()
    shutdown.shutdown_executor.framework_id.value = FW
    shutdown.shutdown_executor.executor_id.value = "ex"
    master.send(shutdown)
    master.wait_for(lambda: master.messages("exited_executor"), "ExitedExecutor")


def test_an_executor_written_with_the_sdk(master: FakeMaster, start_agent: StartAgent) -> None:
    start_agent()
    executor = executor_info_for("sdk", command=f"{sys.executable} {SDK_EXECUTOR}")
    executor.command.environment.variables.add(name="PYTHONPATH", value=str(ROOT))
    master.send(run_task(executor_task("a", b"finish"), executor=executor))
    master.wait_and_ack("a", mesos_pb2.TASK_RUNNING)
    master.wait_and_ack("a", mesos_pb2.TASK_FINISHED)
    master.send(run_task(executor_task("b"), executor=executor))
    master.wait_and_ack("b", mesos_pb2.TASK_RUNNING)
    message = ai.MasterMessage()
    message.framework_to_executor.framework_id.value = FW
    message.framework_to_executor.executor_id.value = "sdk"
    message.framework_to_executor.data = b"hi"
    master.send(message)
    master.wait_for(lambda: master.messages("executor_to_framework"), "the echo")
    assert master.messages("executor_to_framework")[0].executor_to_framework.data == b"echo:hi"
    master.send(kill_task("b"))
    master.wait_and_ack("b", mesos_pb2.TASK_KILLED)
    shutdown = ai.MasterMessage()
    shutdown.shutdown_executor.framework_id.value = FW
    shutdown.shutdown_executor.executor_id.value = "sdk"
    master.send(shutdown)
    master.wait_for(lambda: master.messages("exited_executor"), "ExitedExecutor")


def test_an_executor_that_never_subscribes_times_out(
    master: FakeMaster, start_agent: StartAgent
) -> None:
    start_agent(["--executor-registration-timeout", "500ms"])
    executor = executor_info_for("lazy", command="sleep 1000")
    master.send(run_task(executor_task("a"), executor=executor))
    failed = master.wait_and_ack("a", mesos_pb2.TASK_FAILED)
    assert failed.status.reason == Reason.REASON_EXECUTOR_REGISTRATION_TIMEOUT
    assert failed.status.message == "Executor did not register within 0.5 seconds"
    master.wait_for(lambda: master.messages("exited_executor"), "ExitedExecutor")


def test_an_executor_crash_fails_its_tasks_with_the_exit_status(
    master: FakeMaster, start_agent: StartAgent
) -> None:
    start_agent()
    master.send(run_task(executor_task("a", b"fail"), executor=executor_info_for("ex")))
    master.wait_and_ack("a", mesos_pb2.TASK_RUNNING)
    failed = master.wait_and_ack("a", mesos_pb2.TASK_FAILED)
    assert failed.status.reason == Reason.REASON_EXECUTOR_TERMINATED
    assert failed.status.message == "Executor terminated: exited with status 7"
    master.wait_for(lambda: master.messages("exited_executor"), "ExitedExecutor")
    [exited] = master.messages("exited_executor")
    assert exited.exited_executor.status == 7 << 8


def test_executor_api_refusals_name_the_problem(
    master: FakeMaster, start_agent: StartAgent
) -> None:
    agent = start_agent()
    master.session()
    stub = executor_pb2_grpc.ExecutorStub(grpc.insecure_channel(f"127.0.0.1:{agent.executor_port}"))
    call = executor_pb2.Call(type=executor_pb2.Call.SUBSCRIBE)
    call.framework_id.value = FW
    call.executor_id.value = "nobody"
    with pytest.raises(grpc.RpcError) as error:
        next(iter(stub.Subscribe(call)))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert "executor 'nobody' of framework 'fw-1' is not on this agent" in str(
        error.value.details()
    )
    call.type = executor_pb2.Call.UPDATE
    with pytest.raises(grpc.RpcError) as error:
        stub.Update(call)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details() == "call.update.status is required"
    call.update.status.task_id.value = "t"
    call.update.status.uuid = uuid.uuid4().bytes
    with pytest.raises(grpc.RpcError) as error:
        stub.Update(call)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
