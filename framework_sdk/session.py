"""SchedulerSession: the subscription's state machine, free of I/O (no grpc, no asyncio).

The client runtime feeds it what happened (a stream opened, an event arrived, the stream broke,
time passed; ``now`` always passed in) and it answers what to do: the SUBSCRIBE call to send,
the typed event to hand to the scheduler, the delay before reconnecting, whether to give up.
It also keeps what must survive a reconnection: the framework id (so the next SUBSCRIBE is a
failover, not a new framework), the suppressed roles, and the agent of each live offer and
task, used to fill ``agent_id`` in launches and kills; and, per stream, whether the master
offers Emporion's batched calls (``batched``: the stream was opened with ``SubscribeBatched``).

Phases::

    IDLE --subscribe_call--> CONNECTING --receive(SUBSCRIBED)--> SUBSCRIBED
                                 |  ^                               |
               stream_lost /     |  | subscribe_call                | stream_lost, or
               retryable refusal v  |                               v deadline passed
                               BACKING_OFF <------------------------+
    any --receive(ERROR) / non-retryable refusal / close--> CLOSED (final)

Events that still arrive once CLOSED (say, after TEARDOWN, before the stream is cancelled) are
dropped: :meth:`SchedulerSession.receive` answers None for them. A SUBSCRIBE refused by a master
that does not lead, naming the leader, is retried at once (``Retry.delay`` 0) up to
``MAX_REDIRECTS`` times in a row; the client sends the retry to the named leader.

**Following the leader.** The session knows the master of the current attempt (``master``).
When the client hears that another master leads (its detector names one, or a master refusing a
call names one) or that none does, :meth:`SchedulerSession.leader_changed` decides: nothing, if
that is the master of the current (or, while backing off, the failed) attempt; otherwise leave
it at once (CONNECTING/SUBSCRIBED: the stream is dropped, with a Disconnected naming the change
if it was subscribed; BACKING_OFF: the backoff is cut short) and try again after a short
jittered delay (:func:`follow_delay`): a leader change restarts the backoff.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterable
from dataclasses import dataclass

# Names come from their modules, not `from framework_sdk import calls`: the import check in
# tests/unit/sdk/test_public_api.py then sees this module's own dependencies (all I/O-free)
# rather than the package __init__, which loads the gRPC runtime.
from framework_sdk.calls import call_name, subscribe, update_framework
from framework_sdk.config import ClientConfig
from framework_sdk.errors import NotSubscribedError
from framework_sdk.events import Disconnected, Event, Subscribed, from_proto
from protos.v1 import mesos_pb2, scheduler_pb2

__all__ = [
    "DEFAULT_HEARTBEAT_SECONDS",
    "RETRYABLE_CODES",
    "MAX_REDIRECTS",
    "GiveUp",
    "Phase",
    "ProtocolError",
    "Retry",
    "SchedulerSession",
    "backoff_delay",
    "follow_delay",
    "needs_acknowledgement",
]

# Mesos's DEFAULT_HEARTBEAT_INTERVAL, used when SUBSCRIBED does not say.
DEFAULT_HEARTBEAT_SECONDS = 15.0

# gRPC status codes (by name) after which a SUBSCRIBE is worth retrying: the master is away,
# overloaded, not (yet) able to serve, or the connection failed. Any other code would fail the
# same way again: INVALID_ARGUMENT (bad framework info), PERMISSION_DENIED, NOT_FOUND, and
# FAILED_PRECONDITION, which the master answers for a framework that was torn down.
RETRYABLE_CODES = frozenset(
    {
        "UNAVAILABLE",
        "DEADLINE_EXCEEDED",
        "RESOURCE_EXHAUSTED",
        "ABORTED",
        "INTERNAL",
        "UNKNOWN",
        "CANCELLED",
    }
)

# Consecutive refusals naming a leader that are retried at once; beyond, the usual backoff, so
# two masters that each name the other (a stale view during an election) cannot make us spin.
MAX_REDIRECTS = 3

_E = scheduler_pb2.Event
_Call = scheduler_pb2.Call
_LAUNCH = mesos_pb2.Offer.Operation.LAUNCH


def backoff_delay(attempt: int, initial: float, cap: float, draw: float) -> float:
    """Seconds to wait before reconnect attempt ``attempt`` (0 for the first retry).

    The base doubles from ``initial`` up to ``cap``; ``draw`` in [0, 1] (a random number)
    places the delay between half the base and all of it, so schedulers that lost the same
    master spread their reconnections out instead of arriving together.
    """
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, not {attempt}")
    if not 0.0 <= draw <= 1.0:
        raise ValueError(f"draw must be in [0, 1], not {draw}")
    base = min(cap, initial * 2.0 ** min(attempt, 64))
    return base * (0.5 + 0.5 * draw)


def follow_delay(initial: float, draw: float) -> float:
    """Seconds to wait before subscribing to a master that just became the leader.

    ``draw`` in [0, 1] (a random number) places it anywhere in ``[0, initial]``: short, like a
    first retry, but spread over the whole interval, because every scheduler of the cluster
    heard of the new leader at about the same instant.
    """
    if not 0.0 <= draw <= 1.0:
        raise ValueError(f"draw must be in [0, 1], not {draw}")
    return initial * draw


def needs_acknowledgement(status: mesos_pb2.TaskStatus) -> bool:
    """Whether a status update must be acknowledged: it carries a uuid (and an agent to ack to).

    Updates the master makes itself (reconciliation answers, lost agents, refused launches) and
    those the SDK makes carry no uuid and are never acknowledged.
    """
    return bool(status.uuid) and bool(status.agent_id.value)


class Phase(enum.Enum):
    """Phase of a SchedulerSession; see the module docstring for the transitions."""

    IDLE = "idle"
    CONNECTING = "connecting"
    SUBSCRIBED = "subscribed"
    BACKING_OFF = "backing_off"
    CLOSED = "closed"


class ProtocolError(Exception):
    """ProtocolError: the master broke the protocol (e.g. a stream not starting with SUBSCRIBED)."""


@dataclass(frozen=True, slots=True)
class Retry:
    """Retry: reconnect after ``delay`` seconds."""

    delay: float
    reason: str


@dataclass(frozen=True, slots=True)
class GiveUp:
    """GiveUp: the subscription cannot succeed; ``message`` says why (the session is CLOSED)."""

    message: str


class SchedulerSession:
    """SchedulerSession is the state of one scheduler's subscription across reconnections.

    ``framework_info`` is copied; its ``id`` is filled in from the first SUBSCRIBED so every
    later SUBSCRIBE fails the framework over instead of registering a new one.
    """

    def __init__(
        self,
        framework_info: mesos_pb2.FrameworkInfo,
        *,
        config: ClientConfig | None = None,
        suppressed_roles: Iterable[str] = (),
        offer_constraints: scheduler_pb2.OfferConstraints | None = None,
        rng: random.Random | None = None,
    ) -> None:
        # Builds (and so validates) the SUBSCRIBE call once, so bad input fails here.
        subscribe(framework_info, suppressed_roles, offer_constraints)
        self.framework_info = mesos_pb2.FrameworkInfo()
        self.framework_info.CopyFrom(framework_info)
        self.config = config or ClientConfig()
        self.suppressed_roles: set[str] = set(suppressed_roles)
        self.offer_constraints = offer_constraints
        self.phase = Phase.IDLE
        self.stream_id: str | None = None
        self.batched = False  # The stream came from SubscribeBatched: Batch is served too.
        self.heartbeat_interval: float | None = None
        self.attempt = 0  # Consecutive failed attempts since the last SUBSCRIBED.
        self.subscriptions = 0  # SUBSCRIBED events received so far.
        self.redirects = 0  # Consecutive refusals naming a leader, retried at once.
        self.master: str | None = None  # The master of the current (or last) attempt.
        self.close_reason: str | None = None
        self._deadline: float | None = None
        self._rng = rng or random.Random()
        self._offer_agents: dict[str, mesos_pb2.AgentID] = {}
        self._task_agents: dict[str, mesos_pb2.AgentID] = {}

    # -- queries --

    @property
    def framework_id(self) -> mesos_pb2.FrameworkID | None:
        """The framework id, once the master assigned one (or given up front for failover)."""
        return self.framework_info.id if self.framework_info.HasField("id") else None

    @property
    def subscribed(self) -> bool:
        """Whether calls can be sent now."""
        return self.phase is Phase.SUBSCRIBED

    @property
    def closed(self) -> bool:
        """Whether the session ended for good."""
        return self.phase is Phase.CLOSED

    def deadline(self) -> float | None:
        """When the open stream counts as dead if nothing arrives before (None: no stream)."""
        return self._deadline

    def expired(self, now: float) -> bool:
        """Whether the open stream's deadline has passed."""
        return self._deadline is not None and now >= self._deadline

    def roles(self) -> list[str]:
        """The framework's roles (``roles`` for MULTI_ROLE frameworks, else ``role``)."""
        return list(self.framework_info.roles) or [self.framework_info.role]

    def agent_of_task(self, task_id: str) -> mesos_pb2.AgentID | None:
        """The agent a live task was launched on or last reported from, if known."""
        return self._task_agents.get(task_id)

    def offer_ids(self) -> list[str]:
        """Ids of the offers received since the last (re)subscription, not yet used or rescinded."""
        return list(self._offer_agents)

    # -- connection lifecycle --

    def subscribe_call(self, now: float, master: str | None = None) -> scheduler_pb2.Call:
        """The SUBSCRIBE to send now (to ``master``, the address it goes to); moves to
        CONNECTING with the subscribe deadline."""
        if self.phase not in (Phase.IDLE, Phase.BACKING_OFF):
            raise RuntimeError(f"cannot subscribe in phase {self.phase.value}")
        self.phase = Phase.CONNECTING
        self.master = master
        self._deadline = now + self.config.subscribe_timeout_seconds
        return subscribe(self.framework_info, sorted(self.suppressed_roles), self.offer_constraints)

    def stream_opened(self, stream_id: str | None, *, batched: bool = False) -> None:
        """The master answered SUBSCRIBE with this stream id (from the initial metadata);
        ``batched`` if it was ``SubscribeBatched``, so the master also serves ``Batch``."""
        if self.phase is not Phase.CONNECTING:
            raise RuntimeError(f"stream opened in phase {self.phase.value}")
        self.stream_id = stream_id or None
        self.batched = batched

    def receive(self, event: scheduler_pb2.Event, now: float) -> Event | None:
        """Take one event from the stream; return its typed form for the scheduler, or None
        once CLOSED: the stream may deliver a few more events before it is cancelled (after
        TEARDOWN, say), and the scheduler is done with them.

        Raises ProtocolError when the stream does not start with SUBSCRIBED (or ERROR).
        """
        if self.phase is Phase.CLOSED:
            return None
        if self.phase is Phase.CONNECTING:
            if event.type == _E.ERROR:
                self.close(event.error.message or "the master refused the subscription")
                return from_proto(event)
            if event.type != _E.SUBSCRIBED:
                raise ProtocolError(f"stream began with {_E.Type.Name(event.type)}, not SUBSCRIBED")
            return self._subscribed(event, now)
        if self.phase is not Phase.SUBSCRIBED:
            raise RuntimeError(f"event received in phase {self.phase.value}")
        assert self.heartbeat_interval is not None
        self._deadline = now + self.heartbeat_interval * self.config.heartbeat_misses
        kind = event.type
        if kind == _E.OFFERS:
            for offer in event.offers.offers:
                self._offer_agents[offer.id.value] = offer.agent_id
        elif kind == _E.RESCIND:
            self._offer_agents.pop(event.rescind.offer_id.value, None)
        elif kind == _E.UPDATE:
            self._track_status(event.update.status)
        elif kind == _E.ERROR:
            self.close(event.error.message or "the master ended the subscription")
        elif kind == _E.SUBSCRIBED:
            raise ProtocolError("a second SUBSCRIBED on the same stream")
        return from_proto(event)

    def _subscribed(self, event: scheduler_pb2.Event, now: float) -> Subscribed:
        sub = event.subscribed
        if not sub.framework_id.value:
            raise ProtocolError("SUBSCRIBED carries no framework_id")
        interval = sub.heartbeat_interval_seconds
        self.heartbeat_interval = interval if interval > 0 else DEFAULT_HEARTBEAT_SECONDS
        self.framework_info.id.CopyFrom(sub.framework_id)
        self.phase = Phase.SUBSCRIBED
        self.attempt = 0
        self.redirects = 0
        self._deadline = now + self.heartbeat_interval * self.config.heartbeat_misses
        resubscribed = self.subscriptions > 0
        self.subscriptions += 1
        typed = from_proto(event, resubscribed=resubscribed)
        assert isinstance(typed, Subscribed)
        return typed

    def stream_lost(self, now: float, reason: str) -> tuple[Disconnected | None, Retry]:
        """The stream broke (or timed out); the Disconnected event to report, if any, and when
        to retry. Offers die with the subscription, so they are forgotten."""
        if self.phase not in (Phase.CONNECTING, Phase.SUBSCRIBED):
            raise RuntimeError(f"stream lost in phase {self.phase.value}")
        was_subscribed = self.phase is Phase.SUBSCRIBED
        self._drop_stream()
        self.phase = Phase.BACKING_OFF
        delay = backoff_delay(
            self.attempt,
            self.config.backoff_initial_seconds,
            self.config.backoff_max_seconds,
            self._rng.random(),
        )
        self.attempt += 1
        notice = Disconnected(reason=reason) if was_subscribed else None
        return notice, Retry(delay=delay, reason=reason)

    def leader_changed(
        self, now: float, leader: str | None, *, named_by: str
    ) -> tuple[Disconnected | None, Retry] | None:
        """``named_by`` (who says so: "the master detector", a master refusing a call) names
        ``leader`` as the leading master now, or None: no master is known to lead.

        Answers None when that changes nothing: the session is idle or closed, or ``leader`` is
        the master of the current attempt (while backing off: of the failed one). Otherwise the
        session leaves that master at once. A stream is dropped (CONNECTING or SUBSCRIBED; the
        Disconnected to report if it was subscribed, its reason naming the change), a backoff
        is cut short, and the failed attempts and redirects are forgotten: the next attempt
        comes after :func:`follow_delay`, not after the grown backoff.
        """
        if self.phase in (Phase.IDLE, Phase.CLOSED) or leader == self.master:
            return None
        was_subscribed = self.phase is Phase.SUBSCRIBED
        left = self.master or "the master"
        if leader is None:
            reason = f"no master is known to lead, says {named_by} (left {left})"
        else:
            reason = f"the leading master moved from {left} to {leader}, says {named_by}"
        self._drop_stream()
        self.phase = Phase.BACKING_OFF
        self.attempt = 0
        self.redirects = 0
        delay = follow_delay(self.config.backoff_initial_seconds, self._rng.random())
        notice = Disconnected(reason=reason) if was_subscribed else None
        return notice, Retry(delay=delay, reason=reason)

    def batch_unavailable(self) -> None:
        """The master answered ``Batch`` with UNIMPLEMENTED: send this stream's calls one by
        one."""
        self.batched = False

    def subscribe_failed(
        self, code: str, message: str, now: float, *, leader: str | None = None
    ) -> Retry | GiveUp:
        """SUBSCRIBE was answered with gRPC status ``code`` (a name): retry later, or give up.

        ``leader``: the refusing master named the leading master (UNAVAILABLE from a master
        that does not lead); the retry, meant for that leader, comes at once (``delay`` 0)
        unless ``MAX_REDIRECTS`` such retries in a row did not get a subscription.
        """
        if self.phase is not Phase.CONNECTING:
            raise RuntimeError(f"subscribe failed in phase {self.phase.value}")
        reason = f"SUBSCRIBE failed ({code}): {message}"
        if code in RETRYABLE_CODES:
            _, retry = self.stream_lost(now, reason)
            if leader and code == "UNAVAILABLE" and self.redirects < MAX_REDIRECTS:
                self.redirects += 1
                return Retry(delay=0.0, reason=f"{reason}; the leader is at {leader}")
            self.redirects = 0
            return retry
        self.close(reason)
        return GiveUp(message=reason)

    def close(self, reason: str) -> None:
        """End the session for good (idempotent; the first reason stays)."""
        if self.phase is Phase.CLOSED:
            return
        self._drop_stream()
        self.phase = Phase.CLOSED
        self.close_reason = reason

    def _drop_stream(self) -> None:
        self.stream_id = None
        self.batched = False
        self._deadline = None
        self._offer_agents.clear()

    # -- outgoing calls --

    def prepare(self, call: scheduler_pb2.Call) -> scheduler_pb2.Call:
        """Complete a call built by :mod:`framework_sdk.calls` for sending now.

        Sets ``framework_id``; fills a launched task's missing ``agent_id`` from its offer and a
        KILL's from the task's last known agent. Raises NotSubscribedError (changing nothing)
        unless SUBSCRIBED.
        """
        if self.phase is not Phase.SUBSCRIBED:
            raise NotSubscribedError(
                f"{call_name(call)} not sent: the scheduler is {self.phase.value}, not subscribed"
            )
        out = scheduler_pb2.Call()
        out.CopyFrom(call)
        framework_id = self.framework_id
        assert framework_id is not None
        out.framework_id.CopyFrom(framework_id)
        if out.type == _Call.ACCEPT:
            self._prepare_accept(out.accept)
        elif out.type == _Call.DECLINE:
            for offer_id in out.decline.offer_ids:
                self._offer_agents.pop(offer_id.value, None)
        elif out.type == _Call.KILL and not out.kill.agent_id.value:
            agent = self._task_agents.get(out.kill.task_id.value)
            if agent is not None:
                out.kill.agent_id.CopyFrom(agent)
        return out

    def _prepare_accept(self, accept: scheduler_pb2.Call.Accept) -> None:
        agent = None
        for offer_id in accept.offer_ids:
            agent = self._offer_agents.pop(offer_id.value, None) or agent
        for op in accept.operations:
            if op.type != _LAUNCH:
                continue
            for task in op.launch.task_infos:
                if not task.agent_id.value and agent is not None:
                    task.agent_id.CopyFrom(agent)
                if task.agent_id.value:
                    self._task_agents[task.task_id.value] = task.agent_id

    def _track_status(self, status: mesos_pb2.TaskStatus) -> None:
        task_id = status.task_id.value
        if status.state in _FINAL_STATES:
            self._task_agents.pop(task_id, None)
        elif status.agent_id.value:
            self._task_agents[task_id] = status.agent_id

    # -- remembered settings (they ride on the next SUBSCRIBE) --

    def note_suppress(self, roles: Iterable[str]) -> None:
        """SUPPRESS was asked for these roles (none: all the framework's roles)."""
        self.suppressed_roles.update(list(roles) or self.roles())

    def note_revive(self, roles: Iterable[str]) -> None:
        """REVIVE was asked for these roles (none: all)."""
        role_list = list(roles)
        if role_list:
            self.suppressed_roles.difference_update(role_list)
        else:
            self.suppressed_roles.clear()

    def note_update_framework(
        self,
        framework_info: mesos_pb2.FrameworkInfo,
        suppressed_roles: Iterable[str],
        offer_constraints: scheduler_pb2.OfferConstraints | None,
    ) -> None:
        """UPDATE_FRAMEWORK was asked: keep the new info (with our framework id) and settings.

        Raises ValueError, changing nothing, when the info names another framework id.
        """
        known = self.framework_id
        if framework_info.HasField("id") and known is not None and framework_info.id != known:
            raise ValueError(
                f"framework_info.id {framework_info.id.value!r} is not this framework's id"
                f" {known.value!r}"
            )
        update_framework(framework_info, suppressed_roles, offer_constraints)
        info = mesos_pb2.FrameworkInfo()
        info.CopyFrom(framework_info)
        if known is not None:
            info.id.CopyFrom(known)
        self.framework_info = info
        self.suppressed_roles = set(suppressed_roles)
        self.offer_constraints = offer_constraints

    # -- invariants --

    def validate(self) -> None:
        """Check the session's invariants; raises AssertionError naming the broken one."""
        phase = self.phase
        assert self.attempt >= 0, "attempt is negative"
        assert 0 <= self.redirects <= MAX_REDIRECTS, "redirects out of range"
        if phase is Phase.SUBSCRIBED:
            assert self.framework_id is not None, "subscribed without a framework id"
            assert self.heartbeat_interval is not None, "subscribed without heartbeat interval"
            assert self.heartbeat_interval > 0, "heartbeat interval is not positive"
            assert self._deadline is not None, "subscribed without a deadline"
            assert self.attempt == 0, "subscribed with failed attempts counted"
            assert self.redirects == 0, "subscribed with redirects counted"
        if phase is Phase.CONNECTING:
            assert self._deadline is not None, "connecting without a deadline"
        if phase in (Phase.IDLE, Phase.BACKING_OFF, Phase.CLOSED):
            assert self.stream_id is None, f"stream id kept in phase {phase.value}"
            assert not self.batched, f"batched stream kept in phase {phase.value}"
            assert self._deadline is None, f"deadline kept in phase {phase.value}"
            assert not self._offer_agents, f"offers kept in phase {phase.value}"
        assert (phase is Phase.CLOSED) == (self.close_reason is not None), "close reason mismatch"
        if self.subscriptions:
            assert self.framework_id is not None, "subscribed before but no framework id"
        for task_id, agent in self._task_agents.items():
            assert agent.value, f"task {task_id!r} tracked without an agent"


# States after which a task's agent is no longer worth remembering. TASK_LOST is left out: a
# lost task can come back with its agent, and a KILL for it should still name that agent.
_FINAL_STATES = frozenset(
    {
        mesos_pb2.TASK_FINISHED,
        mesos_pb2.TASK_FAILED,
        mesos_pb2.TASK_KILLED,
        mesos_pb2.TASK_ERROR,
        mesos_pb2.TASK_DROPPED,
        mesos_pb2.TASK_GONE,
        mesos_pb2.TASK_GONE_BY_OPERATOR,
    }
)
