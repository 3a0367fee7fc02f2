"""Properties of the whole agent core under any interleaving of what can happen to it.

Two frameworks launch command tasks, task groups and tasks of a custom executor (some of them
invalid or too large), kill them, acknowledge updates (right and wrong ones), lose and regain
the master, shut executors and frameworks down; containers start, fail, end and are killed in
any order; timers fire; the agent crashes (or stops to restart) and is rebuilt from its
checkpoint, kept in the in-memory twin of the store. After every step the state is valid and no
handler failed. Then both frameworks are torn down and everything still running ends: the agent
must be left with nothing — no framework, no executor, no resource counted, no update stream.
"""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.checkpoint import MemoryCheckpointStore, apply_checkpoint_effect
from agent.core import (
    AgentState,
    ContainerExit,
    CoreSettings,
    InvalidCall,
    RetrySchedule,
    UnknownTarget,
    events,
    handle,
)
from agent.core.effects import (
    CancelTimer,
    DestroyContainer,
    Effect,
    LaunchContainer,
    LookForContainer,
    SetTimer,
    SignalContainer,
)
from protos.resources import Resources
from protos.v1 import agent_internal_pb2, mesos_pb2
from tests.unit.agent.helpers import (
    default_executor_info,
    executor_info,
    master_ack,
    master_kill,
    master_registered,
    master_reregistered,
    master_shutdown_executor,
    master_shutdown_framework,
    subscribe_call,
    task_info,
)

FRAMEWORKS = ("fw-1", "fw-2")  # fw-1 checkpoints; fw-2 does not.
TASK_IDS = [f"t{i}" for i in range(6)]


def framework(framework_id: str) -> mesos_pb2.FrameworkInfo:
    info = mesos_pb2.FrameworkInfo(name=framework_id, checkpoint=framework_id == "fw-1")
    info.id.value = framework_id
    return info


def launch_message(
    framework_id: str, kind: str, task_ids: list[str], big: bool
) -> agent_internal_pb2.MasterMessage:
    resources = "cpus:3;mem:128" if big else "cpus:0.5;mem:64"
    tasks = [task_info(t, resources) for t in task_ids]
    message = agent_internal_pb2.MasterMessage()
    if kind == "group":
        run = message.run_task_group
        run.framework_info.CopyFrom(framework(framework_id))
        run.executor.CopyFrom(default_executor_info())
        run.task_group.tasks.extend(tasks)
    else:
        run_task = message.run_task
        run_task.framework_info.CopyFrom(framework(framework_id))
        run_task.framework_id.value = framework_id
        task = tasks[0]
        if kind == "custom":
            task.ClearField("command")
            run_task.executor.CopyFrom(executor_info())
        elif kind == "invalid":
            task.command.value = ""
        run_task.task.CopyFrom(task)
    return message


class World:
    """The agent core and a pretend runtime: containers, timers, a master that may be gone."""

    def __init__(self) -> None:
        self.containers = itertools.count(1)
        self.uuids = itertools.count(10_000)  # Shared by every core: no uuid is ever reused.
        self.store = MemoryCheckpointStore()
        self.state = self.new_core()
        self.now = 0.0
        self.launching: set[str] = set()
        self.running: set[str] = set()
        self.timers: dict[tuple[str, ...], float] = {}
        self.alive: set[str] = set()  # While recovering: the containers still running.
        self.feed(master_registered("agent-1"))

    def new_core(self) -> AgentState:
        return AgentState(
            Resources.parse("cpus:4;mem:4096"),
            mesos_pb2.AgentInfo(hostname="h"),
            CoreSettings(status_update_retry=RetrySchedule(10, 600)),
            new_uuid=lambda: next(self.uuids).to_bytes(16, "big"),
            new_container_id=lambda: f"c{next(self.containers)}",
        )

    def restart(self, graceful: bool) -> None:
        """The agent stops (or dies) and a new core recovers from the checkpoint."""
        if graceful:
            self.feed(events.AgentStopping(kill_all=False))
        checkpoint = self.store.read()
        assert checkpoint.agent is not None
        self.state = self.new_core()
        self.timers.clear()
        self.alive, self.running, self.launching = self.running, set(), set()
        self.feed(events.RecoverFromCheckpoint(checkpoint.agent))
        # (Containers nobody looked for are orphans: the runtime destroys them silently.)
        self.alive = set()
        self.feed(events.RecoveryDone())
        self.feed(master_reregistered())

    def feed(self, event: events.Event) -> None:
        self.now += 0.5
        try:
            effects = handle(self.state, event, self.now)
        except (InvalidCall, UnknownTarget):
            effects = []  # A refused executor call: nothing changed.
        self.apply(effects)
        self.state.validate()
        assert self.state.faults == 0, self.state.last_fault

    def apply(self, effects: list[Effect]) -> None:
        for effect in effects:
            apply_checkpoint_effect(self.store, effect)
            match effect:
                case LaunchContainer(container_id=cid):
                    self.launching.add(cid)
                case DestroyContainer(cid) if cid in self.running:
                    self.running.discard(cid)
                    self.feed(events.ContainerExited(cid, ContainerExit(signal=9)))
                case SignalContainer(cid, _) if cid in self.running:
                    pass  # It may exit now, or be destroyed when its kill timer fires.
                case SetTimer(key, at):
                    self.timers[key] = at
                case CancelTimer(key):
                    self.timers.pop(key, None)
                case LookForContainer(cid, recorded):
                    if cid in self.alive and recorded is not None:
                        self.running.add(cid)
                        self.feed(events.ContainerRecovered(cid))
                    else:
                        gone = ContainerExit(message="not found after the restart")
                        self.feed(events.ContainerExited(cid, gone))

    def choices(self) -> list[tuple[str, str]]:
        return (
            [("launched", c) for c in sorted(self.launching)]
            + [("launch-failed", c) for c in sorted(self.launching)]
            + [("exit-0", c) for c in sorted(self.running)]
            + [("exit-1", c) for c in sorted(self.running)]
            + [("timer", "|".join(k)) for k in sorted(self.timers)]
        )

    def happen(self, kind: str, target: str) -> None:
        if kind == "launched":
            self.launching.discard(target)
            self.running.add(target)
            self.feed(events.ContainerLaunched(target, {"pid": 1}))
        elif kind == "launch-failed":
            self.launching.discard(target)
            self.feed(events.ContainerLaunchFailed(target, "no such program"))
        elif kind == "timer":
            key = tuple(target.split("|"))
            del self.timers[key]
            self.feed(events.TimerFired(key))
        else:
            self.running.discard(target)
            status = 0 if kind == "exit-0" else 1
            self.feed(events.ContainerExited(target, ContainerExit(status=status)))

    def ack(self, framework_id: str, task_id: str, right: bool) -> None:
        stream = self.state.updates.get(framework_id, task_id)
        if stream is None or stream.head is None:
            return
        uuid = stream.head.uuid if right else next(self.uuids).to_bytes(16, "big")
        self.feed(master_ack(framework_id, task_id, uuid))


