"""ExecutorDriver (threaded, classic Mesos API) against a scripted agent."""

from __future__ import annotations

import threading
from typing import Any

import grpc
import pytest

from framework_sdk import DriverStateError, Status, messages
from framework_sdk.executor import Executor
from framework_sdk.executor_config import ExecutorEnvironmentError
from framework_sdk.executor_driver import ExecutorDriver
from tests.unit.sdk.callback_recorder import CallbackRecorder
from tests.unit.sdk_executor.scripted_agent import (
    WAIT_SECONDS,
    ScriptedAgent,
    error_event,
    kill_event,
    launch_event,
    launch_group_event,
    message_event,
    shutdown_event,
)


class Recorder(CallbackRecorder, Executor):
    """Records every callback; see :class:`CallbackRecorder`."""

    def registered(
        self, driver: ExecutorDriver, executorInfo: Any, frameworkInfo: Any, agentInfo: Any
    ) -> None:
        self._record("registered", driver, executorInfo, frameworkInfo, agentInfo)

    def reregistered(self, driver: ExecutorDriver, agentInfo: Any) -> None:
        self._record("reregistered", driver, agentInfo)

    def disconnected(self, driver: ExecutorDriver) -> None:
        self._record("disconnected", driver)

    def launchTask(self, driver: ExecutorDriver, task: Any) -> None:
        self._record("launchTask", driver, task)

    def killTask(self, driver: ExecutorDriver, taskId: Any) -> None:
        self._record("killTask", driver, taskId)

    def frameworkMessage(self, driver: ExecutorDriver, message: bytes) -> None:
        self._record("frameworkMessage", driver, message)

    def shutdown(self, driver: ExecutorDriver) -> None:
        self._record("shutdown", driver)

    def error(self, driver: ExecutorDriver, message: str) -> None:
        self._record("error", driver, message)


def status(task_id: str, state: int) -> messages.TaskStatus:
    result = messages.TaskStatus(state=state)  # type: ignore[arg-type]
    result.task_id.value = task_id
    return result


def started(agent: ScriptedAgent, recorder: Recorder, **environ: Any) -> ExecutorDriver:
    driver = ExecutorDriver(recorder, environ=agent.environ(**environ))
    assert driver.start() is Status.DRIVER_RUNNING
    recorder.wait_for("registered")
    return driver


def finish(driver: ExecutorDriver) -> Status:
    """Stop a driver still running (leaving no threads behind) and join it."""
    if driver.status is Status.DRIVER_RUNNING:
        driver.stop()
    return driver.join()


def test_callbacks_in_event_order_on_one_thread(agent: ScriptedAgent) -> None:
    recorder = Recorder()
    driver = started(agent, recorder)
    _, (executor_info, framework_info, agent_info) = recorder.seen[0]
    assert executor_info.executor_id.value == "executor-1"
    assert framework_info.id.value == "framework-1"
    assert agent_info.id.value == "agent-1"
    agent.send(
        launch_event("t1"),
        message_event(b"ping 1"),
        launch_group_event("g1", "g2"),
        kill_event("t1"),
        shutdown_event(),
    )
    assert driver.join() is Status.DRIVER_STOPPED
    assert recorder.names() == [
        "registered",
        "launchTask",
        "frameworkMessage",
        "launchTask",  # The group, task by task (Executor.launchTaskGroup's default).
        "launchTask",
        "killTask",
        "shutdown",
    ]
    assert [args[0].task_id.value for name, args in recorder.seen if name == "launchTask"] == [
        "t1",
        "g1",
        "g2",
    ]
    assert recorder.wait_for("frameworkMessage")[0] == (b"ping 1",)
    assert recorder.wait_for("killTask")[0][0].value == "t1"
    assert recorder.threads == {"framework_sdk-executor-callbacks"}
    assert recorder.max_active == 1


def test_status_updates_get_uuids_and_are_acknowledged(agent: ScriptedAgent) -> None:
    recorder = Recorder()
    recorder.hooks["launchTask"] = lambda driver, task: driver.sendStatusUpdate(
        status(task.task_id.value, messages.TASK_RUNNING)
    )
    driver = started(agent, recorder)
    agent.send(launch_event("t1"), launch_event("t2"))
    updates = agent.wait_updates(2)
    assert [u.task_id.value for u in updates] == ["t1", "t2"]
    assert len({u.uuid for u in updates}) == 2
    assert all(len(u.uuid) == 16 for u in updates)
    assert {u.source for u in updates} == {messages.SOURCE_EXECUTOR}
    assert {u.executor_id.value for u in updates} == {"executor-1"}
    assert {u.agent_id.value for u in updates} == {"agent-1"}
    assert all(u.timestamp > 0 for u in updates)
    # The agent acknowledged both (auto_ack); stop() sends everything queued first.
    driver.sendStatusUpdate(status("t1", messages.TASK_FINISHED))
    driver.sendFrameworkMessage("bye")
    assert driver.stop() is Status.DRIVER_STOPPED
    assert driver.join() is Status.DRIVER_STOPPED
    assert [u.state for u in agent.wait_updates(3)][-1] == messages.TASK_FINISHED
    assert agent.wait_messages(1) == [b"bye"]
    assert driver.client is not None
    assert [u.task_id.value for u in driver.client.session.unacknowledged_updates] in (
        [],
        ["t1"],  # The last ACK may still have been on its way when the stream closed.
    )


