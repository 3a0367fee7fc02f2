"""SchedulerSession, the sans-I/O subscription state machine: transitions, backoff, bookkeeping."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from framework_sdk import ClientConfig, NotSubscribedError, calls, events, messages
from framework_sdk.session import (
    DEFAULT_HEARTBEAT_SECONDS,
    GiveUp,
    Phase,
    ProtocolError,
    Retry,
    SchedulerSession,
    backoff_delay,
    needs_acknowledgement,
)
from protos.v1 import mesos_pb2, scheduler_pb2

Event = scheduler_pb2.Event
CONFIG = ClientConfig(
    backoff_initial_seconds=1.0,
    backoff_max_seconds=15.0,
    heartbeat_misses=5.0,
    subscribe_timeout_seconds=30.0,
)


@pytest.fixture
def session() -> Iterator[SchedulerSession]:
    """A fresh session; its invariants are checked after the test."""
    made = SchedulerSession(
        messages.framework_info("fw", user="u", roles=["a", "b"]),
        config=CONFIG,
        rng=random.Random(7),
    )
    yield made
    made.validate()


def phase_of(session: SchedulerSession) -> Phase:
    """The phase, read through a call so the type checker does not narrow it between steps."""
    return session.phase


def subscribed_event(framework_id: str = "fw-1", heartbeat: float = 10.0) -> Event:
    event = Event(type=Event.SUBSCRIBED)
    event.subscribed.framework_id.value = framework_id
    event.subscribed.heartbeat_interval_seconds = heartbeat
    return event


def subscribe(session: SchedulerSession, now: float = 100.0) -> events.Subscribed:
    session.subscribe_call(now)
    session.stream_opened("stream-1")
    typed = session.receive(subscribed_event(), now)
    assert isinstance(typed, events.Subscribed)
    session.validate()
    return typed


# -- backoff --


def test_backoff_doubles_up_to_the_cap() -> None:
    bases = [backoff_delay(n, 0.5, 15.0, 1.0) for n in range(8)]
    assert bases == [0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0]
    assert backoff_delay(1000, 0.5, 15.0, 1.0) == 15.0


def test_backoff_jitter_stays_within_half_and_all_of_the_base() -> None:
    for attempt in range(10):
        base = min(15.0, 0.2 * 2**attempt)
        low = backoff_delay(attempt, 0.2, 15.0, 0.0)
        high = backoff_delay(attempt, 0.2, 15.0, 1.0)
        assert low == pytest.approx(base / 2)
        assert high == pytest.approx(base)
        assert low <= backoff_delay(attempt, 0.2, 15.0, 0.37) <= high


def test_backoff_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="attempt"):
        backoff_delay(-1, 1, 2, 0.5)
    with pytest.raises(ValueError, match="draw"):
        backoff_delay(0, 1, 2, 1.5)


def test_session_backoff_grows_with_failures_and_resets_on_subscribe(
    session: SchedulerSession,
) -> None:
    delays = []
    for _ in range(6):
        session.subscribe_call(0.0)
        _, retry = session.stream_lost(0.0, "refused")
        delays.append(retry.delay)
        session.validate()
    for n, delay in enumerate(delays):
        base = min(15.0, 2.0**n)
        assert base / 2 <= delay <= base
    assert session.attempt == 6
    subscribe(session)
    assert session.attempt == 0
    _, retry = session.stream_lost(200.0, "broken")
    assert 0.5 <= retry.delay <= 1.0


# -- acknowledgements --


def test_needs_acknowledgement_only_with_uuid_and_agent() -> None:
    status = mesos_pb2.TaskStatus()
    assert not needs_acknowledgement(status)
    status.uuid = b"u" * 16
    assert not needs_acknowledgement(status)
    status.agent_id.value = "a1"
    assert needs_acknowledgement(status)
    status.uuid = b""
    assert not needs_acknowledgement(status)


# -- transitions --


def test_first_subscription(session: SchedulerSession) -> None:
    assert phase_of(session) is Phase.IDLE
    call = session.subscribe_call(100.0)
    assert call.type == scheduler_pb2.Call.SUBSCRIBE
    assert not call.HasField("framework_id")
    assert phase_of(session) is Phase.CONNECTING
    assert session.deadline() == 130.0
    session.stream_opened("s1")
    typed = session.receive(subscribed_event(heartbeat=10.0), 101.0)
    assert isinstance(typed, events.Subscribed)
    assert not typed.resubscribed
    assert typed.framework_id.value == "fw-1"
    assert session.subscribed
    assert session.stream_id == "s1"
    assert session.deadline() == 151.0  # 5 heartbeats of 10 s
    assert session.framework_info.id.value == "fw-1"


def test_events_push_the_deadline(session: SchedulerSession) -> None:
    subscribe(session, now=100.0)
    assert not session.expired(149.0)
    assert session.expired(150.0)
    session.receive(Event(type=Event.HEARTBEAT), 120.0)
    assert session.deadline() == 170.0
    assert not session.expired(150.0)


def test_missing_heartbeat_interval_uses_mesos_default(session: SchedulerSession) -> None:
    session.subscribe_call(0.0)
    session.stream_opened(None)
    session.receive(subscribed_event(heartbeat=0.0), 0.0)
    assert session.heartbeat_interval == DEFAULT_HEARTBEAT_SECONDS
    assert session.stream_id is None


def test_resubscription_is_a_failover_with_the_framework_id(session: SchedulerSession) -> None:
    subscribe(session)
    notice, retry = session.stream_lost(200.0, "stream broke")
    assert isinstance(notice, events.Disconnected)
    assert notice.reason == "stream broke"
    assert isinstance(retry, Retry)
    assert session.phase is Phase.BACKING_OFF
    assert session.stream_id is None
    session.validate()
    call = session.subscribe_call(201.0)
    assert call.framework_id.value == "fw-1"
    assert call.subscribe.framework_info.id.value == "fw-1"
    session.stream_opened("s2")
    typed = session.receive(subscribed_event(), 202.0)
    assert isinstance(typed, events.Subscribed)
    assert typed.resubscribed


def test_losing_a_stream_before_subscribed_reports_no_disconnection(
    session: SchedulerSession,
) -> None:
    session.subscribe_call(0.0)
    notice, _ = session.stream_lost(1.0, "refused")
    assert notice is None


def test_subscribe_failures_retry_or_give_up(session: SchedulerSession) -> None:
    session.subscribe_call(0.0)
    outcome = session.subscribe_failed("UNAVAILABLE", "connection refused", 0.0)
    assert isinstance(outcome, Retry)
    assert "UNAVAILABLE" in outcome.reason
    assert session.phase is Phase.BACKING_OFF
    session.subscribe_call(1.0)
    outcome = session.subscribe_failed("INVALID_ARGUMENT", "framework_info.user: empty", 1.0)
    assert isinstance(outcome, GiveUp)
    assert "framework_info.user: empty" in outcome.message
    assert session.closed
    assert session.close_reason == outcome.message


def batched_of(session: SchedulerSession) -> bool:
    """``batched``, read through a call so the type checker does not narrow it between steps."""
    return session.batched


def test_batched_is_a_property_of_the_stream(session: SchedulerSession) -> None:
    session.subscribe_call(100.0)
    session.stream_opened("stream-1", batched=True)
    session.receive(subscribed_event(), 100.0)
    assert batched_of(session)
    session.batch_unavailable()  # Batch answered UNIMPLEMENTED: calls go one by one.
    assert not batched_of(session)
    session.stream_lost(101.0, "broke")
    session.subscribe_call(102.0)
    session.stream_opened("stream-2", batched=True)
    assert batched_of(session)
    session.stream_lost(103.0, "broke again")
    assert not batched_of(session)
    session.validate()
    session.subscribe_call(104.0)
    session.stream_opened("stream-3")  # Mesos's Subscribe.
    assert not batched_of(session)


def test_error_as_first_event_closes(session: SchedulerSession) -> None:
    session.subscribe_call(0.0)
    error = Event(type=Event.ERROR)
    error.error.message = "Framework has been removed"
    typed = session.receive(error, 0.0)
    assert typed == events.Error(message="Framework has been removed")
    assert session.closed
    assert session.close_reason == "Framework has been removed"


def test_error_after_subscribed_closes(session: SchedulerSession) -> None:
    subscribe(session)
    error = Event(type=Event.ERROR)
    error.error.message = "Framework failed over"
    session.receive(error, 101.0)
    assert session.closed
    with pytest.raises(NotSubscribedError):
        session.prepare(calls.revive())


@pytest.mark.parametrize(
    "first",
    [Event(type=Event.HEARTBEAT), Event(type=Event.OFFERS), subscribed_event(framework_id="")],
)
def test_stream_must_start_with_a_valid_subscribed(session: SchedulerSession, first: Event) -> None:
    session.subscribe_call(0.0)
    with pytest.raises(ProtocolError):
        session.receive(first, 0.0)
    session.stream_lost(0.0, "protocol error")


def test_a_second_subscribed_on_one_stream_is_a_protocol_error(session: SchedulerSession) -> None:
    subscribe(session)
    with pytest.raises(ProtocolError, match="second SUBSCRIBED"):
        session.receive(subscribed_event(), 101.0)


def test_wrong_phase_transitions_raise(session: SchedulerSession) -> None:
    with pytest.raises(RuntimeError, match="stream lost in phase idle"):
        session.stream_lost(0.0, "x")
    with pytest.raises(RuntimeError, match="event received in phase idle"):
        session.receive(Event(type=Event.HEARTBEAT), 0.0)
    subscribe(session)
    with pytest.raises(RuntimeError, match="cannot subscribe in phase subscribed"):
        session.subscribe_call(0.0)


def test_close_is_final_and_keeps_the_first_reason(session: SchedulerSession) -> None:
    subscribe(session)
    session.close("first")
    session.close("second")
    assert session.close_reason == "first"
    assert session.deadline() is None


# -- calls --


def offers_event(*pairs: tuple[str, str]) -> Event:
    event = Event(type=Event.OFFERS)
    for offer_id, agent_id in pairs:
        offer = event.offers.offers.add()
        offer.id.value = offer_id
        offer.agent_id.value = agent_id
    return event


def test_prepare_requires_subscription_and_changes_nothing(session: SchedulerSession) -> None:
    with pytest.raises(NotSubscribedError, match="DECLINE not sent: the scheduler is idle"):
        session.prepare(calls.decline("o1"))
    assert session.phase is Phase.IDLE


def test_prepare_adds_framework_id_without_touching_the_original(
    session: SchedulerSession,
) -> None:
    subscribe(session)
    original = calls.revive()
    prepared = session.prepare(original)
    assert prepared.framework_id.value == "fw-1"
    assert not original.HasField("framework_id")


def test_launch_gets_agent_from_offer_and_kill_from_task(session: SchedulerSession) -> None:
    subscribe(session)
    session.receive(offers_event(("o1", "agent-1"), ("o2", "agent-2")), 101.0)
    assert sorted(session.offer_ids()) == ["o1", "o2"]
    task = mesos_pb2.TaskInfo(name="t")
    task.task_id.value = "t1"
    task.command.value = "true"
    prepared = session.prepare(calls.launch(["o2"], [task]))
    assert prepared.accept.operations[0].launch.task_infos[0].agent_id.value == "agent-2"
    assert session.offer_ids() == ["o1"]
    assert session.agent_of_task("t1") == mesos_pb2.AgentID(value="agent-2")
    kill = session.prepare(calls.kill("t1"))
    assert kill.kill.agent_id.value == "agent-2"
    explicit = session.prepare(calls.kill("t1", "agent-9"))
    assert explicit.kill.agent_id.value == "agent-9"
    unknown = session.prepare(calls.kill("t-unknown"))
    assert not unknown.kill.HasField("agent_id")


def test_status_updates_track_task_agents_until_terminal(session: SchedulerSession) -> None:
    subscribe(session)

    def update(state: int, agent: str = "agent-3") -> Event:
        event = Event(type=Event.UPDATE)
        event.update.status.task_id.value = "t1"
        event.update.status.agent_id.value = agent
        event.update.status.state = state  # type: ignore[assignment]
        return event

    session.receive(update(messages.TASK_RUNNING), 101.0)
    assert session.agent_of_task("t1") == mesos_pb2.AgentID(value="agent-3")
    session.receive(update(messages.TASK_LOST), 102.0)
    assert session.agent_of_task("t1") is not None  # A lost task may come back.
    session.receive(update(messages.TASK_FINISHED), 103.0)
    assert session.agent_of_task("t1") is None


def test_rescind_decline_and_disconnection_forget_offers(session: SchedulerSession) -> None:
    subscribe(session)
    session.receive(offers_event(("o1", "a"), ("o2", "a"), ("o3", "a")), 101.0)
    rescind = Event(type=Event.RESCIND)
    rescind.rescind.offer_id.value = "o1"
    session.receive(rescind, 102.0)
    session.prepare(calls.decline("o2"))
    assert session.offer_ids() == ["o3"]
    session.stream_lost(103.0, "gone")
    assert session.offer_ids() == []


def test_suppressed_roles_ride_on_the_next_subscribe(session: SchedulerSession) -> None:
    session.note_suppress([])
    assert session.suppressed_roles == {"a", "b"}
    session.note_revive(["a"])
    assert session.suppressed_roles == {"b"}
    call = session.subscribe_call(0.0)
    assert list(call.subscribe.suppressed_roles) == ["b"]
    session.note_revive([])
    assert session.suppressed_roles == set()


def test_roles_of_a_single_role_framework() -> None:
    single = SchedulerSession(messages.framework_info("fw"))
    assert single.roles() == ["*"]
    single.note_suppress([])
    assert single.suppressed_roles == {"*"}


def test_update_framework_is_remembered_with_our_id(session: SchedulerSession) -> None:
    subscribe(session)
    new_info = messages.framework_info("renamed", user="u")
    session.note_update_framework(new_info, ["a"], None)
    assert session.framework_info.name == "renamed"
    assert session.framework_info.id.value == "fw-1"
    assert session.suppressed_roles == {"a"}
    other = messages.framework_info("x", framework_id="someone-else")
    with pytest.raises(ValueError, match="not this framework's id 'fw-1'"):
        session.note_update_framework(other, [], None)
    assert session.framework_info.name == "renamed"


def test_bad_framework_info_is_refused_up_front() -> None:
    with pytest.raises(ValueError, match=r"framework_info\.name is empty"):
        SchedulerSession(mesos_pb2.FrameworkInfo())


def test_validate_catches_a_broken_invariant(session: SchedulerSession) -> None:
    subscribe(session)
    session.attempt = 3
    with pytest.raises(AssertionError, match="failed attempts"):
        session.validate()
    session.attempt = 0