LAUNCH = st.tuples(
    st.just("launch"),
    st.sampled_from(FRAMEWORKS),
    st.sampled_from(["command", "group", "custom", "invalid"]),
    st.lists(st.sampled_from(TASK_IDS), min_size=1, max_size=3),
    st.booleans(),
)
RUNTIME = st.tuples(st.just("runtime"), st.integers(0, 1000))
ACTIONS = st.one_of(
    LAUNCH,
    LAUNCH,
    RUNTIME,
    RUNTIME,
    RUNTIME,
    st.tuples(st.just("kill"), st.sampled_from(FRAMEWORKS), st.sampled_from(TASK_IDS)),
    st.tuples(
        st.just("ack"), st.sampled_from(FRAMEWORKS), st.sampled_from(TASK_IDS), st.booleans()
    ),
    st.tuples(
        st.just("ack"), st.sampled_from(FRAMEWORKS), st.sampled_from(TASK_IDS), st.just(True)
    ),
    st.tuples(st.just("shutdown-framework"), st.sampled_from(FRAMEWORKS)),
    st.tuples(
        st.just("shutdown-executor"), st.sampled_from(FRAMEWORKS), st.sampled_from(["ex", "dex"])
    ),
    st.tuples(st.just("master"), st.sampled_from(["lost", "back"])),
    st.tuples(st.just("executor"), st.sampled_from(FRAMEWORKS), st.sampled_from(TASK_IDS)),
    st.tuples(st.just("restart"), st.booleans()),
)


@settings(max_examples=200, deadline=None)
@given(actions=st.lists(ACTIONS, min_size=20, max_size=80))
def test_any_interleaving_keeps_the_agent_valid_and_ends_with_nothing(
    actions: list[tuple[object, ...]],
) -> None:
    world = World()
    for action in actions:
        match action:
            case ("launch", str(fw), str(kind), list(ids), bool(big)):
                world.feed(events.MasterMessageReceived(launch_message(fw, kind, ids, big)))
            case ("kill", str(fw), str(task_id)):
                world.feed(master_kill(fw, task_id))
            case ("ack", str(fw), str(task_id), bool(right)):
                world.ack(fw, task_id, right)
            case ("shutdown-framework", str(fw)):
                world.feed(master_shutdown_framework(fw))
            case ("shutdown-executor", str(fw), str(executor_id)):
                world.feed(master_shutdown_executor(fw, executor_id))
            case ("master", "lost"):
                world.feed(events.Disconnected())
            case ("master", _):
                world.feed(master_reregistered())
            case ("executor", str(fw), str(task_id)):
                world.feed(events.ExecutorSubscribed(fw, "ex", subscribe_call()))
                update = mesos_pb2.TaskStatus(state=mesos_pb2.TASK_FINISHED)
                update.task_id.value = task_id
                update.uuid = next(world.uuids).to_bytes(16, "big")
                world.feed(events.ExecutorUpdate(fw, "ex", update))
            case ("restart", bool(graceful)):
                world.restart(graceful)
            case ("runtime", int(pick)):
                if choices := world.choices():
                    world.happen(*choices[pick % len(choices)])

    # The end: both frameworks are torn down, and everything still running ends.
    world.feed(master_reregistered())
    for fw in FRAMEWORKS:
        world.feed(master_shutdown_framework(fw))
    for _ in range(500):
        if not (choices := world.choices()):
            break
        world.happen(*choices[0])
    state = world.state
    assert world.launching == set()
    assert world.running == set()
    assert state.frameworks == {}
    assert state.containers == {}
    assert state.allocated() == Resources.EMPTY
    assert [s.key for s in state.updates] == []
