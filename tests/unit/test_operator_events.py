"""The operator event hub and the history behind it, over the real state machine (no I/O).

Events are built only while someone subscribes; each subscriber's queue is bounded (a slow one
is dropped); a subscription ends when its master stops leading. The history keeps completed
tasks and frameworks in bounded rings and counts terminal states.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from master.config import ConfigError, MasterConfig, config_from_args
from master.http.leadership import NotLeadingError
from master.http.operator import OperatorEvents
from master.http.operator.router import recordio
from protos.v1 import mesos_pb2
from protos.v1.scheduler_pb2 import Call
from tests.unit.master.harness import Harness, accept_call, command_task
from tests.unit.test_master_http_app import FakeView

JSON = dict[str, Any]


def launch(harness: Harness, framework_id: str, stream_id: str, agent_id: str, *ids: str) -> None:
    harness.allocate()
    offer = harness.offers(framework_id)[-1]
    tasks = [command_task(t, agent_id, "cpus:0.1;mem:16") for t in ids]
    harness.call(framework_id, stream_id, accept_call([offer.id.value], tasks, refuse_seconds=0))


def drain(subscription: Any) -> list[JSON]:
    """What is queued for ``subscription`` (without waiting)."""
    out = []
    queue = subscription._queue
    while queue:
        out.append(queue.popleft())
    return out


def test_events_are_built_only_while_someone_subscribes() -> None:
    harness = Harness()
    agent = harness.register_agent()
    hub = OperatorEvents(FakeView(harness.master))
    history = harness.master.state.history
    assert history.watcher is None
    framework_id, stream_id = harness.subscribe()
    assert hub.published == 0

    async def run() -> list[JSON]:
        subscription = hub.subscribe(include_state=True)
        assert history.watcher is hub
        launch(harness, framework_id, stream_id, agent.agent_id, "t1")
        harness.status_update(agent, framework_id, "t1", mesos_pb2.TASK_RUNNING, b"\x01" * 16)
        events = [e async for e in _take(subscription, 3)]
        subscription.close()
        return events

    subscribed, added, updated = asyncio.run(run())
    assert subscribed["type"] == "SUBSCRIBED"
    [framework] = subscribed["subscribed"]["get_state"]["get_frameworks"]["frameworks"]
    assert framework["framework_info"]["id"] == {"value": framework_id}
    assert added["type"] == "TASK_ADDED"
    assert added["task_added"]["task"]["task_id"] == {"value": "t1"}
    assert updated == {
        "type": "TASK_UPDATED",
        "task_updated": {
            "framework_id": {"value": framework_id},
            "status": updated["task_updated"]["status"],
            "state": "TASK_RUNNING",
        },
    }
    assert updated["task_updated"]["status"]["state"] == "TASK_RUNNING"
    assert history.watcher is None  # the last subscriber left
    published = hub.published
    harness.status_update(agent, framework_id, "t1", mesos_pb2.TASK_FINISHED, b"\x02" * 16)
    assert hub.published == published


async def _take(subscription: Any, n: int) -> Any:
    count = 0
    async for event in subscription:
        yield event
        count += 1
        if count == n:
            return


def test_framework_and_agent_events() -> None:
    harness = Harness()
    hub = OperatorEvents(FakeView(harness.master))

    async def run() -> list[JSON]:
        subscription = hub.subscribe(include_state=False)
        agent = harness.register_agent()
        framework_id, _ = harness.subscribe(failover_timeout=0)
        teardown = Call(type=Call.TEARDOWN)
        teardown.framework_id.value = framework_id
        stream = harness.master.state.frameworks[framework_id].stream_id
        harness.call(framework_id, stream, teardown)
        harness.master.mark_agent_gone(agent.agent_id, harness.now)
        events = drain(subscription)
        subscription.close()
        return events

    events = asyncio.run(run())
    assert [e["type"] for e in events] == [
        "SUBSCRIBED",
        "AGENT_ADDED",
        "FRAMEWORK_ADDED",
        "FRAMEWORK_REMOVED",
        "AGENT_REMOVED",
    ]
    assert events[0]["subscribed"] == {"heartbeat_interval_seconds": 15.0}
    assert events[1]["agent_added"]["agent"]["agent_info"]["hostname"] == "host1"


def test_a_slow_subscriber_is_dropped_not_buffered() -> None:
    harness = Harness()
    agent = harness.register_agent()
    framework_id, stream_id = harness.subscribe()
    hub = OperatorEvents(FakeView(harness.master))

    async def run() -> tuple[Any, Any]:
        slow = hub.subscribe(include_state=False, queue_limit=3)
        fast = hub.subscribe(include_state=False)
        launch(harness, framework_id, stream_id, agent.agent_id, "a", "b", "c", "d")
        return slow, fast

    slow, fast = asyncio.run(run())
    assert slow.closed
    assert slow.dropped == "the subscriber fell more than 3 events behind"
    assert not fast.closed
    assert [e["type"] for e in drain(fast)] == ["SUBSCRIBED"] + ["TASK_ADDED"] * 4
    fast.close()
    assert harness.master.state.history.watcher is None


def test_a_subscription_ends_when_its_master_stops_leading() -> None:
    harness = Harness()
    view = FakeView(harness.master)
    hub = OperatorEvents(view)

    async def run() -> list[str]:
        subscription = hub.subscribe(include_state=False)
        view.master = None
        types = [e["type"] async for e in subscription]
        assert subscription.dropped == "the master stopped leading"
        return types

    assert asyncio.run(run()) == ["SUBSCRIBED"]
    with pytest.raises(NotLeadingError):
        hub.subscribe()


def test_heartbeats_fill_silence() -> None:
    harness = Harness()
    hub = OperatorEvents(FakeView(harness.master), heartbeat_interval=0.05)

    async def run() -> list[JSON]:
        subscription = hub.subscribe(include_state=False)
        events = [e async for e in _take(subscription, 3)]
        subscription.close()
        return events

    assert [e["type"] for e in asyncio.run(run())] == ["SUBSCRIBED", "HEARTBEAT", "HEARTBEAT"]


def test_recordio_frames_each_event_with_its_length() -> None:
    record = recordio({"type": "HEARTBEAT"})
    assert record == b'20\n{"type":"HEARTBEAT"}'  # as in Mesos's recordio.md


def test_history_rings_are_bounded() -> None:
    config = MasterConfig(
        registry="memory", max_completed_frameworks=2, max_completed_tasks_per_framework=3
    )
    harness = Harness(config=config)
    agent = harness.register_agent(resources="cpus:8;mem:4096")
    history = harness.master.state.history
    framework_ids = []
    for n in range(3):
        framework_id, stream_id = harness.subscribe(name=f"fw{n}")
        framework_ids.append(framework_id)
        ids = [f"{n}-{i}" for i in range(5)]
        launch(harness, framework_id, stream_id, agent.agent_id, *ids)
        for i, task_id in enumerate(ids):
            harness.status_update(agent, framework_id, task_id, mesos_pb2.TASK_FAILED, None)
            assert history.terminal[mesos_pb2.TASK_FAILED] == n * 5 + i + 1
        assert [t.task_id for t in history.completed_tasks_of(framework_id)] == ids[2:]
        teardown = Call(type=Call.TEARDOWN)
        teardown.framework_id.value = framework_id
        harness.call(framework_id, stream_id, teardown)
    assert list(history.completed_frameworks) == framework_ids[1:]
    assert history.completed_task_count() == 6
    assert [t.task_id for t in history.completed_tasks_of(framework_ids[0])] == []
    failed = history.completed_tasks_of(framework_ids[2])[-1]
    assert [s.state for s in failed.statuses] == [mesos_pb2.TASK_STAGING, mesos_pb2.TASK_FAILED]


def test_the_history_flags() -> None:
    memory = ["--registry", "memory"]
    assert config_from_args(memory, {}).max_completed_tasks_per_framework == 1000
    config = config_from_args(
        [*memory, "--max-completed-tasks-per-framework", "5"],
        {"EMPORION_MAX_COMPLETED_FRAMEWORKS": "7"},
    )
    assert (config.max_completed_tasks_per_framework, config.max_completed_frameworks) == (5, 7)
    with pytest.raises(ConfigError, match="--max-completed-tasks-per-framework: must be >= 0"):
        config_from_args([*memory, "--max-completed-tasks-per-framework", "-1"], {})


def test_completed_tasks_are_kept_small() -> None:
    harness = Harness()
    agent = harness.register_agent()
    framework_id, stream_id = harness.subscribe()
    harness.allocate()
    offer = harness.offers(framework_id)[-1]
    task = command_task("t1", agent.agent_id, "cpus:0.1;mem:16")
    task.data = b"x" * 100_000
    harness.call(framework_id, stream_id, accept_call([offer.id.value], [task]))
    harness.status_update(agent, framework_id, "t1", mesos_pb2.TASK_FINISHED, None)
    [done] = harness.master.state.history.completed_tasks_of(framework_id)
    assert done.info is not None
    assert not done.info.HasField("data")
    assert done.info.command.value == "true"
    assert done.latest_status is None
    assert [s.state for s in done.statuses] == [mesos_pb2.TASK_STAGING, mesos_pb2.TASK_FINISHED]


class Recorder:
    """An in-process listener recording what it hears (a Watcher)."""

    def __init__(self, fail: bool = False) -> None:
        self.heard: list[tuple[str, str]] = []
        self.fail = fail

    def task_added(self, task: Any) -> None:
        self.heard.append(("task_added", task.task_id))

    def task_updated(self, task: Any, status: mesos_pb2.TaskStatus) -> None:
        if self.fail:
            raise RuntimeError("a listener's bug")
        self.heard.append(("task_updated", mesos_pb2.TaskState.Name(task.state)))

    def framework_added(self, fw: Any) -> None:
        self.heard.append(("framework_added", fw.framework_id))

    def framework_updated(self, fw: Any) -> None:
        self.heard.append(("framework_updated", fw.framework_id))

    def framework_removed(self, info: mesos_pb2.FrameworkInfo) -> None:
        self.heard.append(("framework_removed", info.id.value))

    def agent_added(self, agent: Any) -> None:
        self.heard.append(("agent_added", agent.agent_id))

    def agent_removed(self, agent_id: str) -> None:
        self.heard.append(("agent_removed", agent_id))


def test_in_process_listeners_hear_the_objects_and_no_json_is_built() -> None:
    harness = Harness()
    agent = harness.register_agent()
    framework_id, stream_id = harness.subscribe()
    hub = OperatorEvents(FakeView(harness.master))
    recorder, broken = Recorder(), Recorder(fail=True)
    listening = hub.listen(recorder)
    other = hub.listen(broken)
    assert watcher_of(harness) is hub
    launch(harness, framework_id, stream_id, agent.agent_id, "t1")
    harness.status_update(agent, framework_id, "t1", mesos_pb2.TASK_RUNNING, b"\x01" * 16)
    assert recorder.heard == [("task_added", "t1"), ("task_updated", "TASK_RUNNING")]
    assert broken.heard == [("task_added", "t1")]  # its failure was logged, nothing else
    assert harness.master.state.frameworks[framework_id].tasks["t1"].state == (
        mesos_pb2.TASK_RUNNING
    )
    assert hub.published == 0
    other.close()
    listening.close()
    assert hub.listeners == 0
    assert watcher_of(harness) is None
    harness.status_update(agent, framework_id, "t1", mesos_pb2.TASK_FINISHED, b"\x02" * 16)
    assert len(recorder.heard) == 2


def watcher_of(harness: Harness) -> object:
    """The history's watcher (read through a function: each read is a fresh question)."""
    return harness.master.state.history.watcher