def test_staging_and_bad_arguments_are_refused_at_once(agent: ScriptedAgent) -> None:
    recorder = Recorder()
    driver = started(agent, recorder)
    with pytest.raises(ValueError, match="TASK_STAGING"):
        driver.sendStatusUpdate(status("t1", messages.TASK_STAGING))
    with pytest.raises(TypeError, match="TaskStatus"):
        driver.sendStatusUpdate("TASK_RUNNING")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bytes"):
        driver.sendFrameworkMessage(42)  # type: ignore[arg-type]
    assert finish(driver) is Status.DRIVER_STOPPED
    assert agent.updates == []


def test_methods_before_start_and_after_stop() -> None:
    environ = {
        "MESOS_AGENT_ENDPOINT": "127.0.0.1:1",
        "MESOS_FRAMEWORK_ID": "f",
        "MESOS_EXECUTOR_ID": "e",
    }
    driver = ExecutorDriver(Recorder(), environ=environ)
    assert driver.status is Status.DRIVER_NOT_STARTED
    with pytest.raises(DriverStateError):
        driver.sendFrameworkMessage(b"x")
    with pytest.raises(DriverStateError):
        driver.stop()
    with pytest.raises(DriverStateError):
        driver.join()


def test_calls_after_stop_return_the_status(agent: ScriptedAgent) -> None:
    driver = started(agent, Recorder())
    assert driver.stop() is Status.DRIVER_STOPPED
    assert driver.sendFrameworkMessage(b"late") is Status.DRIVER_STOPPED
    assert driver.stop() is Status.DRIVER_STOPPED
    assert driver.abort() is Status.DRIVER_STOPPED
    assert driver.join() is Status.DRIVER_STOPPED
    assert driver.start() is Status.DRIVER_STOPPED


def test_environment_errors_name_the_variable() -> None:
    with pytest.raises(ExecutorEnvironmentError, match="MESOS_FRAMEWORK_ID"):
        ExecutorDriver(Recorder(), environ={"MESOS_AGENT_ENDPOINT": "127.0.0.1:5051"})
    with pytest.raises(TypeError):
        ExecutorDriver(None)  # type: ignore[arg-type]


def test_reconnect_calls_disconnected_then_reregistered(agent: ScriptedAgent) -> None:
    recorder = Recorder()
    driver = started(agent, recorder, checkpoint=True)
    agent.send(launch_event("t1"))
    recorder.wait_for("launchTask")
    agent.auto_ack = False
    driver.sendStatusUpdate(status("t1", messages.TASK_RUNNING))
    [update] = agent.wait_updates(1)
    agent.auto_ack = True
    agent.stop()
    recorder.wait_for("disconnected")
    agent.start()
    [(agent_info,)] = recorder.wait_for("reregistered")
    assert agent_info.id.value == "agent-1"
    resubscribe = agent.wait_subscribes(2)[-1].subscribe
    assert [u.status.uuid for u in resubscribe.unacknowledged_updates] == [update.uuid]
    assert [t.task_id.value for t in resubscribe.unacknowledged_tasks] == ["t1"]
    assert recorder.names() == ["registered", "launchTask", "disconnected", "reregistered"]
    assert finish(driver) is Status.DRIVER_STOPPED


def test_lost_agent_without_checkpointing_shuts_down(agent: ScriptedAgent) -> None:
    recorder = Recorder()
    driver = started(agent, recorder, checkpoint=False)
    agent.fail_stream(grpc.StatusCode.UNAVAILABLE, "agent gone")
    assert driver.join() is Status.DRIVER_STOPPED
    assert recorder.names() == ["registered", "disconnected", "shutdown"]


def test_recovery_timeout_calls_shutdown(agent: ScriptedAgent) -> None:
    recorder = Recorder()
    driver = started(agent, recorder, checkpoint=True, recovery_timeout="200ms")
    agent.stop()
    assert driver.join() is Status.DRIVER_STOPPED
    assert recorder.names() == ["registered", "disconnected", "shutdown"]


