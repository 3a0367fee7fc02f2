"""Typed scheduler events: one frozen dataclass per ``mesos.v1.scheduler.Event`` type.

:func:`from_proto` turns a wire Event into one of them, so asyncio code can ``match`` on
events::

    match event:
        case events.Offers(offers=offers): ...
        case events.Update(status=status): ...

Payload messages (Offer, TaskStatus...) are passed through as protobuf. Every event keeps the
wire message it came from in ``raw``. :class:`Disconnected` is the one event the SDK makes
itself: the subscription broke and the client is reconnecting.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protos.v1 import mesos_pb2, scheduler_pb2

__all__ = [
    "Disconnected",
    "Error",
    "Event",
    "Failure",
    "Heartbeat",
    "InverseOffers",
    "Message",
    "Offers",
    "Rescind",
    "RescindInverseOffer",
    "Subscribed",
    "Unknown",
    "Update",
    "UpdateOperationStatus",
    "from_proto",
]

_E = scheduler_pb2.Event


@dataclass(frozen=True, slots=True)
class Event:
    """Event is the base of every typed event; ``raw`` is the wire message (None if SDK-made)."""

    raw: scheduler_pb2.Event | None = field(default=None, repr=False, compare=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class Subscribed(Event):
    """Subscribed: the master took the subscription. ``resubscribed`` is set on reconnections.

    ``master_info`` is None when the master did not send it.
    """

    framework_id: mesos_pb2.FrameworkID
    heartbeat_interval_seconds: float
    master_info: mesos_pb2.MasterInfo | None
    resubscribed: bool = False


@dataclass(frozen=True, slots=True)
class Offers(Event):
    """Offers: new resource offers, one per (agent, role)."""

    offers: tuple[mesos_pb2.Offer, ...]


@dataclass(frozen=True, slots=True)
class InverseOffers(Event):
    """InverseOffers: requests to give back resources of agents going into maintenance."""

    inverse_offers: tuple[mesos_pb2.InverseOffer, ...]


@dataclass(frozen=True, slots=True)
class Rescind(Event):
    """Rescind: an offer is no longer valid; accepting it would fail."""

    offer_id: mesos_pb2.OfferID


@dataclass(frozen=True, slots=True)
class RescindInverseOffer(Event):
    """RescindInverseOffer: an inverse offer is no longer valid."""

    inverse_offer_id: mesos_pb2.OfferID


@dataclass(frozen=True, slots=True)
class Update(Event):
    """Update: a task status update; acknowledge it when ``status.uuid`` is set."""

    status: mesos_pb2.TaskStatus


@dataclass(frozen=True, slots=True)
class UpdateOperationStatus(Event):
    """UpdateOperationStatus: an operation status update; acknowledge it when it has a uuid."""

    status: mesos_pb2.OperationStatus


@dataclass(frozen=True, slots=True)
class Message(Event):
    """Message: opaque data an executor sent (best effort)."""

    agent_id: mesos_pb2.AgentID
    executor_id: mesos_pb2.ExecutorID
    data: bytes


@dataclass(frozen=True, slots=True)
class Failure(Event):
    """Failure: an agent was lost (``executor_id`` None) or an executor exited (``status`` set)."""

    agent_id: mesos_pb2.AgentID | None
    executor_id: mesos_pb2.ExecutorID | None
    status: int | None

    @property
    def agent_lost(self) -> bool:
        """Whether this reports a lost agent rather than an exited executor."""
        return self.executor_id is None


@dataclass(frozen=True, slots=True)
class Error(Event):
    """Error: the master ended the subscription for good (the scheduler should stop)."""

    message: str


@dataclass(frozen=True, slots=True)
class Heartbeat(Event):
    """Heartbeat: the master is alive (sent every ``heartbeat_interval_seconds``)."""


@dataclass(frozen=True, slots=True)
class Disconnected(Event):
    """Disconnected (SDK-made): the subscription broke; the client is reconnecting.

    Offers received before it are void. A :class:`Subscribed` with ``resubscribed=True``
    follows once the client is back.
    """

    reason: str


@dataclass(frozen=True, slots=True)
class Unknown(Event):
    """Unknown: an event type this SDK does not know (from a newer master); see ``raw``."""

    type: int


def from_proto(event: scheduler_pb2.Event, *, resubscribed: bool = False) -> Event:
    """The typed form of a wire Event; ``resubscribed`` only matters for SUBSCRIBED."""
    kind = event.type
    if kind == _E.SUBSCRIBED:
        sub = event.subscribed
        return Subscribed(
            framework_id=sub.framework_id,
            heartbeat_interval_seconds=sub.heartbeat_interval_seconds,
            master_info=sub.master_info if sub.HasField("master_info") else None,
            resubscribed=resubscribed,
            raw=event,
        )
    if kind == _E.OFFERS:
        return Offers(offers=tuple(event.offers.offers), raw=event)
    if kind == _E.INVERSE_OFFERS:
        return InverseOffers(inverse_offers=tuple(event.inverse_offers.inverse_offers), raw=event)
    if kind == _E.RESCIND:
        return Rescind(offer_id=event.rescind.offer_id, raw=event)
    if kind == _E.RESCIND_INVERSE_OFFER:
        return RescindInverseOffer(
            inverse_offer_id=event.rescind_inverse_offer.inverse_offer_id, raw=event
        )
    if kind == _E.UPDATE:
        return Update(status=event.update.status, raw=event)
    if kind == _E.UPDATE_OPERATION_STATUS:
        return UpdateOperationStatus(status=event.update_operation_status.status, raw=event)
    if kind == _E.MESSAGE:
        msg = event.message
        return Message(agent_id=msg.agent_id, executor_id=msg.executor_id, data=msg.data, raw=event)
    if kind == _E.FAILURE:
        failure = event.failure
        return Failure(
            agent_id=failure.agent_id if failure.HasField("agent_id") else None,
            executor_id=failure.executor_id if failure.HasField("executor_id") else None,
            status=failure.status if failure.HasField("status") else None,
            raw=event,
        )
    if kind == _E.ERROR:
        return Error(message=event.error.message, raw=event)
    if kind == _E.HEARTBEAT:
        return Heartbeat(raw=event)
    return Unknown(type=kind, raw=event)
