"""Properties of task groups under any order of container events, kills and timers."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.core import AgentState, ContainerExit, CoreSettings, RetrySchedule, events, handle
from agent.core.effects import (
    DestroyContainer,
    Effect,
    LaunchContainer,
    SendToMaster,
    SetTimer,
    SignalContainer,
)
from agent.core.model import ExecutorPhase
from protos.resources import Resources
from protos.v1 import mesos_pb2
from tests.unit.agent.conftest import counting_uuids
from tests.unit.agent.helpers import (
    FW,
    from_master,
    master_kill,
    master_registered,
    master_shutdown_executor,
    run_group,
    task_info,
)

Reason = mesos_pb2.TaskStatus
TERMINAL = {mesos_pb2.TASK_FINISHED, mesos_pb2.TASK_FAILED, mesos_pb2.TASK_KILLED}


class Runtime:
    """A pretend runtime: containers that start or fail, run, end, and get signalled."""

    def __init__(self, state: AgentState) -> None:
        self.state = state
        self.launching: dict[str, str] = {}  # container -> task
        self.running: set[str] = set()
        self.doomed: set[str] = set()  # Running containers being destroyed or signalled.
        self.timers: dict[tuple[str, ...], float] = {}
        self.exited_executors = 0
        self.now = 0.0

    def apply(self, effects: list[Effect]) -> None:
        self.state.validate()
        for effect in effects:
            match effect:
                case LaunchContainer(container_id=cid, task_id=task_id):
                    self.launching[cid] = task_id or ""
                case DestroyContainer(cid) | SignalContainer(cid, _) if cid in self.running:
                    self.doomed.add(cid)
                case SetTimer(key, at) if key[0] != "status-update":  # Retries: not of interest.
                    self.timers[key] = at
                case SendToMaster(message) if message.HasField("exited_executor"):
                    self.exited_executors += 1

    def events(self) -> list[tuple[str, str]]:
        """What may happen next."""
        return (
            [("launched", c) for c in sorted(self.launching)]
            + [("launch-failed", c) for c in sorted(self.launching)]
            + [("exit-0", c) for c in sorted(self.running)]
            + [("exit-1", c) for c in sorted(self.running)]
            + [("killed", c) for c in sorted(self.doomed)]
            + [("timer", ",".join(k)) for k in sorted(self.timers)]
        )

    def happen(self, kind: str, target: str) -> None:
        self.now += 0.1
        state, now = self.state, self.now
        if kind == "launched":
            del self.launching[target]
            self.running.add(target)
            self.apply(handle(state, events.ContainerLaunched(target), now))
        elif kind == "launch-failed":
            del self.launching[target]
            self.apply(handle(state, events.ContainerLaunchFailed(target, "boom"), now))
        elif kind == "timer":
            key = tuple(target.split(","))
            del self.timers[key]
            self.apply(handle(state, events.TimerFired(key), now))
        else:
            self.running.discard(target)
            self.doomed.discard(target)
            exit = {
                "exit-0": ContainerExit(status=0),
                "exit-1": ContainerExit(status=1),
                "killed": ContainerExit(signal=9),
            }[kind]
            self.apply(handle(state, events.ContainerExited(target, exit), now))


@settings(max_examples=150, deadline=None)
@given(size=st.integers(2, 4), data=st.data())
def test_a_group_always_ends_whole_and_consistent(size: int, data: st.DataObject) -> None:
    counter = itertools.count(1)
    state = AgentState(
        Resources.parse("cpus:8;mem:8192"),
        mesos_pb2.AgentInfo(hostname="h"),
        CoreSettings(status_update_retry=RetrySchedule(10, 600)),
        new_uuid=counting_uuids(),
        new_container_id=lambda: f"c{next(counter)}",
    )
    handle(state, master_registered("agent-1"), 0.0)
    runtime = Runtime(state)
    task_ids = [f"t{i}" for i in range(size)]
    runtime.apply(
        handle(state, from_master(run_task_group=run_group([task_info(t) for t in task_ids])), 0.0)
    )
    # Besides container events: scheduler KILLs, and perhaps a ShutdownExecutor.
    orders = data.draw(st.lists(st.sampled_from([*task_ids, "shutdown"]), max_size=2))
    for _ in range(200):
        choices = runtime.events() + [("order", o) for o in orders]
        if not choices:
            break
        kind, target = data.draw(st.sampled_from(choices))
        if kind != "order":
            runtime.happen(kind, target)
            continue
        orders.remove(target)
        if target == "shutdown":
            runtime.apply(handle(state, master_shutdown_executor(FW, "dex"), runtime.now))
        else:
            runtime.apply(handle(state, master_kill(FW, target, None), runtime.now))
    assert not runtime.events()  # Nothing left to happen: every container is gone.

    executor = state.executor(FW, "dex")
    assert executor is not None
    assert executor.phase is ExecutorPhase.TERMINATED
    assert runtime.exited_executors == 1
    histories = {}
    for task_id in task_ids:
        stream = state.updates.get(FW, task_id)
        assert stream is not None
        history = [s.state for s in stream.pending]
        histories[task_id] = history
        assert history.count(mesos_pb2.TASK_RUNNING) <= 1
        assert history[-1] in TERMINAL
        assert [s for s in history if s in TERMINAL] == history[-1:]  # Ended exactly once.
    ran = [t for t, h in histories.items() if mesos_pb2.TASK_RUNNING in h]
    assert ran in ([], task_ids)  # All of the group started, or none of it.
    ended = {t: h[-1] for t, h in histories.items()}
    if any(s in (mesos_pb2.TASK_FAILED, mesos_pb2.TASK_KILLED) for s in ended.values()) and ran:
        # A failure or kill took the group down: whatever did not finish was failed or killed.
        assert all(s in TERMINAL for s in ended.values())
    state.validate()
