"""Property test: any sequence of updates, acks, retries and reconnections keeps the stream sound.

Updates leave in the order they came, each acknowledged exactly once, one in flight at a time.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.core import AckOutcome, RetrySchedule, StatusUpdateManager
from agent.core.effects import ForwardUpdate
from agent.core.status_updates import StreamOwner
from protos.v1 import mesos_pb2

OWNER = StreamOwner("fw")
STATES = [mesos_pb2.TASK_STARTING, mesos_pb2.TASK_RUNNING, mesos_pb2.TASK_FINISHED]
operations = st.lists(
    st.sampled_from(["update", "ack-head", "ack-other", "retry", "pause", "resume"]), max_size=40
)


@settings(max_examples=200, deadline=None)
@given(operations)
def test_updates_are_delivered_in_order_and_acknowledged_once(ops: list[str]) -> None:
    manager = StatusUpdateManager(RetrySchedule(1, 4))
    manager.resume(0.0)
    sent: list[bytes] = []  # uuids queued, in order
    acked: list[bytes] = []
    now = 0.0
    for op in ops:
        now += 1.0
        stream = manager.get("fw", "t")
        if op == "update" and (stream is None or not stream.terminal_received):
            n = len(sent)
            status = mesos_pb2.TaskStatus(state=STATES[min(n, 2)], uuid=n.to_bytes(16, "big"))
            status.task_id.value = "t"
            new, effects = manager.update(status, OWNER, now)
            assert new
            sent.append(status.uuid)
            heads = [e.status.uuid for e in effects if isinstance(e, ForwardUpdate)]
            assert heads in ([], [sent[len(acked)]])
        elif op == "ack-head" and stream is not None and stream.head is not None:
            outcome, _ = manager.acknowledge("fw", "t", stream.head.uuid, now)
            assert outcome in (AckOutcome.ACCEPTED, AckOutcome.CLOSED)
            acked.append(sent[len(acked)])
        elif op == "ack-other":
            outcome, effects = manager.acknowledge("fw", "t", b"\xff" * 16, now)
            assert outcome in (AckOutcome.UNEXPECTED, AckOutcome.UNKNOWN_STREAM)
            assert effects == []
        elif op == "retry":
            for effect in manager.retry("fw", "t", now + 10):
                if isinstance(effect, ForwardUpdate):
                    assert effect.status.uuid == sent[len(acked)]
        elif op == "pause":
            manager.pause()
        elif op == "resume":
            manager.resume(now)
        manager.validate()
        stream = manager.get("fw", "t")
        if stream is not None:
            assert [s.uuid for s in stream.pending] == sent[len(acked) :]
            if stream.pending:
                assert stream.latest_state == STATES[min(len(sent) - 1, 2)]
