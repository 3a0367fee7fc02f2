"""The UI's live hub over the real state machine and the real operator API (no I/O, no browser).

One subscription while viewers exist and none after; watched tasks and the overview's gauges
follow the events; a page rendered before a change is corrected at once; a slow viewer is told
to resync; every viewer's stream ends with the master's term.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from master.http.leadership import NotLeadingError
from master.http.operator import OperatorApi
from master.http.ui.live import QUEUE_LIMIT, LiveHub, Viewer
from protos.v1 import mesos_pb2
from tests.unit.master.harness import Harness, accept_call, command_task
from tests.unit.test_master_http_app import FakeView

RUNNING, FINISHED = mesos_pb2.TASK_RUNNING, mesos_pb2.TASK_FINISHED


def started() -> tuple[Harness, Any, str, FakeView, LiveHub]:
    """A master with one agent and framework whose task t1 runs; a hub that never flushes on
    its own (the tests flush)."""
    harness = Harness()
    agent = harness.register_agent()
    framework_id, stream_id = harness.subscribe()
    harness.allocate()
    offer = harness.offers(framework_id)[0]
    harness.call(
        framework_id, stream_id, accept_call([offer.id.value], [command_task("t1", agent.agent_id)])
    )
    harness.status_update(agent, framework_id, "t1", RUNNING, b"\x01" * 16)
    view = FakeView(harness.master)
    hub = LiveHub(
        OperatorApi(view), view.leading_master, interval=3600.0, clock=lambda: harness.now
    )
    return harness, agent, framework_id, view, hub


def published(hub: LiveHub) -> int:
    """Operator events the master built as JSON so far."""
    return int(hub._operator.events.published)  # type: ignore[attr-defined]


def messages(viewer: Viewer) -> list[tuple[str, Any]]:
    """The (event, data) messages queued for ``viewer`` (``None``: its stream's end)."""
    out: list[tuple[str, Any]] = []
    while not viewer.queue.empty():
        message = viewer.queue.get_nowait()
        if message is None:
            out.append(("end", None))
            continue
        head, data = message.decode().strip().split("\n", 1)
        out.append((head.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return out


def test_watched_tasks_and_gauges_follow_the_events() -> None:
    harness, agent, framework_id, _view, hub = started()
    history = harness.master.state.history

    async def run() -> None:
        watched_before = history.watcher
        viewer = hub.connect()
        assert watched_before is None
        assert history.watcher is not None  # subscribed while a viewer is connected
        [(kind, hello)] = messages(viewer)
        assert (kind, hello) == ("hello", {"viewer": viewer.viewer_id})

        # Rendered while t1 was STAGING: the first batch says it runs.
        assert hub.watch(viewer.viewer_id, [(framework_id, "t1", "TASK_STAGING")], [], [])
        hub.flush()
        [(kind, batch)] = messages(viewer)
        assert kind == "batch"
        assert batch["tasks"] == [[framework_id, "t1", "TASK_RUNNING"]]
        assert batch["metrics"]["master/tasks_running"] == 1
        assert batch["metrics"]["master/slaves_connected"] == 1
        assert batch["metrics"]["master/frameworks_active"] == 1

        # A second TASK_RUNNING (a health or data update) changes nothing a page shows.
        harness.status_update(agent, framework_id, "t1", RUNNING, b"\x03" * 16)
        assert not hub._batch
        hub.flush()
        assert messages(viewer) == []

        await asyncio.sleep(0)  # the pump takes the events queued so far
        harness.status_update(agent, framework_id, "t1", FINISHED, b"\x02" * 16)
        for _ in range(5):
            await asyncio.sleep(0)
        hub.flush()
        [(kind, batch)] = messages(viewer)
        assert batch["tasks"] == [[framework_id, "t1", "TASK_FINISHED"]]
        assert batch["metrics"]["master/tasks_running"] == 0
        assert batch["metrics"]["master/tasks_finished"] == 1

        # A utilisation sample the master records reaches the charts.
        harness.now += 10
        state = harness.master.state
        state.history.utilization.sample(state, harness.now)
        hub.flush()
        [(kind, batch)] = messages(viewer)
        [sample] = batch["samples"]
        assert sample["time"] == harness.now
        assert sample["total"]["cpus"] == 4.0

        hub.flush()
        assert messages(viewer) == []  # nothing changed: nothing sent
        assert published(hub) == 0  # the hub listens in-process: no event JSON was built
        hub.disconnect(viewer)
        assert history.watcher is None  # the last viewer out unsubscribes

    asyncio.run(run())


def test_a_slow_viewer_is_told_to_resync_and_others_are_not() -> None:
    harness, agent, framework_id, _view, hub = started()

    async def run() -> None:
        slow, quick = hub.connect(), hub.connect()
        messages(quick)
        for _ in range(QUEUE_LIMIT + 2):
            harness.register_agent()  # something every page hears of
            for _ in range(5):
                await asyncio.sleep(0)
            hub.flush()
            messages(quick)
        assert slow.lost
        messages(slow)  # it catches up ...
        harness.status_update(agent, framework_id, "t1", FINISHED, b"\xff" * 16)
        for _ in range(5):
            await asyncio.sleep(0)
        hub.flush()
        [(_, batch)] = messages(slow)
        assert batch["resync"] is True  # ... and is told it missed some
        [(_, batch)] = messages(quick)
        assert "resync" not in batch

    asyncio.run(run())


def test_every_stream_ends_with_the_term_and_a_follower_refuses() -> None:
    _harness, _agent, _framework_id, view, _hub = started()
    hub = LiveHub(OperatorApi(view), view.leading_master, interval=0.01)

    async def run() -> None:
        viewer = hub.connect()
        view.master = None  # the master stopped leading
        chunks = [chunk async for chunk in hub.stream(viewer)]
        assert chunks[0].startswith(b"event: hello")
        assert hub.viewers == {}
        with pytest.raises(NotLeadingError):
            hub.connect()

    asyncio.run(asyncio.wait_for(run(), 30))
