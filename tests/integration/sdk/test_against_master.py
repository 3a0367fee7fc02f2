"""framework_sdk against the real master (a subprocess) with emulated agents.

The examples run to completion; the threaded driver's acknowledgements reach the agents; a
scheduler fails over to a new driver and finds its task by reconciliation; a second scheduler
supersedes the first; the driver survives a master restart and a master that stops talking;
refusals come back with the master's messages; the client uses the master's batched API.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

from framework_sdk import (
    CallRefusedError,
    ClientConfig,
    Scheduler,
    SchedulerClient,
    SchedulerDriver,
    Status,
    SubscriptionError,
    calls,
    events,
    messages,
)
from tests.integration.sdk.conftest import (
    ROOT,
    WAIT_SECONDS,
    EmulatorThread,
    MasterProcess,
    needs_master,
)

pytestmark = needs_master

T = TypeVar("T")
TASK = "cpus:0.1;mem:32"
# Reconnect quickly; a short subscribe timeout so that a paused master is given up on soon.
QUICK = ClientConfig(
    backoff_initial_seconds=0.05, backoff_max_seconds=0.5, subscribe_timeout_seconds=2.0
)


class Tracker(Scheduler):
    """Launches the tasks it is given on the first offer big enough; records what happens."""

    def __init__(self, task_ids: list[str] = []) -> None:  # noqa: B006 - never mutated
        self.to_launch = list(task_ids)
        self.framework_id = ""
        self.states: dict[str, list[int]] = {}
        self.reasons: dict[str, list[int]] = {}
        self.seen: list[str] = []
        self.errors: list[str] = []
        self._cond = threading.Condition()

    def _note(self, name: str) -> None:
        with self._cond:
            self.seen.append(name)
            self._cond.notify_all()

    def wait(self, predicate: Callable[[], bool]) -> None:
        with self._cond:
            assert self._cond.wait_for(predicate, WAIT_SECONDS), f"seen {self.seen}: {self.errors}"

    def registered(self, driver: SchedulerDriver, frameworkId: Any, masterInfo: Any) -> None:
        self.framework_id = frameworkId.value
        self._note("registered")

    def reregistered(self, driver: SchedulerDriver, masterInfo: Any) -> None:
        self._note("reregistered")

    def disconnected(self, driver: SchedulerDriver) -> None:
        self._note("disconnected")

    def resourceOffers(self, driver: SchedulerDriver, offers: list[messages.Offer]) -> None:
        for offer in offers:
            if self.to_launch:
                tasks = [messages.task_info(t, offer, TASK, command="true") for t in self.to_launch]
                self.to_launch = []
                driver.launchTasks([offer.id], tasks)
            else:
                driver.declineOffer(offer.id, messages.filters(refuse_seconds=3600))
        self._note("resourceOffers")

    def statusUpdate(self, driver: SchedulerDriver, status: messages.TaskStatus) -> None:
        with self._cond:
            self.states.setdefault(status.task_id.value, []).append(status.state)
            self.reasons.setdefault(status.task_id.value, []).append(status.reason)
        self._note("statusUpdate")

    def error(self, driver: SchedulerDriver, message: str) -> None:
        with self._cond:
            self.errors.append(message)
        self._note("error")

    def state_of(self, task_id: str) -> int | None:
        with self._cond:
            states = self.states.get(task_id)
            return states[-1] if states else None


def run_example(module: str, address: str, tasks: int) -> dict[str, Any]:
    result = subprocess.run(
        [
            *(sys.executable, "-m", module, "--master", address),
            *("--tasks", str(tasks), "--timeout", str(WAIT_SECONDS)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS * 2,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


@pytest.mark.parametrize("module", ["examples.hello_framework", "examples.hello_async"])
def test_example_runs_to_completion(master: MasterProcess, module: str) -> None:
    with EmulatorThread(master.address, agents=2) as cluster:
        summary = run_example(module, master.address, 25)
        assert (summary["finished"], summary["failed"], summary["errors"]) == (25, {}, [])
        counters = cluster.call(lambda e: e.counters)
        assert counters.tasks_launched == 25
        assert counters.unexpected_acks == 0
        # The framework tore itself down, so the agents were told to forget it.
        cluster.wait_for(lambda e: all(not agent.tasks for agent in e.agents))


def test_implicit_acknowledgements_reach_the_agents(master: MasterProcess) -> None:
    with EmulatorThread(master.address, agents=1) as cluster:
        scheduler = Tracker(["a", "b", "c"])
        driver = SchedulerDriver(scheduler, messages.framework_info("acks"), master.address)
        driver.start()
        try:
            scheduler.wait(
                lambda: all(scheduler.state_of(t) == messages.TASK_FINISHED for t in "abc")
            )
            # RUNNING and FINISHED of each task, acknowledged after statusUpdate returned.
            cluster.wait_for(lambda e: e.counters.updates_acked == 6)
            assert cluster.call(lambda e: e.counters.unexpected_acks) == 0
        finally:
            assert driver.stop() is Status.DRIVER_STOPPED
            assert driver.join() is Status.DRIVER_STOPPED


def test_failover_to_a_new_driver_keeps_the_task(master: MasterProcess) -> None:
    with EmulatorThread(master.address, agents=1, mode="run"):
        first = Tracker(["long"])
        info = messages.framework_info("failover", failover_timeout=300)
        driver = SchedulerDriver(first, info, master.address)
        driver.start()
        first.wait(lambda: first.state_of("long") == messages.TASK_RUNNING)
        driver.stop(failover=True)
        assert driver.join() is Status.DRIVER_STOPPED

        second = Tracker()
        again = messages.framework_info(
            "failover", failover_timeout=300, framework_id=first.framework_id
        )
        successor = SchedulerDriver(second, again, master.address)
        successor.start()
        try:
            second.wait(lambda: "registered" in second.seen)
            assert second.framework_id == first.framework_id
            successor.reconcileTasks([])
            second.wait(lambda: second.state_of("long") is not None)
            assert second.state_of("long") == messages.TASK_RUNNING
            assert second.reasons["long"][-1] == messages.REASON_RECONCILIATION
        finally:
            successor.stop()
            successor.join()


def test_a_new_scheduler_supersedes_the_old_one(master: MasterProcess) -> None:
    with EmulatorThread(master.address, agents=1):
        old = Tracker()
        info = messages.framework_info("superseded", failover_timeout=300)
        old_driver = SchedulerDriver(old, info, master.address)
        old_driver.start()
        old.wait(lambda: "registered" in old.seen)
        new = Tracker()
        takeover = messages.framework_info(
            "superseded", failover_timeout=300, framework_id=old.framework_id
        )
        new_driver = SchedulerDriver(new, takeover, master.address)
        new_driver.start()
        try:
            new.wait(lambda: "registered" in new.seen)
            assert old_driver.join() is Status.DRIVER_ABORTED
            assert len(old.errors) == 1
            assert "failed over" in old.errors[0].lower()
        finally:
            new_driver.stop()
            new_driver.join()


def test_driver_comes_back_after_a_master_restart(master: MasterProcess) -> None:
    scheduler = Tracker()
    info = messages.framework_info("restart", failover_timeout=300)
    driver = SchedulerDriver(scheduler, info, master.address, config=QUICK)
    driver.start()
    try:
        scheduler.wait(lambda: "registered" in scheduler.seen)
        master.stop(signal.SIGKILL)
        scheduler.wait(lambda: "disconnected" in scheduler.seen)
        master.start()  # Same port, same work dir: it remembers the framework.
        scheduler.wait(lambda: "reregistered" in scheduler.seen)
        assert driver.framework_id == messages.FrameworkID(value=scheduler.framework_id)
        assert scheduler.errors == []
    finally:
        driver.stop()
        driver.join()


def run(body: Callable[[], Coroutine[Any, Any, T]]) -> T:
    async def guarded() -> T:
        async with asyncio.timeout(WAIT_SECONDS * 2):
            return await body()

    return asyncio.run(guarded())


def test_client_reconnects_when_the_master_stops_heartbeating(tmp_path: Any) -> None:
    master = MasterProcess(tmp_path, ["--heartbeat-interval", "100ms"])
    master.start()
    try:

        async def body() -> None:
            info = messages.framework_info("quiet", failover_timeout=300)
            async with SchedulerClient(master.address, info, config=QUICK) as client:
                stream = client.events(heartbeats=True)
                assert isinstance(await anext(stream), events.Subscribed)
                assert isinstance(await anext(stream), events.Heartbeat)
                master.pause()
                try:
                    event = await anext(stream)
                    while isinstance(event, events.Heartbeat):
                        event = await anext(stream)
                    assert isinstance(event, events.Disconnected)
                    assert "heartbeats stopped" in event.reason
                finally:
                    master.resume()
                event = await anext(stream)
                assert isinstance(event, events.Subscribed)
                assert event.resubscribed
                assert event.framework_id == client.framework_id

        run(body)
    finally:
        master.stop()


def test_refusals_carry_the_masters_message(master: MasterProcess) -> None:
    with EmulatorThread(master.address, agents=1):
        scheduler = Tracker()
        driver = SchedulerDriver(scheduler, messages.framework_info("refused"), master.address)
        driver.start()
        try:
            scheduler.wait(lambda: "resourceOffers" in scheduler.seen)
            reserve = messages.Offer.Operation(type=messages.Offer.Operation.RESERVE)
            driver.acceptOffers([messages.OfferID(value="no-such-offer")], [reserve])
            scheduler.wait(lambda: bool(scheduler.errors))
            assert "operations[0].reserve" in scheduler.errors[0]
            assert driver.status is Status.DRIVER_RUNNING
        finally:
            driver.stop()
            driver.join()


def test_a_torn_down_framework_cannot_come_back(master: MasterProcess) -> None:
    async def body() -> None:
        info = messages.framework_info("gone")
        async with SchedulerClient(master.address, info, config=QUICK) as client:
            framework_id = client.framework_id
            assert framework_id is not None
            await client.teardown()
        again = messages.framework_info("gone", framework_id=framework_id.value)
        with pytest.raises(SubscriptionError, match=r"FAILED_PRECONDITION.*torn down"):
            async with SchedulerClient(master.address, again, config=QUICK):
                pass

    run(body)


def test_the_client_uses_the_masters_batched_api(master: MasterProcess) -> None:
    async def body() -> None:
        info = messages.framework_info("batched")
        async with SchedulerClient(master.address, info, config=QUICK) as client:
            assert client.batched  # Subscribed with SubscribeBatched.
            stray = messages.TaskStatus(state=messages.TASK_RUNNING)
            stray.task_id.value = "t1"
            stray.agent_id.value = "no-such-agent"
            stray.uuid = bytes(16)
            outcomes = await client.send_all(
                [calls.revive(), calls.acknowledge(stray), calls.reconcile(["t1"])]
            )
            assert outcomes[0] is None
            assert outcomes[2] is None
            refused = outcomes[1]
            assert isinstance(refused, CallRefusedError)
            assert (refused.call_type, refused.code) == ("ACKNOWLEDGE", "NOT_FOUND")
            assert "no-such-agent" in refused.message
            # The RECONCILE after the refused call was applied: the master answers for t1.
            async for event in client.events():
                if isinstance(event, events.Update):
                    assert event.status.task_id.value == "t1"
                    assert event.status.reason == messages.REASON_RECONCILIATION
                    break

    run(body)
