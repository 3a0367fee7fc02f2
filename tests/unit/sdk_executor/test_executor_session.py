"""ExecutorSession, the sans-I/O core: uuids, unacknowledged bookkeeping, reconnect decisions."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework_sdk import messages
from framework_sdk.errors import NotSubscribedError
from framework_sdk.executor_config import ExecutorConfig
from framework_sdk.executor_session import (
    Acknowledged,
    Disconnected,
    Error,
    ExecutorEvent,
    ExecutorSession,
    Heartbeat,
    Kill,
    Launch,
    LaunchGroup,
    Message,
    Phase,
    ProtocolError,
    Shutdown,
    Subscribed,
    check_status,
)
from protos.v1 import executor_pb2, mesos_pb2
from tests.unit.sdk_executor.scripted_agent import (
    ack_event,
    error_event,
    heartbeat_event,
    kill_event,
    launch_event,
    launch_group_event,
    message_event,
    shutdown_event,
    subscribed_event,
)

Call = executor_pb2.Call


def config(checkpoint: bool = True, recovery: float = 60.0, backoff: float = 2.0) -> ExecutorConfig:
    return ExecutorConfig(
        "127.0.0.1:5051",
        "framework-1",
        "executor-1",
        checkpoint=checkpoint,
        recovery_timeout_seconds=recovery,
        subscription_backoff_max_seconds=backoff,
    )


def counter_uuids() -> Iterator[bytes]:
    return (n.to_bytes(16, "big") for n in itertools.count(1))


def new_session(**kwargs: float | bool) -> ExecutorSession:
    uuids = counter_uuids()
    return ExecutorSession(
        config(**kwargs),  # type: ignore[arg-type]
        rng=random.Random(7),
        new_uuid=lambda: next(uuids),
    )


def subscribed(session: ExecutorSession, now: float = 0.0) -> list[ExecutorEvent]:
    session.subscribe_call(now)
    events = list(session.receive(subscribed_event(), now))
    session.validate()
    return events


def status(task_id: str, state: int) -> mesos_pb2.TaskStatus:
    result = mesos_pb2.TaskStatus(state=state)  # type: ignore[arg-type]
    result.task_id.value = task_id
    return result


def test_first_subscribe_is_empty_and_subscribed_is_typed() -> None:
    session = new_session()
    call = session.subscribe_call(0.0)
    assert call.type == Call.SUBSCRIBE
    assert (call.framework_id.value, call.executor_id.value) == ("framework-1", "executor-1")
    assert not call.subscribe.unacknowledged_tasks
    assert not call.subscribe.unacknowledged_updates
    assert session.phase is Phase.SUBSCRIBING
    [event] = session.receive(subscribed_event(), 0.0)
    assert isinstance(event, Subscribed)
    assert event.resubscribed is False
    assert event.agent_info.id.value == "agent-1"
    assert event.executor_info.executor_id.value == "executor-1"
    assert event.framework_info.id.value == "framework-1"
    assert event.container_id is not None
    assert event.container_id.value == "container-1"
    assert session.subscribed
    session.validate()


def test_events_map_to_typed_events() -> None:
    session = new_session()
    subscribed(session)
    assert session.receive(launch_event("t1", b"x"), 1.0) == [
        Launch(launch_event("t1", b"x").launch.task)
    ]
    [group] = session.receive(launch_group_event("g1", "g2"), 1.0)
    assert isinstance(group, LaunchGroup)
    assert [t.task_id.value for t in group.task_group.tasks] == ["g1", "g2"]
    [kill] = session.receive(kill_event("t1", grace_seconds=2.0), 1.0)
    assert isinstance(kill, Kill)
    assert kill.task_id.value == "t1"
    assert kill.kill_policy is not None
    assert kill.kill_policy.grace_period.nanoseconds == 2_000_000_000
    [plain_kill] = session.receive(kill_event("g1"), 1.0)
    assert isinstance(plain_kill, Kill)
    assert plain_kill.kill_policy is None
    assert session.receive(message_event(b"ping 1"), 1.0) == [Message(b"ping 1")]
    assert session.receive(heartbeat_event(), 1.0) == [Heartbeat()]
    [shutdown] = session.receive(shutdown_event(), 1.0)
    assert isinstance(shutdown, Shutdown)
    assert shutdown.by_agent
    assert session.receive(shutdown_event(), 1.0) == []  # Once is enough.
    assert session.receive(executor_pb2.Event(type=executor_pb2.Event.UNKNOWN), 1.0) == []
    assert [t.task_id.value for t in session.unacknowledged_tasks] == ["t1", "g1", "g2"]
    session.validate()


def test_event_before_subscribed_is_a_protocol_error() -> None:
    session = new_session()
    session.subscribe_call(0.0)
    with pytest.raises(ProtocolError, match="LAUNCH before SUBSCRIBED"):
        session.receive(launch_event("t1"), 0.0)


def test_prepare_update_stamps_the_copy_and_keeps_it_unacknowledged() -> None:
    session = new_session()
    subscribed(session)
    session.receive(launch_event("t1"), 0.0)
    original = status("t1", messages.TASK_RUNNING)
    call = session.prepare_update(original, timestamp=1234.5)
    sent = call.update.status
    assert call.type == Call.UPDATE
    assert (call.framework_id.value, call.executor_id.value) == ("framework-1", "executor-1")
    assert sent.uuid == (1).to_bytes(16, "big")
    assert sent.source == mesos_pb2.TaskStatus.SOURCE_EXECUTOR
    assert sent.executor_id.value == "executor-1"
    assert sent.agent_id.value == "agent-1"
    assert sent.timestamp == 1234.5
    assert original.uuid == b""  # The caller's message is left alone.
    assert session.unacknowledged_updates == [sent]
    session.validate()


def test_a_set_timestamp_is_kept() -> None:
    session = new_session()
    subscribed(session)
    given_status = status("t1", messages.TASK_RUNNING)
    given_status.timestamp = 5.0
    assert session.prepare_update(given_status, timestamp=99.0).update.status.timestamp == 5.0


def test_default_uuids_are_random_rfc4122() -> None:
    session = ExecutorSession(config())
    subscribed(session)
    first = session.prepare_update(status("t1", messages.TASK_RUNNING), 0.0).update.status.uuid
    second = session.prepare_update(status("t1", messages.TASK_RUNNING), 0.0).update.status.uuid
    assert len(first) == len(second) == 16
    assert first != second
    assert first[6] >> 4 == 4  # Version 4.


@pytest.mark.parametrize(
    ("bad", "error", "match"),
    [
        ("not a status", TypeError, "TaskStatus"),
        (mesos_pb2.TaskStatus(state=mesos_pb2.TASK_RUNNING), ValueError, "task_id"),
        (status("t1", messages.TASK_STAGING), ValueError, "TASK_STAGING"),
    ],
)
def test_bad_updates_are_refused_and_change_nothing(
    bad: object, error: type[Exception], match: str
) -> None:
    session = new_session()
    subscribed(session)
    with pytest.raises(error, match=match):
        session.prepare_update(bad, 0.0)  # type: ignore[arg-type]
    assert session.unacknowledged_updates == []
    session.validate()


def test_check_status_needs_a_state_and_this_executor() -> None:
    no_state = mesos_pb2.TaskStatus()
    no_state.task_id.value = "t1"
    with pytest.raises(ValueError, match=r"status\.state is required"):
        check_status(no_state)
    other = status("t1", messages.TASK_RUNNING)
    other.executor_id.value = "someone-else"
    with pytest.raises(ValueError, match="executor_id"):
        check_status(other, "executor-1")
    assert check_status(other) is other


def test_ack_of_a_running_update_keeps_the_task_and_terminal_ack_releases_it() -> None:
    session = new_session()
    subscribed(session)
    session.receive(launch_event("t1"), 0.0)
    running = session.prepare_update(status("t1", messages.TASK_RUNNING), 0.0).update.status
    finished = session.prepare_update(status("t1", messages.TASK_FINISHED), 0.0).update.status
    [ack] = session.receive(ack_event(running), 0.0)
    assert isinstance(ack, Acknowledged)
    assert ack.uuid == running.uuid
    assert ack.status == running
    assert [t.task_id.value for t in session.unacknowledged_tasks] == ["t1"]
    assert session.unacknowledged_updates == [finished]
    session.receive(ack_event(finished), 0.0)
    assert session.unacknowledged_tasks == []
    assert session.unacknowledged_updates == []
    # A repeated or unknown acknowledgement is ignored.
    assert session.receive(ack_event(finished), 0.0) == []
    session.validate()


def test_terminal_update_not_yet_acked_keeps_the_task() -> None:
    session = new_session()
    subscribed(session)
    session.receive(launch_event("t1"), 0.0)
    session.prepare_update(status("t1", messages.TASK_FAILED), 0.0)
    assert [t.task_id.value for t in session.unacknowledged_tasks] == ["t1"]


def test_resubscribe_carries_unacknowledged_tasks_and_updates_in_order() -> None:
    session = new_session()
    subscribed(session)
    for task_id in ("t1", "t2", "t3"):
        session.receive(launch_event(task_id), 0.0)
    acked = session.prepare_update(status("t1", messages.TASK_FINISHED), 0.0).update.status
    pending_1 = session.prepare_update(status("t2", messages.TASK_RUNNING), 0.0).update.status
    session.receive(ack_event(acked), 0.0)
    lost = session.stream_lost("agent restarted", 10.0)
    assert lost.events == (Disconnected("agent restarted"),)
    # Sent while disconnected: kept for the next SUBSCRIBE.
    pending_2 = session.prepare_update(status("t3", messages.TASK_RUNNING), 10.5).update.status
    call = session.subscribe_call(11.0)
    assert [t.task_id.value for t in call.subscribe.unacknowledged_tasks] == ["t2", "t3"]
    assert [u.status for u in call.subscribe.unacknowledged_updates] == [pending_1, pending_2]
    [event] = session.receive(subscribed_event(), 11.0)
    assert isinstance(event, Subscribed)
    assert event.resubscribed
    session.validate()


def test_duplicate_launches_are_ignored() -> None:
    session = new_session()
    subscribed(session)
    assert len(session.receive(launch_event("t1"), 0.0)) == 1
    assert session.receive(launch_event("t1"), 0.0) == []
    assert session.receive(launch_group_event("t2", "t1"), 0.0) == []
    assert session.receive(launch_event(""), 0.0) == []
    assert [t.task_id.value for t in session.unacknowledged_tasks] == ["t1"]


def test_checkpointing_executor_retries_until_the_recovery_timeout_then_shuts_down() -> None:
    session = new_session(checkpoint=True, recovery=30.0, backoff=2.0)
    subscribed(session)
    lost = session.stream_lost("UNAVAILABLE: socket closed", 100.0)
    assert lost.events == (Disconnected("UNAVAILABLE: socket closed"),)
    assert lost.retry is not None
    assert 0.0 <= lost.retry.delay <= 2.0
    assert session.phase is Phase.BACKING_OFF
    assert session.deadline == 130.0
    now = 100.0
    while True:
        session.subscribe_call(now)
        session.validate()
        outcome = session.subscribe_failed("UNAVAILABLE", "connection refused", now)
        session.validate()
        if outcome.retry is None:
            break
        assert outcome.events == ()
        assert 0.0 <= outcome.retry.delay <= 2.0
        now += outcome.retry.delay + 0.5
    assert now >= 130.0
    [event] = outcome.events
    assert isinstance(event, Shutdown)
    assert not event.by_agent
    assert "within 30s" in event.reason
    assert session.closed
    assert session.shutdown_requested


def test_delay_never_passes_the_deadline() -> None:
    session = new_session(checkpoint=True, recovery=1.0, backoff=50.0)
    subscribed(session)
    lost = session.stream_lost("broken", 0.0)
    assert lost.retry is not None
    assert lost.retry.delay <= 1.0


def test_recovered_agent_that_does_not_know_the_executor_yet_is_retried() -> None:
    session = new_session(checkpoint=True)
    subscribed(session)
    session.stream_lost("broken", 0.0)
    session.subscribe_call(1.0)
    outcome = session.subscribe_failed("NOT_FOUND", "unknown executor", 1.0)
    assert outcome.retry is not None
    session.subscribe_call(2.0)
    assert isinstance(session.receive(subscribed_event(), 2.0)[0], Subscribed)


def test_refusal_after_a_disconnection_shuts_down() -> None:
    session = new_session(checkpoint=True)
    subscribed(session)
    session.stream_lost("broken", 0.0)
    session.subscribe_call(1.0)
    outcome = session.subscribe_failed("FAILED_PRECONDITION", "executor has terminated", 1.0)
    assert outcome.retry is None
    [event] = outcome.events
    assert isinstance(event, Shutdown)
    assert "refused" in event.reason


def test_non_checkpointing_executor_shuts_down_when_the_agent_goes() -> None:
    session = new_session(checkpoint=False)
    subscribed(session)
    lost = session.stream_lost("UNAVAILABLE", 5.0)
    assert lost.retry is None
    disconnected, shutdown = lost.events
    assert disconnected == Disconnected("UNAVAILABLE")
    assert isinstance(shutdown, Shutdown)
    assert "does not checkpoint" in shutdown.reason
    assert session.closed
    session.validate()
    # Nothing more comes out of a closed session.
    assert session.stream_lost("again", 6.0).events == ()
    assert session.receive(launch_event("t9"), 6.0) == []
    with pytest.raises(NotSubscribedError):
        session.prepare_update(status("t1", messages.TASK_RUNNING), 6.0)


def test_first_subscription_refused_is_an_error() -> None:
    session = new_session()
    session.subscribe_call(0.0)
    outcome = session.subscribe_failed("NOT_FOUND", "executor 'executor-1' is not on this agent", 0)
    assert outcome.retry is None
    [event] = outcome.events
    assert isinstance(event, Error)
    assert "127.0.0.1:5051" in event.message
    assert "not on this agent" in event.message
    assert session.closed


def test_first_subscription_is_retried_while_the_agent_is_unreachable() -> None:
    session = new_session(recovery=10.0)
    session.subscribe_call(0.0)
    assert session.subscribe_failed("UNAVAILABLE", "refused", 1.0).retry is not None
    session.subscribe_call(2.0)
    outcome = session.subscribe_failed("UNAVAILABLE", "refused", 10.0)
    assert outcome.retry is None
    assert isinstance(outcome.events[0], Error)


def test_stream_lost_while_shutting_down_just_closes() -> None:
    session = new_session(checkpoint=True)
    subscribed(session)
    session.receive(shutdown_event(), 0.0)
    lost = session.stream_lost("agent ended the stream", 1.0)
    assert lost == type(lost)((), None)
    assert session.closed


def test_error_event_closes() -> None:
    session = new_session()
    subscribed(session)
    assert session.receive(error_event("framework removed"), 0.0) == [Error("framework removed")]
    assert session.closed
    assert session.close_reason is not None
    session.validate()


def test_update_refusals() -> None:
    session = new_session()
    subscribed(session)
    kept = session.prepare_update(status("t1", messages.TASK_RUNNING), 0.0).update.status
    dropped = session.prepare_update(status("t2", messages.TASK_RUNNING), 0.0).update.status
    assert session.update_refused(kept.uuid, "UNAVAILABLE") is False
    assert session.update_refused(dropped.uuid, "NOT_FOUND") is True
    assert session.unacknowledged_updates == [kept]
    # While the stream is down a refusal may only mean "not subscribed": keep the update.
    session.stream_lost("broken", 0.0)
    assert session.update_refused(kept.uuid, "FAILED_PRECONDITION") is False
    assert session.unacknowledged_updates == [kept]


def test_messages_need_a_subscription() -> None:
    session = new_session()
    with pytest.raises(NotSubscribedError):
        session.message_call(b"hello")
    subscribed(session)
    with pytest.raises(TypeError, match="bytes"):
        session.message_call("text")  # type: ignore[arg-type]
    call = session.message_call(b"pong 1")
    assert call.type == Call.MESSAGE
    assert call.message.data == b"pong 1"


def test_subscribe_call_only_when_idle_or_backing_off() -> None:
    session = new_session()
    subscribed(session)
    with pytest.raises(NotSubscribedError, match="subscribed"):
        session.subscribe_call(1.0)
    with pytest.raises(ProtocolError):
        session.receive(subscribed_event(), 1.0)


# -- a property: what is unacknowledged is exactly what was sent and not acknowledged --

_operations = st.lists(
    st.one_of(
        st.tuples(st.just("launch"), st.integers(0, 4)),
        st.tuples(st.just("update"), st.integers(0, 4), st.booleans()),
        st.tuples(st.just("ack"), st.integers(0, 30)),
        st.tuples(st.just("lost")),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(_operations)
def test_unacknowledged_bookkeeping(operations: list[tuple[object, ...]]) -> None:
    session = new_session(checkpoint=True, recovery=1e6)
    subscribed(session)
    sent: list[mesos_pb2.TaskStatus] = []
    acked: set[bytes] = set()
    live: dict[str, None] = {}  # Launched, no terminal update acknowledged (in launch order).
    now = 0.0
    for op in operations:
        now += 1.0
        if op[0] == "launch":
            task_id = f"t{op[1]}"
            delivered = session.receive(launch_event(task_id), now)
            assert bool(delivered) == (task_id not in live)
            live.setdefault(task_id)
        elif op[0] == "update":
            state = messages.TASK_FINISHED if op[2] else messages.TASK_RUNNING
            sent.append(session.prepare_update(status(f"t{op[1]}", state), now).update.status)
        elif op[0] == "ack" and session.subscribed:
            index = int(str(op[1]))
            if index < len(sent):
                update = sent[index]
                reported = session.receive(ack_event(update), now)
                assert bool(reported) == (update.uuid not in acked)
                if update.uuid not in acked and update.state == messages.TASK_FINISHED:
                    live.pop(update.task_id.value, None)
                acked.add(update.uuid)
        elif op[0] == "lost":
            if session.subscribed:
                session.stream_lost("broken", now)
            call = session.subscribe_call(now)
            resent = [u.status.uuid for u in call.subscribe.unacknowledged_updates]
            assert resent == [s.uuid for s in sent if s.uuid not in acked]
            assert [t.task_id.value for t in call.subscribe.unacknowledged_tasks] == list(live)
            session.receive(subscribed_event(), now)
        session.validate()
    pending = [s.uuid for s in sent if s.uuid not in acked]
    assert [s.uuid for s in session.unacknowledged_updates] == pending
    assert [t.task_id.value for t in session.unacknowledged_tasks] == list(live)