def test_updates_sent_in_shutdown_reach_the_agent(agent: ScriptedAgent) -> None:
    recorder = Recorder()
    recorder.hooks["shutdown"] = lambda driver: driver.sendStatusUpdate(
        status("t1", messages.TASK_KILLED)
    )
    driver = started(agent, recorder)
    agent.send(launch_event("t1"), shutdown_event())
    assert driver.join() is Status.DRIVER_STOPPED
    [update] = agent.wait_updates(1)
    assert update.state == messages.TASK_KILLED


def test_slow_shutdown_is_cut_at_the_grace_period(agent: ScriptedAgent) -> None:
    release = threading.Event()
    recorder = Recorder()

    def stuck(driver: ExecutorDriver) -> None:
        release.wait(WAIT_SECONDS)

    recorder.hooks["shutdown"] = stuck
    driver = started(agent, recorder, grace="100ms")
    agent.send(shutdown_event())
    try:
        assert driver.join() is Status.DRIVER_ABORTED
    finally:
        release.set()


def test_error_event_aborts_then_calls_error(agent: ScriptedAgent) -> None:
    recorder = Recorder()
    seen_status: list[Status] = []
    recorder.hooks["error"] = lambda driver, message: seen_status.append(driver.status)
    driver = started(agent, recorder)
    agent.send(error_event("framework removed"))
    assert driver.join() is Status.DRIVER_ABORTED
    assert recorder.wait_for("error") == [("framework removed",)]
    assert seen_status == [Status.DRIVER_ABORTED]


def test_refused_update_reaches_error_without_aborting(agent: ScriptedAgent) -> None:
    recorder = Recorder()
    driver = started(agent, recorder)
    agent.refuse_next("Update", grpc.StatusCode.NOT_FOUND, "task 't9' is unknown")
    driver.sendStatusUpdate(status("t9", messages.TASK_RUNNING))
    [(message,)] = recorder.wait_for("error")
    assert "UPDATE refused by the agent (NOT_FOUND): task 't9' is unknown" in message
    assert driver.status is Status.DRIVER_RUNNING
    assert finish(driver) is Status.DRIVER_STOPPED


def test_refused_first_subscription_aborts(agent: ScriptedAgent) -> None:
    agent.refuse_next("Subscribe", grpc.StatusCode.NOT_FOUND, "executor unknown here")
    recorder = Recorder()
    driver = ExecutorDriver(recorder, environ=agent.environ())
    assert driver.run() is Status.DRIVER_ABORTED
    [(message,)] = recorder.wait_for("error")
    assert "executor unknown here" in message


def test_raising_callback_aborts(agent: ScriptedAgent) -> None:
    recorder = Recorder()

    def explode(driver: ExecutorDriver, task: Any) -> None:
        raise RuntimeError("boom")

    recorder.hooks["launchTask"] = explode
    driver = started(agent, recorder)
    agent.send(launch_event("t1"), message_event(b"after"))
    assert driver.join() is Status.DRIVER_ABORTED
    assert "frameworkMessage" not in recorder.names()


def test_stop_from_a_callback(agent: ScriptedAgent) -> None:
    recorder = Recorder()

    def finish_task(driver: ExecutorDriver, task: Any) -> None:
        driver.sendStatusUpdate(status(task.task_id.value, messages.TASK_FINISHED))
        driver.stop()

    recorder.hooks["launchTask"] = finish_task
    driver = started(agent, recorder)
    agent.send(launch_event("t1"))
    assert driver.join() is Status.DRIVER_STOPPED
    [update] = agent.wait_updates(1)
    assert update.state == messages.TASK_FINISHED


def test_join_from_a_callback_returns_once_stopped(agent: ScriptedAgent) -> None:
    # As the scheduler driver's: a callback joining does not wait for its own thread.
    recorder = Recorder()
    joined: list[Status] = []

    def stop_and_join(driver: ExecutorDriver, task: Any) -> None:
        driver.stop()
        joined.append(driver.join())

    recorder.hooks["launchTask"] = stop_and_join
    driver = started(agent, recorder)
    agent.send(launch_event("t1"))
    recorder.wait_for("launchTask")
    assert joined == [Status.DRIVER_STOPPED]
    assert driver.join() is Status.DRIVER_STOPPED


def test_run_returns_when_stopped_from_another_thread(agent: ScriptedAgent) -> None:
    recorder = Recorder()
    driver = ExecutorDriver(recorder, environ=agent.environ())
    stopper = threading.Thread(target=lambda: (recorder.wait_for("registered"), driver.stop()))
    stopper.start()
    assert driver.run() is Status.DRIVER_STOPPED
    stopper.join()
