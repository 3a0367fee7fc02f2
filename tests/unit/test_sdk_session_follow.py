"""SchedulerSession.leader_changed: when a scheduler leaves its master for a new leader."""

from __future__ import annotations

import random

import pytest

from framework_sdk import ClientConfig, events, messages
from framework_sdk.session import Phase, Retry, SchedulerSession, follow_delay
from protos.v1 import scheduler_pb2

# A backoff that grows far beyond the delay before following a new leader.
CONFIG = ClientConfig(backoff_initial_seconds=0.5, backoff_max_seconds=600.0)
A, B = "10.0.0.1:5050", "10.0.0.2:5050"
DETECTOR = "the master detector"


def new_session() -> SchedulerSession:
    info = messages.framework_info("follow", user="tester")
    return SchedulerSession(info, config=CONFIG, rng=random.Random(7))


def subscribed_event() -> scheduler_pb2.Event:
    event = scheduler_pb2.Event(type=scheduler_pb2.Event.SUBSCRIBED)
    event.subscribed.framework_id.value = "fw-1"
    event.subscribed.heartbeat_interval_seconds = 10.0
    return event


def subscribed_to(master: str) -> SchedulerSession:
    session = new_session()
    session.subscribe_call(0.0, master)
    session.stream_opened("stream-1", batched=True)
    session.receive(subscribed_event(), 0.0)
    return session


def backing_off_from(master: str, failures: int) -> SchedulerSession:
    """A session whose last ``failures`` SUBSCRIBEs to ``master`` failed (its backoff grown)."""
    session = new_session()
    for _ in range(failures):
        session.subscribe_call(0.0, master)
        session.subscribe_failed("UNAVAILABLE", "connection refused", 0.0)
    assert session.phase is Phase.BACKING_OFF
    return session


def test_follow_delay_spans_zero_to_the_initial_backoff() -> None:
    assert follow_delay(0.5, 0.0) == 0.0
    assert follow_delay(0.5, 1.0) == 0.5
    assert follow_delay(0.5, 0.25) == 0.125
    with pytest.raises(ValueError, match="draw must be in"):
        follow_delay(0.5, 1.5)


def test_the_master_of_the_attempt_is_kept() -> None:
    session = subscribed_to(A)
    assert session.master == A
    session.stream_lost(1.0, "the stream broke")
    assert session.master == A  # The failed attempt's master, while backing off.
    session.validate()


def test_a_new_leader_ends_the_subscription_at_once() -> None:
    session = subscribed_to(A)
    move = session.leader_changed(1.0, B, named_by=DETECTOR)
    assert move is not None
    notice, retry = move
    assert isinstance(notice, events.Disconnected)
    assert notice.reason == f"the leading master moved from {A} to {B}, says the master detector"
    assert retry.reason == notice.reason
    assert 0.0 <= retry.delay <= CONFIG.backoff_initial_seconds
    assert session.phase is Phase.BACKING_OFF
    assert session.stream_id is None
    assert not session.batched
    assert session.deadline() is None
    assert session.framework_id is not None  # The next SUBSCRIBE is a failover.
    session.validate()


def test_the_leader_being_the_master_changes_nothing() -> None:
    session = subscribed_to(A)
    assert session.leader_changed(1.0, A, named_by=DETECTOR) is None
    assert session.subscribed
    assert session.stream_id == "stream-1"
    session.validate()


def test_no_leader_known_ends_the_subscription_too() -> None:
    session = subscribed_to(A)
    move = session.leader_changed(1.0, None, named_by=DETECTOR)
    assert move is not None
    notice, _ = move
    assert notice is not None
    assert notice.reason == f"no master is known to lead, says the master detector (left {A})"
    session.validate()


def test_a_new_leader_while_connecting_reports_no_disconnection() -> None:
    session = new_session()
    session.subscribe_call(0.0, A)
    move = session.leader_changed(1.0, B, named_by="the master refusing RECONCILE")
    assert move is not None
    notice, retry = move
    assert notice is None
    assert "says the master refusing RECONCILE" in retry.reason
    assert session.phase is Phase.BACKING_OFF
    session.validate()


def test_a_new_leader_cuts_a_grown_backoff_short_and_restarts_it() -> None:
    session = backing_off_from(A, failures=12)
    assert session.attempt == 12
    grown = backoff_after_one_more_failure(backing_off_from(A, failures=12))
    assert grown >= 300.0
    move = session.leader_changed(5.0, B, named_by=DETECTOR)
    assert move is not None
    notice, retry = move
    assert notice is None  # Nothing was subscribed to report as lost.
    assert retry.delay <= CONFIG.backoff_initial_seconds
    assert session.attempt == 0
    assert session.redirects == 0
    session.validate()
    # The new leader failing too starts the backoff over.
    assert backoff_after_one_more_failure(session) <= CONFIG.backoff_initial_seconds


def backoff_after_one_more_failure(session: SchedulerSession) -> float:
    session.subscribe_call(10.0, B)
    outcome = session.subscribe_failed("UNAVAILABLE", "connection refused", 10.0)
    assert isinstance(outcome, Retry)
    return outcome.delay


def test_the_failed_master_named_again_keeps_the_backoff() -> None:
    session = backing_off_from(A, failures=5)
    assert session.leader_changed(5.0, A, named_by=DETECTOR) is None
    assert session.attempt == 5
    assert session.phase is Phase.BACKING_OFF
    session.validate()


def test_no_leader_known_while_backing_off_cuts_it_short() -> None:
    # The client then waits for a leader in its detector, not in a sleep.
    session = backing_off_from(A, failures=5)
    move = session.leader_changed(5.0, None, named_by=DETECTOR)
    assert move is not None
    assert move[1].delay <= CONFIG.backoff_initial_seconds
    assert session.attempt == 0


def test_a_leader_change_forgets_redirects() -> None:
    session = new_session()
    session.subscribe_call(0.0, A)
    session.subscribe_failed("UNAVAILABLE", "not leading", 0.0, leader=B)
    assert session.redirects == 1
    assert session.leader_changed(0.0, "10.0.0.3:5050", named_by=DETECTOR) is not None
    assert session.redirects == 0
    session.validate()


def test_idle_and_closed_sessions_ignore_leader_changes() -> None:
    session = new_session()
    assert session.leader_changed(0.0, B, named_by=DETECTOR) is None
    assert session.phase is Phase.IDLE
    session = subscribed_to(A)
    session.close("closed by the scheduler")
    assert session.leader_changed(0.0, B, named_by=DETECTOR) is None
    assert session.closed
    session.validate()
