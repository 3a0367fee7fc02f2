"""The agent's fair queues: launches (FairLaunchQueue) and master messages (MasterInbox)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.runtime.inbox import MasterInbox, framework_of
from agent.runtime.launch_queue import FairLaunchQueue
from protos.v1 import agent_internal_pb2 as ai


def test_frameworks_take_turns_and_each_keeps_its_order() -> None:
    queue: FairLaunchQueue[str] = FairLaunchQueue()
    for i in range(3):
        queue.put("big", f"b{i}", f"b{i}")
    queue.put("small", "s0", "s0")
    queue.put("big", "b3", "b3")
    taken = []
    while (item := queue.take()) is not None:
        taken.append(item[0])
    assert taken == ["b0", "s0", "b1", "b2", "b3"]
    assert len(queue) == 0


def test_a_queued_launch_can_be_taken_out_and_a_framework_emptied() -> None:
    queue: FairLaunchQueue[int] = FairLaunchQueue()
    for i in range(4):
        queue.put("a", f"a{i}", i)
    queue.put("b", "b0", 10)
    assert queue.remove("a1") == 1
    assert queue.remove("a1") is None
    assert "a1" not in queue
    assert queue.queued("a") == 3
    assert queue.remove_framework("a") == [0, 2, 3]
    assert queue.take() == ("b0", 10)
    assert queue.take() is None


def test_a_container_id_is_queued_once() -> None:
    queue: FairLaunchQueue[int] = FairLaunchQueue()
    queue.put("a", "c", 1)
    with pytest.raises(ValueError, match="container c is already queued"):
        queue.put("b", "c", 2)
    assert len(queue) == 1


@given(st.lists(st.tuples(st.sampled_from("abc"), st.booleans()), max_size=60))
def test_every_launch_comes_out_once_in_its_framework_order(ops: list[tuple[str, bool]]) -> None:
    queue: FairLaunchQueue[int] = FairLaunchQueue()
    put: dict[str, list[int]] = {}
    for n, (framework, remove) in enumerate(ops):
        queue.put(framework, str(n), n)
        put.setdefault(framework, []).append(n)
        if remove and n % 3 == 0:
            assert queue.remove(str(n)) == n
            put[framework].remove(n)
    out: dict[str, list[int]] = {}
    while (item := queue.take()) is not None:
        out.setdefault(next(f for f, ns in put.items() if item[1] in ns), []).append(item[1])
    assert out == {f: ns for f, ns in put.items() if ns}


def _run(framework_id: str, task_id: str) -> ai.MasterMessage:
    message = ai.MasterMessage()
    message.run_task.framework_id.value = framework_id
    message.run_task.task.task_id.value = task_id
    return message


def _shutdown(framework_id: str) -> ai.MasterMessage:
    message = ai.MasterMessage()
    message.shutdown_framework.framework_id.value = framework_id
    return message


def _tasks(inbox: MasterInbox) -> list[str]:
    out = []
    while (message := inbox.take()) is not None:
        kind = message.WhichOneof("payload")
        out.append(message.run_task.task.task_id.value if kind == "run_task" else str(kind))
    return out


def test_messages_of_frameworks_take_turns_and_barriers_hold() -> None:
    inbox = MasterInbox()
    for i in range(3):
        inbox.put(_run("big", f"b{i}"))
    inbox.put(_run("small", "s0"))
    error = ai.MasterMessage()
    error.error.message = "agent-wide"
    inbox.put(error)
    inbox.put(_run("small", "s1"))
    assert len(inbox) == 6
    assert _tasks(inbox) == ["b0", "s0", "b1", "b2", "error", "s1"]
    assert len(inbox) == 0


def test_a_framework_shutdown_drops_what_it_had_waiting() -> None:
    inbox = MasterInbox()
    for i in range(1000):
        inbox.put(_run("gone", f"g{i}"))
    inbox.put(_run("other", "o0"))
    inbox.put(_shutdown("gone"))
    assert inbox.dropped == 1000
    assert _tasks(inbox) == ["o0", "shutdown_framework"]


def test_the_framework_of_each_kind_of_message() -> None:
    group = ai.MasterMessage()
    group.run_task_group.framework_info.id.value = "fw-g"
    ack = ai.MasterMessage()
    ack.status_update_acknowledgement.framework_id.value = "fw-a"
    shutdown_agent = ai.MasterMessage()
    shutdown_agent.shutdown_agent.message = "bye"
    assert framework_of(_run("fw-r", "t")) == "fw-r"
    assert framework_of(group) == "fw-g"
    assert framework_of(ack) == "fw-a"
    assert framework_of(shutdown_agent) is None
    assert framework_of(ai.MasterMessage()) is None
