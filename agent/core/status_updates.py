"""The status update manager: reliable, ordered, at-least-once task status updates.

Each task has a :class:`StatusUpdateStream`. Updates queue up in it in arrival order; only the
oldest (the *head*) is in flight to the master, retried on a doubling interval until the
scheduler's acknowledgement comes back with its uuid. Then the next one goes out. A duplicate
update (a uuid already received) or acknowledgement (a uuid already acknowledged) is ignored; an
acknowledgement of anything but the head is rejected. When the acknowledged update is terminal,
the stream is closed and the task's resources can be released.

For checkpointing frameworks every update and acknowledgement is first handed out as a
:class:`AppendUpdateRecord` effect, which the runtime writes (and fsyncs) before carrying out the
effects after it, so a forwarded update is always on disk first (Mesos's ``task.updates``).

Everything here is pure: methods take ``now`` and return effects (see :mod:`agent.core.effects`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum

from agent.core.backoff import RetrySchedule
from agent.core.effects import (
    AppendUpdateRecord,
    CancelTimer,
    Effect,
    ForwardUpdate,
    SetTimer,
    UpdateRecord,
)
from protos.v1 import mesos_pb2

__all__ = [
    "TERMINAL_STATES",
    "AckOutcome",
    "StatusUpdateManager",
    "StatusUpdateStream",
    "StreamOwner",
    "is_terminal",
]

TERMINAL_STATES = frozenset(
    {
        mesos_pb2.TASK_FINISHED,
        mesos_pb2.TASK_FAILED,
        mesos_pb2.TASK_KILLED,
        mesos_pb2.TASK_ERROR,
        mesos_pb2.TASK_LOST,
        mesos_pb2.TASK_DROPPED,
        mesos_pb2.TASK_GONE,
        mesos_pb2.TASK_GONE_BY_OPERATOR,
    }
)


def is_terminal(state: mesos_pb2.TaskState.ValueType) -> bool:
    """Whether a task in ``state`` will never change state again (Mesos's isTerminalState)."""
    return state in TERMINAL_STATES


class AckOutcome(Enum):
    """What became of an acknowledgement handed to :meth:`StatusUpdateManager.acknowledge`."""

    ACCEPTED = "accepted"  # The head was acknowledged; the next update (if any) is on its way.
    CLOSED = "closed"  # The head was terminal: the stream is closed.
    DUPLICATE = "duplicate"  # Already acknowledged: ignored.
    UNEXPECTED = "unexpected"  # Not the head's uuid: rejected.
    UNKNOWN_STREAM = "unknown stream"  # No open stream for the task: ignored.


StreamKey = tuple[str, str]  # (framework_id, task_id)


@dataclass(frozen=True)
class StreamOwner:
    """StreamOwner: whose updates a stream carries, and whether and where they are checkpointed."""

    framework_id: str
    executor_id: str | None = None
    container_id: str | None = None
    checkpoint: bool = False


@dataclass
class StatusUpdateStream:
    """StatusUpdateStream holds one task's updates that the scheduler has not acknowledged yet.

    ``pending[0]`` is the head, the only one in flight. ``received`` and ``acknowledged`` are the
    uuids seen so far (to drop duplicates); ``closed`` is set once a terminal update is
    acknowledged. ``interval`` and ``retry_at`` describe the head's retry timer.
    """

    framework_id: str
    task_id: str
    executor_id: str | None
    checkpoint: bool
    container_id: str | None = None
    pending: deque[mesos_pb2.TaskStatus] = field(default_factory=deque)
    received: set[bytes] = field(default_factory=set)
    acknowledged: set[bytes] = field(default_factory=set)
    last_acknowledged: mesos_pb2.TaskStatus | None = None
    closed: bool = False
    interval: float | None = None
    retry_at: float | None = None

    @property
    def key(self) -> StreamKey:
        """The stream's key in the manager: ``(framework_id, task_id)``."""
        return (self.framework_id, self.task_id)

    @property
    def head(self) -> mesos_pb2.TaskStatus | None:
        """The update in flight, if any."""
        return self.pending[0] if self.pending else None

    @property
    def latest_state(self) -> mesos_pb2.TaskState.ValueType | None:
        """The newest state this stream knows (the tail of the queue, else the last acked)."""
        if self.pending:
            return self.pending[-1].state
        return self.last_acknowledged.state if self.last_acknowledged is not None else None

    @property
    def terminal_received(self) -> bool:
        """Whether a terminal update has been received (acknowledged or not)."""
        state = self.latest_state
        return state is not None and is_terminal(state)

    def apply_update(self, status: mesos_pb2.TaskStatus) -> bool:
        """Queue ``status`` unless its uuid was seen before; True if it was new."""
        if status.uuid in self.received:
            return False
        self.received.add(status.uuid)
        self.pending.append(status)
        return True

    def apply_ack(self, uuid: bytes) -> AckOutcome:
        """Pop the head if ``uuid`` is its uuid; say what happened."""
        if uuid in self.acknowledged:
            return AckOutcome.DUPLICATE
        head = self.head
        if head is None or head.uuid != uuid:
            return AckOutcome.UNEXPECTED
        self.pending.popleft()
        self.acknowledged.add(uuid)
        self.last_acknowledged = head
        if is_terminal(head.state):
            self.closed = True
            return AckOutcome.CLOSED
        return AckOutcome.ACCEPTED

    def validate(self) -> None:
        """Check the stream's invariants; raise AssertionError naming the broken one."""
        uuids = [s.uuid for s in self.pending]
        assert len(set(uuids)) == len(uuids), f"{self.key}: duplicate uuid queued"
        assert set(uuids) <= self.received, f"{self.key}: queued update not marked received"
        assert not set(uuids) & self.acknowledged, f"{self.key}: acknowledged update still queued"
        assert self.acknowledged <= self.received, f"{self.key}: acked a uuid never received"
        terminal = [i for i, s in enumerate(self.pending) if is_terminal(s.state)]
        assert terminal in ([], [len(self.pending) - 1]), f"{self.key}: update after terminal"
        if self.closed:
            assert not self.pending, f"{self.key}: closed stream has pending updates"
        if self.retry_at is not None:
            assert self.pending, f"{self.key}: retry timer without an update in flight"


def _timer_key(key: StreamKey) -> tuple[str, ...]:
    return ("status-update", *key)


@dataclass
class StatusUpdateManager:
    """StatusUpdateManager owns every task's :class:`StatusUpdateStream` on the agent.

    While ``paused`` (no master), updates are queued and checkpointed but not forwarded;
    :meth:`resume` sends every stream's head at once.
    """

    schedule: RetrySchedule = field(default_factory=RetrySchedule)
    paused: bool = True
    streams: dict[StreamKey, StatusUpdateStream] = field(default_factory=dict)

    def get(self, framework_id: str, task_id: str) -> StatusUpdateStream | None:
        """The open stream of a task, if any."""
        return self.streams.get((framework_id, task_id))

    def __iter__(self) -> Iterator[StatusUpdateStream]:
        return iter(list(self.streams.values()))

    def update(
        self, status: mesos_pb2.TaskStatus, owner: StreamOwner, now: float
    ) -> tuple[bool, list[Effect]]:
        """Take a new update (``status.uuid`` set); return (was it new, effects).

        Raises ValueError for an update without a 16-byte uuid, or one after a terminal update.
        """
        if len(status.uuid) != 16:
            raise ValueError(
                f"invalid status update for task {status.task_id.value!r}: uuid must be 16 bytes"
            )
        key = (owner.framework_id, status.task_id.value)
        stream = self.streams.get(key)
        if stream is None:
            stream = StatusUpdateStream(
                owner.framework_id, key[1], owner.executor_id, owner.checkpoint, owner.container_id
            )
            self.streams[key] = stream
        if status.uuid in stream.received:
            return False, []
        if stream.terminal_received:
            raise ValueError(
                f"invalid status update for task {key[1]!r}: the task already reached a terminal"
                " state"
            )
        effects: list[Effect] = []
        if stream.checkpoint:
            effects.append(
                AppendUpdateRecord(
                    stream.framework_id,
                    stream.executor_id,
                    stream.container_id,
                    key[1],
                    "update",
                    status,
                )
            )
        stream.apply_update(status)
        if len(stream.pending) == 1:
            effects += self._forward(stream, now, first=True)
        return True, effects

    def acknowledge(
        self, framework_id: str, task_id: str, uuid: bytes, now: float
    ) -> tuple[AckOutcome, list[Effect]]:
        """Take the scheduler's acknowledgement of ``uuid``; return what happened and effects.

        On CLOSED the stream is gone from the manager; the caller releases the task.
        """
        stream = self.streams.get((framework_id, task_id))
        if stream is None:
            return AckOutcome.UNKNOWN_STREAM, []
        if uuid in stream.acknowledged:
            return AckOutcome.DUPLICATE, []
        head = stream.head
        if head is None or head.uuid != uuid:
            return AckOutcome.UNEXPECTED, []
        effects: list[Effect] = []
        if stream.checkpoint:
            effects.append(
                AppendUpdateRecord(
                    framework_id, stream.executor_id, stream.container_id, task_id, "ack", uuid
                )
            )
        outcome = stream.apply_ack(uuid)
        stream.interval = None
        stream.retry_at = None
        if outcome is AckOutcome.CLOSED:
            del self.streams[stream.key]
            effects.append(CancelTimer(_timer_key(stream.key)))
        elif stream.pending:
            effects += self._forward(stream, now, first=True)
        else:
            effects.append(CancelTimer(_timer_key(stream.key)))
        return outcome, effects

    def retry(self, framework_id: str, task_id: str, now: float) -> list[Effect]:
        """The retry timer of a stream fired: send its head again if still unacknowledged."""
        stream = self.streams.get((framework_id, task_id))
        if stream is None or not stream.pending or stream.retry_at is None:
            return []
        if now < stream.retry_at:  # A stale timer; the current one is still ahead.
            return [SetTimer(_timer_key(stream.key), stream.retry_at)]
        return self._forward(stream, now, first=False)

    def pause(self) -> list[Effect]:
        """Stop forwarding (the master is gone); updates keep queueing."""
        self.paused = True
        effects: list[Effect] = []
        for stream in self.streams.values():
            if stream.retry_at is not None:
                stream.retry_at = None
                stream.interval = None
                effects.append(CancelTimer(_timer_key(stream.key)))
        return effects

    def resume(self, now: float) -> list[Effect]:
        """Forward every stream's head now (a master is back) and restart the retry timers."""
        self.paused = False
        effects: list[Effect] = []
        for stream in self.streams.values():
            if stream.pending:
                effects += self._forward(stream, now, first=True)
        return effects

    def _forward(self, stream: StatusUpdateStream, now: float, first: bool) -> list[Effect]:
        head = stream.head
        if self.paused or head is None:
            return []
        stream.interval = self.schedule.after(None if first else stream.interval)
        stream.retry_at = now + stream.interval
        latest = stream.latest_state
        assert latest is not None
        return [
            ForwardUpdate(stream.framework_id, stream.executor_id, head, latest),
            SetTimer(_timer_key(stream.key), stream.retry_at),
        ]

    def recover(
        self, owner: StreamOwner, task_id: str, records: Iterable[UpdateRecord]
    ) -> StatusUpdateStream | None:
        """Rebuild a checkpointed stream from its log records; None if it had been closed.

        Records are replayed as they happened; inconsistent ones (an ack of something else
        than the head, an update after a terminal one) are skipped, as a replay must not fail
        on what the live manager already rejected.
        """
        stream = StatusUpdateStream(
            owner.framework_id, task_id, owner.executor_id, True, owner.container_id
        )
        for record in records:
            if record.kind == "update":
                assert isinstance(record.payload, mesos_pb2.TaskStatus)
                if not stream.terminal_received:
                    stream.apply_update(record.payload)
            else:
                assert isinstance(record.payload, bytes)
                stream.apply_ack(record.payload)
        if stream.closed:
            return None
        self.streams[stream.key] = stream
        return stream

    def remove(self, framework_id: str, task_id: str) -> list[Effect]:
        """Drop a stream without acknowledgement (its framework is gone for good)."""
        stream = self.streams.pop((framework_id, task_id), None)
        if stream is None:
            return []
        return [CancelTimer(_timer_key(stream.key))]

    def validate(self) -> None:
        """Check every stream's invariants and the manager's own."""
        for key, stream in self.streams.items():
            assert key == stream.key, f"stream filed under {key} is {stream.key}"
            assert not stream.closed, f"{key}: closed stream still held"
            stream.validate()
            if self.paused:
                assert stream.retry_at is None, f"{key}: retrying while paused"
            elif stream.pending:
                assert stream.retry_at is not None, f"{key}: head in flight without a retry timer"
