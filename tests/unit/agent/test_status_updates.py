"""The status update manager: one update in flight, retries, dedupe, acks, checkpoint records."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from agent.core import AckOutcome, RetrySchedule, StatusUpdateManager
from agent.core.effects import (
    AppendUpdateRecord,
    CancelTimer,
    ForwardUpdate,
    SetTimer,
    UpdateRecord,
)
from agent.core.status_updates import StreamOwner
from protos.v1 import mesos_pb2
from tests.unit.agent.conftest import uuid_n

FW = "fw-1"
OWNER = StreamOwner(FW)
OWNER_T = StreamOwner(FW, "t")
CHECKPOINTED = StreamOwner(FW, "e", "c", checkpoint=True)


def status(task: str, state: mesos_pb2.TaskState.ValueType, n: int) -> mesos_pb2.TaskStatus:
    s = mesos_pb2.TaskStatus(state=state, uuid=uuid_n(n))
    s.task_id.value = task
    return s


def forwarded(effects: Sequence[object]) -> list[ForwardUpdate]:
    return [e for e in effects if isinstance(e, ForwardUpdate)]


def test_only_the_head_is_in_flight_and_the_next_goes_after_its_ack(
    manager: StatusUpdateManager,
) -> None:
    new, effects = manager.update(status("t", mesos_pb2.TASK_RUNNING, 1), OWNER_T, 0.0)
    assert new
    assert [f.status.uuid for f in forwarded(effects)] == [uuid_n(1)]
    assert SetTimer(("status-update", FW, "t"), 10.0) in effects

    new, effects = manager.update(status("t", mesos_pb2.TASK_FINISHED, 2), OWNER_T, 1.0)
    assert new
    assert forwarded(effects) == []  # The first is still unacknowledged.

    outcome, effects = manager.acknowledge(FW, "t", uuid_n(1), 2.0)
    assert outcome is AckOutcome.ACCEPTED
    [sent] = forwarded(effects)
    assert sent.status.uuid == uuid_n(2)
    assert sent.latest_state == mesos_pb2.TASK_FINISHED


def test_latest_state_is_the_newest_queued_state(manager: StatusUpdateManager) -> None:
    _, effects = manager.update(status("t", mesos_pb2.TASK_STARTING, 1), OWNER, 0.0)
    assert forwarded(effects)[0].latest_state == mesos_pb2.TASK_STARTING
    manager.update(status("t", mesos_pb2.TASK_RUNNING, 2), OWNER, 0.0)
    manager.update(status("t", mesos_pb2.TASK_FAILED, 3), OWNER, 0.0)
    # The retry of the head carries the newest state.
    effects = manager.retry(FW, "t", 10.0)
    [sent] = forwarded(effects)
    assert sent.status.state == mesos_pb2.TASK_STARTING
    assert sent.latest_state == mesos_pb2.TASK_FAILED


def test_retries_double_from_the_minimum_up_to_the_maximum() -> None:
    manager = StatusUpdateManager(RetrySchedule(10, 60))
    manager.resume(0.0)
    _, effects = manager.update(status("t", mesos_pb2.TASK_RUNNING, 1), OWNER, 0.0)
    deadlines = [next(e.at for e in effects if isinstance(e, SetTimer))]
    for _ in range(5):
        effects = manager.retry(FW, "t", deadlines[-1])
        assert len(forwarded(effects)) == 1
        deadlines.append(next(e.at for e in effects if isinstance(e, SetTimer)))
    gaps = [b - a for a, b in zip([0.0, *deadlines], deadlines, strict=False)]
    assert gaps == [10, 20, 40, 60, 60, 60]
    manager.validate()


def test_an_early_timer_does_not_resend(manager: StatusUpdateManager) -> None:
    manager.update(status("t", mesos_pb2.TASK_RUNNING, 1), OWNER, 0.0)
    assert forwarded(manager.retry(FW, "t", 5.0)) == []


def test_duplicate_updates_and_acks_are_ignored(manager: StatusUpdateManager) -> None:
    manager.update(status("t", mesos_pb2.TASK_RUNNING, 1), OWNER, 0.0)
    new, effects = manager.update(status("t", mesos_pb2.TASK_RUNNING, 1), OWNER, 1.0)
    assert (new, effects) == (False, [])
    manager.update(status("t", mesos_pb2.TASK_RUNNING, 2), OWNER, 1.0)
    assert manager.acknowledge(FW, "t", uuid_n(1), 2.0)[0] is AckOutcome.ACCEPTED
    assert manager.acknowledge(FW, "t", uuid_n(1), 3.0) == (AckOutcome.DUPLICATE, [])
    stream = manager.get(FW, "t")
    assert stream is not None
    assert [s.uuid for s in stream.pending] == [uuid_n(2)]


def test_an_ack_of_anything_but_the_head_is_rejected(manager: StatusUpdateManager) -> None:
    manager.update(status("t", mesos_pb2.TASK_RUNNING, 1), OWNER, 0.0)
    manager.update(status("t", mesos_pb2.TASK_FINISHED, 2), OWNER, 0.0)
    assert manager.acknowledge(FW, "t", uuid_n(2), 1.0) == (AckOutcome.UNEXPECTED, [])
    assert manager.acknowledge(FW, "t", uuid_n(9), 1.0) == (AckOutcome.UNEXPECTED, [])
    assert manager.acknowledge(FW, "other", uuid_n(1), 1.0) == (AckOutcome.UNKNOWN_STREAM, [])
    stream = manager.get(FW, "t")
    assert stream is not None
    assert len(stream.pending) == 2


def test_the_ack_of_a_terminal_update_closes_the_stream(manager: StatusUpdateManager) -> None:
    manager.update(status("t", mesos_pb2.TASK_FAILED, 1), OWNER, 0.0)
    outcome, effects = manager.acknowledge(FW, "t", uuid_n(1), 1.0)
    assert outcome is AckOutcome.CLOSED
    assert CancelTimer(("status-update", FW, "t")) in effects
    assert manager.get(FW, "t") is None


def test_no_update_is_accepted_after_a_terminal_one(manager: StatusUpdateManager) -> None:
    manager.update(status("t", mesos_pb2.TASK_KILLED, 1), OWNER, 0.0)
    with pytest.raises(ValueError, match="already reached a terminal state"):
        manager.update(status("t", mesos_pb2.TASK_RUNNING, 2), OWNER, 0.0)


def test_an_update_needs_a_16_byte_uuid(manager: StatusUpdateManager) -> None:
    bad = status("t", mesos_pb2.TASK_RUNNING, 1)
    bad.uuid = b"short"
    with pytest.raises(ValueError, match="uuid must be 16 bytes"):
        manager.update(bad, OWNER, 0.0)
    assert manager.get(FW, "t") is None


def test_checkpointed_streams_record_before_forwarding(manager: StatusUpdateManager) -> None:
    _, effects = manager.update(status("t", mesos_pb2.TASK_RUNNING, 1), CHECKPOINTED, 0.0)
    assert isinstance(effects[0], AppendUpdateRecord)
    assert effects[0].record == UpdateRecord("update", status("t", mesos_pb2.TASK_RUNNING, 1))
    assert isinstance(effects[1], ForwardUpdate)
    _, effects = manager.acknowledge(FW, "t", uuid_n(1), 1.0)
    assert effects[0] == AppendUpdateRecord(FW, "e", "c", "t", "ack", uuid_n(1))


def test_paused_streams_queue_and_resume_sends_every_head() -> None:
    manager = StatusUpdateManager(RetrySchedule(10, 600))  # Starts paused: no master yet.
    _, effects = manager.update(status("a", mesos_pb2.TASK_RUNNING, 1), OWNER, 0.0)
    assert forwarded(effects) == []
    manager.update(status("b", mesos_pb2.TASK_RUNNING, 2), OWNER, 0.0)
    manager.update(status("b", mesos_pb2.TASK_FINISHED, 3), OWNER, 0.0)
    manager.validate()
    sent = forwarded(manager.resume(5.0))
    assert sorted(f.status.uuid for f in sent) == [uuid_n(1), uuid_n(2)]
    manager.validate()
    effects = manager.pause()
    assert CancelTimer(("status-update", FW, "a")) in effects
    assert forwarded(manager.retry(FW, "a", 100.0)) == []
    manager.validate()


def test_recovery_replays_updates_and_acks() -> None:
    manager = StatusUpdateManager()
    records = [
        UpdateRecord("update", status("t", mesos_pb2.TASK_RUNNING, 1)),
        UpdateRecord("ack", uuid_n(1)),
        UpdateRecord("update", status("t", mesos_pb2.TASK_FINISHED, 2)),
    ]
    stream = manager.recover(CHECKPOINTED, "t", records)
    assert stream is not None
    assert [s.uuid for s in stream.pending] == [uuid_n(2)]
    assert stream.acknowledged == {uuid_n(1)}
    assert stream.latest_state == mesos_pb2.TASK_FINISHED
    manager.validate()


def test_recovery_of_a_closed_stream_gives_nothing() -> None:
    manager = StatusUpdateManager()
    records = [
        UpdateRecord("update", status("t", mesos_pb2.TASK_FINISHED, 1)),
        UpdateRecord("ack", uuid_n(1)),
    ]
    assert manager.recover(CHECKPOINTED, "t", records) is None
    assert manager.get(FW, "t") is None
