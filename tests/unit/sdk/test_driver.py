"""SchedulerDriver (threaded, classic Mesos API) against a scripted master."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

from framework_sdk import (
    DriverStateError,
    Scheduler,
    SchedulerDriver,
    Status,
    messages,
)
from tests.unit.sdk.callback_recorder import CallbackRecorder
from tests.unit.sdk.conftest import FAST
from tests.unit.sdk.scripted_master import (
    WAIT_SECONDS,
    ScriptedMaster,
    error_event,
    failure_event,
    make_offer,
    message_event,
    offers_event,
    rescind_event,
    update_event,
)


class Recorder(CallbackRecorder, Scheduler):
    """Records every callback; see :class:`CallbackRecorder`."""

    def registered(self, driver: SchedulerDriver, frameworkId: Any, masterInfo: Any) -> None:
        self._record("registered", driver, frameworkId, masterInfo)

    def reregistered(self, driver: SchedulerDriver, masterInfo: Any) -> None:
        self._record("reregistered", driver, masterInfo)

    def disconnected(self, driver: SchedulerDriver) -> None:
        self._record("disconnected", driver)

    def resourceOffers(self, driver: SchedulerDriver, offers: Any) -> None:
        self._record("resourceOffers", driver, offers)

    def offerRescinded(self, driver: SchedulerDriver, offerId: Any) -> None:
        self._record("offerRescinded", driver, offerId)

    def statusUpdate(self, driver: SchedulerDriver, status: Any) -> None:
        self._record("statusUpdate", driver, status)

    def frameworkMessage(
        self, driver: SchedulerDriver, executorId: Any, agentId: Any, message: Any
    ) -> None:
        self._record("frameworkMessage", driver, executorId, agentId, message)

    def slaveLost(self, driver: SchedulerDriver, agentId: Any) -> None:
        self._record("slaveLost", driver, agentId)

    def executorLost(
        self, driver: SchedulerDriver, executorId: Any, agentId: Any, status: Any
    ) -> None:
        self._record("executorLost", driver, executorId, agentId, status)

    def error(self, driver: SchedulerDriver, message: str) -> None:
        self._record("error", driver, message, driver.status)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


MakeDriver = Callable[..., SchedulerDriver]


@pytest.fixture
def make_driver(
    master: ScriptedMaster, framework_info: messages.FrameworkInfo, recorder: Recorder
) -> Iterator[MakeDriver]:
    """Builds drivers for the scripted master; any left running are aborted and joined."""
    made: list[SchedulerDriver] = []

    def make(
        scheduler: Scheduler | None = None,
        info: messages.FrameworkInfo | None = None,
        **kwargs: Any,
    ) -> SchedulerDriver:
        driver = SchedulerDriver(
            scheduler or recorder, info or framework_info, master.address, config=FAST, **kwargs
        )
        made.append(driver)
        return driver

    yield make
    for driver in made:
        if driver.status is Status.DRIVER_RUNNING:
            driver.abort()
        if driver.status is not Status.DRIVER_NOT_STARTED:
            driver.join()


def started(make_driver: MakeDriver, recorder: Recorder, **kwargs: Any) -> SchedulerDriver:
    driver = make_driver(**kwargs)
    assert driver.start() is Status.DRIVER_RUNNING
    recorder.wait_for("registered")
    return driver


# -- without a master --


def test_status_values_are_mesos_values() -> None:
    assert [(s.name, s.value) for s in Status] == [
        ("DRIVER_NOT_STARTED", 1),
        ("DRIVER_RUNNING", 2),
        ("DRIVER_ABORTED", 3),
        ("DRIVER_STOPPED", 4),
    ]
    assert int(Status.DRIVER_STOPPED) == int(messages.DRIVER_STOPPED)


def test_constructor_checks_its_arguments(framework_info: messages.FrameworkInfo) -> None:
    with pytest.raises(TypeError, match="scheduler must be a Scheduler"):
        SchedulerDriver(None, framework_info, "127.0.0.1:5050")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="framework_info must be a FrameworkInfo"):
        SchedulerDriver(Scheduler(), "fw", "127.0.0.1:5050")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"framework_info\.name is empty"):
        SchedulerDriver(Scheduler(), messages.FrameworkInfo(), "127.0.0.1:5050")
    with pytest.raises(ValueError, match="no valid port"):
        SchedulerDriver(Scheduler(), framework_info, "127.0.0.1:port")


def test_methods_before_start_raise(framework_info: messages.FrameworkInfo) -> None:
    driver = SchedulerDriver(Scheduler(), framework_info, "127.0.0.1:5050")
    assert driver.status is Status.DRIVER_NOT_STARTED
    assert driver.framework_id is None
    attempts: list[Callable[[], object]] = [
        driver.join,
        driver.stop,
        driver.abort,
        lambda: driver.declineOffer(messages.OfferID(value="o1")),
        lambda: driver.launchTasks([messages.OfferID(value="o1")], []),
        lambda: driver.killTask(messages.TaskID(value="t1")),
        driver.reviveOffers,
        lambda: driver.reconcileTasks([]),
    ]
    for attempt in attempts:
        with pytest.raises(DriverStateError, match="before start"):
            attempt()


def test_explicit_ack_on_an_implicit_driver_raises(framework_info: messages.FrameworkInfo) -> None:
    driver = SchedulerDriver(Scheduler(), framework_info, "127.0.0.1:5050")
    with pytest.raises(DriverStateError, match="implicit acknowledgements"):
        driver.acknowledgeStatusUpdate(messages.TaskStatus())


# -- with the scripted master --


def test_callbacks_run_in_event_order_on_one_thread(
    master: ScriptedMaster, make_driver: MakeDriver, recorder: Recorder
) -> None:
    driver = started(make_driver, recorder)
    master.send(
        offers_event(make_offer("o1"), make_offer("o2")),
        rescind_event("o2"),
        update_event("t1", messages.TASK_RUNNING),
        message_event("agent-1", "exec-1", b"hello"),
        failure_event("agent-2"),
        failure_event("agent-1", "exec-1", 9),
    )
    recorder.wait_for("executorLost")
    assert recorder.names() == [
        "registered",
        "resourceOffers",
        "offerRescinded",
        "statusUpdate",
        "frameworkMessage",
        "slaveLost",
        "executorLost",
    ]
    assert recorder.threads == {"framework_sdk-callbacks"}
    (framework_id, master_info), (offers,), (offer_id,), (status,), message, (agent,), lost = (
        args for _, args in recorder.seen
    )
    assert framework_id.value == "framework-1"
    assert master_info.id == "scripted-master"
    assert [o.id.value for o in offers] == ["o1", "o2"]
    assert offer_id.value == "o2"
    assert status.state == messages.TASK_RUNNING
    assert [m.value if hasattr(m, "value") else m for m in message] == [
        "exec-1",
        "agent-1",
        b"hello",
    ]
    assert agent.value == "agent-2"
    assert (lost[0].value, lost[1].value, lost[2]) == ("exec-1", "agent-1", 9)
    assert driver.framework_id == messages.FrameworkID(value="framework-1")


def test_callbacks_never_overlap(
    master: ScriptedMaster, make_driver: MakeDriver, recorder: Recorder
) -> None:
    release = threading.Event()
    entered = threading.Event()

    def slow(driver: SchedulerDriver, offers: Any) -> None:
        entered.set()
        assert release.wait(WAIT_SECONDS)

    recorder.hooks["resourceOffers"] = slow
    started(make_driver, recorder)
    master.send(offers_event(make_offer("o1")))
    assert entered.wait(WAIT_SECONDS)
    # While the first callback blocks, more events arrive; none may start before it returns.
    master.send(*(update_event(f"t{i}", messages.TASK_RUNNING) for i in range(20)))
    master.send(offers_event(make_offer("o2")))
    release.set()
    recorder.wait_for("resourceOffers", 2)
    assert recorder.max_active == 1
    updates = [args[0].task_id.value for name, args in recorder.seen if name == "statusUpdate"]
    assert updates == [f"t{i}" for i in range(20)]


def test_implicit_ack_only_after_status_update_returns_and_only_with_uuid(
    master: ScriptedMaster, make_driver: MakeDriver, recorder: Recorder
) -> None:
    release = threading.Event()
    inside = threading.Event()

    def hold(driver: SchedulerDriver, status: Any) -> None:
        if status.task_id.value == "t2":
            inside.set()
            assert release.wait(WAIT_SECONDS)

    recorder.hooks["statusUpdate"] = hold
    started(make_driver, recorder)
    master.send(
        update_event("t1", messages.TASK_LOST),  # Master-made: no uuid, never acknowledged.
        update_event("t2", messages.TASK_RUNNING, uuid=b"2" * 16, agent_id="agent-5"),
    )
    assert inside.wait(WAIT_SECONDS)
    assert "Acknowledge" not in master.methods()  # Not while statusUpdate is running.
    release.set()
    (ack,) = master.wait_calls("Acknowledge")
    assert ack.call.acknowledge.task_id.value == "t2"
    assert ack.call.acknowledge.uuid == b"2" * 16
    assert ack.call.acknowledge.agent_id.value == "agent-5"
    assert ack.call.framework_id.value == "framework-1"
    assert ack.stream_id == "stream-1"


def test_explicit_acknowledgements(
    master: ScriptedMaster, make_driver: MakeDriver, recorder: Recorder
) -> None:
    results: list[Status] = []

    def ack(driver: SchedulerDriver, status: Any) -> None:
        results.append(driver.acknowledgeStatusUpdate(status))

    recorder.hooks["statusUpdate"] = ack
    started(make_driver, recorder, implicit_acknowledgements=False)
    master.send(
        update_event("t1", messages.TASK_RUNNING),  # No uuid: skipped, nothing sent.
        update_event("t2", messages.TASK_FINISHED, uuid=b"u" * 16),
        offers_event(make_offer("o1")),
    )
    recorder.wait_for("resourceOffers")
    (sent,) = master.wait_calls("Acknowledge")
    assert sent.call.acknowledge.task_id.value == "t2"
    assert results == [Status.DRIVER_RUNNING, Status.DRIVER_RUNNING]
    assert master.methods() == ["Acknowledge"]


def test_calls_are_sent_in_order_with_agent_ids_filled(
    master: ScriptedMaster, make_driver: MakeDriver, recorder: Recorder
) -> None:
    def act(driver: SchedulerDriver, offers: Any) -> None:
        offer = offers[0]
        task = messages.TaskInfo(name="t1")
        task.task_id.value = "t1"
        task.command.value = "sleep 100"
        task.resources.extend(messages.parse_resources("cpus:1"))
        assert driver.launchTasks(offer.id, [task]) is Status.DRIVER_RUNNING
        driver.killTask(task.task_id)
        driver.reconcileTasks([])
        driver.declineOffer(offers[1].id, messages.filters(60))
        driver.sendFrameworkMessage(messages.ExecutorID(value="e"), offer.agent_id, "text")
        driver.requestResources([messages.Request()])

    recorder.hooks["resourceOffers"] = act
    started(make_driver, recorder)
    master.send(offers_event(make_offer("o1", agent_id="agent-3"), make_offer("o2")))
    master.wait_calls("Request")
    assert master.methods() == ["Accept", "Kill", "Reconcile", "Decline", "Message", "Request"]
    accept, kill, _, decline, message, _ = master.calls
    assert accept.call.accept.operations[0].launch.task_infos[0].agent_id.value == "agent-3"
    assert kill.call.kill.agent_id.value == "agent-3"
    assert decline.call.decline.filters.refuse_seconds == 60
    assert message.call.message.data == b"text"


def test_bad_arguments_raise_in_the_caller(
    master: ScriptedMaster, make_driver: MakeDriver, recorder: Recorder
) -> None:
    driver = started(make_driver, recorder)
    with pytest.raises(ValueError, match="offer_ids is empty"):
        driver.launchTasks([], [])
    with pytest.raises(TypeError, match=r"tasks\[0\] must be a TaskInfo"):
        driver.launchTasks("o1", ["not a task"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="filters must be a Filters"):
        driver.declineOffer("o1", 5)  # type: ignore[arg-type]
    assert driver.status is Status.DRIVER_RUNNING
    assert master.calls == []


def test_reconnection_calls_disconnected_then_reregistered(
    master: ScriptedMaster, make_driver: MakeDriver, recorder: Recorder
) -> None:
    driver = started(make_driver, recorder)
    driver.suppressOffers()
    master.wait_calls("Suppress")
    master.end_stream()
    (master_info,) = recorder.wait_for("reregistered")[0]
    assert master_info.id == "scripted-master"
    assert recorder.names() == ["registered", "disconnected", "reregistered"]
    resubscribe = master.subscribe_calls[1]
    assert resubscribe.framework_id.value == "framework-1"
    assert list(resubscribe.subscribe.suppressed_roles) == ["*"]
    driver.reviveOffers()
    assert master.wait_calls("Revive")[0].stream_id == "stream-2"


def test_launch_while_disconnected_reports_the_tasks_lost(
    framework_info: messages.FrameworkInfo, recorder: Recorder
) -> None:
    with ScriptedMaster(send_subscribed=False) as master:
        for capabilities, expected in (
            ((), messages.TASK_LOST),
            (["PARTITION_AWARE"], messages.TASK_DROPPED),
        ):
            info = messages.framework_info("fw", user="u", capabilities=capabilities)
            seen = Recorder()
            driver = SchedulerDriver(seen, info, master.address, config=FAST)
            driver.start()
            task = messages.TaskInfo(name="t")
            task.task_id.value = "t1"
            assert driver.launchTasks("o1", [task]) is Status.DRIVER_RUNNING
            (status,) = seen.wait_for("statusUpdate")[0]
            assert status.state == expected
            assert status.reason == messages.REASON_MASTER_DISCONNECTED
            assert status.source == messages.SOURCE_MASTER
            assert status.task_id.value == "t1"
            assert not status.uuid
            driver.abort()
            assert driver.join() is Status.DRIVER_ABORTED
        assert master.calls == []


def test_stop_tears_the_framework_down(
    master: ScriptedMaster, make_driver: MakeDriver, recorder: Recorder
) -> None:
    driver = started(make_driver, recorder)
    driver.reviveOffers()
    assert driver.stop() is Status.DRIVER_STOPPED
    assert driver.join() is Status.DRIVER_STOPPED
    assert master.methods() == ["Revive", "Teardown"]  # Calls made before stop go first.
    assert driver.launchTasks("o1", []) is Status.DRIVER_STOPPED
    assert driver.stop() is Status.DRIVER_STOPPED
    assert master.methods() == ["Revive", "Teardown"]


def test_stop_with_failover_only_disconnects(
    master: ScriptedMaster, make_driver: MakeDriver, recorder: Recorder
) -> None:
    driver = started(make_driver, recorder)
    assert driver.stop(failover=True) is Status.DRIVER_STOPPED
    assert driver.join() is Status.DRIVER_STOPPED
    assert master.calls == []
    assert len(master.subscribe_calls) == 1


def test_stop_from_a_callback(
    master: ScriptedMaster, make_driver: MakeDriver, recorder: Recorder
) -> None:
    recorder.hooks["statusUpdate"] = lambda driver, status: driver.stop()
    driver = make_driver()
    results: list[Status] = []
    runner = threading.Thread(target=lambda: results.append(driver.run()))
    runner.start()
    recorder.wait_for("registered")
    master.send(update_event("t1", messages.TASK_FINISHED, uuid=b"u" * 16))
    runner.join(WAIT_SECONDS)
    assert results == [Status.DRIVER_STOPPED]
    # Stopped inside statusUpdate: the driver no longer runs, so no acknowledgement is sent.
    assert master.methods() == ["Teardown"]


def test_error_event_aborts_before_calling_error(
    master: ScriptedMaster, make_driver: MakeDriver, recorder: Recorder
) -> None:
    driver = started(make_driver, recorder)
    master.send(error_event("Framework failed over"))
    (message, status_inside) = recorder.wait_for("error")[0]
    assert message == "Framework failed over"
    assert status_inside is Status.DRIVER_ABORTED
    assert driver.join() is Status.DRIVER_ABORTED
    assert len(master.subscribe_calls) == 1
    assert driver.stop() is Status.DRIVER_ABORTED


def test_refused_call_reaches_error_without_aborting(
    master: ScriptedMaster, make_driver: MakeDriver, recorder: Recorder
) -> None:
    driver = started(make_driver, recorder)
    master.refuse_next(
        "Decline", grpc.StatusCode.INVALID_ARGUMENT, "decline.offer_ids[0]: unknown offer 'o1'"
    )
    driver.declineOffer(messages.OfferID(value="o1"))
    (message, status_inside) = recorder.wait_for("error")[0]
    assert "decline.offer_ids[0]: unknown offer 'o1'" in message
    assert "INVALID_ARGUMENT" in message
    assert status_inside is Status.DRIVER_RUNNING
    driver.reviveOffers()
    master.wait_calls("Revive")
    assert driver.status is Status.DRIVER_RUNNING


def test_callback_exception_aborts_the_driver(
    master: ScriptedMaster,
    make_driver: MakeDriver,
    recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def boom(driver: SchedulerDriver, offers: Any) -> None:
        raise RuntimeError("scheduler bug")

    recorder.hooks["resourceOffers"] = boom
    driver = started(make_driver, recorder)
    master.send(offers_event(make_offer("o1")), update_event("t1", messages.TASK_RUNNING))
    assert driver.join() is Status.DRIVER_ABORTED
    assert "statusUpdate" not in recorder.names()  # No callbacks after the abort.
    assert "scheduler bug" in caplog.text
    assert master.calls == []  # Aborting does not tear the framework down.


def test_abort_then_stop(
    master: ScriptedMaster, make_driver: MakeDriver, recorder: Recorder
) -> None:
    driver = started(make_driver, recorder)
    assert driver.abort() is Status.DRIVER_ABORTED
    assert driver.abort() is Status.DRIVER_ABORTED
    assert driver.stop() is Status.DRIVER_ABORTED
    assert driver.join() is Status.DRIVER_STOPPED
    assert master.calls == []


def test_update_framework_and_start_twice(
    master: ScriptedMaster, make_driver: MakeDriver, recorder: Recorder
) -> None:
    driver = started(make_driver, recorder)
    assert driver.start() is Status.DRIVER_RUNNING
    renamed = messages.framework_info("renamed", user="tester")
    driver.updateFramework(renamed, ["*"])
    (update,) = master.wait_calls("UpdateFramework")
    info = update.call.update_framework.framework_info
    assert (info.name, info.id.value) == ("renamed", "framework-1")
    assert list(update.call.update_framework.suppressed_roles) == ["*"]
    other = messages.framework_info("renamed", framework_id="someone-else")
    with pytest.raises(ValueError, match="not this framework's id 'framework-1'"):
        driver.updateFramework(other)


def test_launch_refused_for_a_stale_subscription_is_reported_lost(
    master: ScriptedMaster, make_driver: MakeDriver, recorder: Recorder
) -> None:
    driver = started(make_driver, recorder)
    master.refuse_next(
        "Accept", grpc.StatusCode.PERMISSION_DENIED, "stream 's' was superseded by a newer one"
    )
    task = messages.TaskInfo(name="t")
    task.task_id.value = "t1"
    driver.launchTasks("o1", [task])
    (status,) = recorder.wait_for("statusUpdate")[0]
    assert status.state == messages.TASK_LOST
    assert status.reason == messages.REASON_MASTER_DISCONNECTED
    assert "error" not in recorder.names()
    assert driver.status is Status.DRIVER_RUNNING


def test_acknowledgements_made_before_stop_go_out_before_teardown(
    master: ScriptedMaster, make_driver: MakeDriver, recorder: Recorder
) -> None:
    def stop_at_last(driver: SchedulerDriver, status: Any) -> None:
        if status.task_id.value == "t9":
            driver.stop()

    recorder.hooks["statusUpdate"] = stop_at_last
    driver = started(make_driver, recorder)
    master.send(
        *(update_event(f"t{i}", messages.TASK_FINISHED, uuid=bytes([i]) * 16) for i in range(10))
    )
    assert driver.join() is Status.DRIVER_STOPPED
    methods = master.methods()
    assert methods[-1] == "Teardown"
    acked = sorted(c.call.acknowledge.task_id.value for c in master.calls[:-1])
    assert acked == [f"t{i}" for i in range(9)]  # t9's callback stopped the driver: no ack.
