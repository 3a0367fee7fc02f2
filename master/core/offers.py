"""Offers: made from allocation results, and removed exactly once.

An offer leaves ``state.offers`` in exactly one of three ways, and its resources go back to the
allocator exactly once on the way out:

* :func:`consume_offer` (ACCEPT): the resources stay allocated; the accept code recovers the
  part no operation used;
* :func:`remove_offer` (decline, rescind, timeout, framework or agent going): the resources are
  recovered here, with the decline's filter if any (:func:`remove_offers` for many at once);
* :func:`drop_offer` (the agent or framework is being removed from the allocator, which takes the
  resources back itself).

A cycle's offers to one framework go out in one OFFERS event, or in as many as it takes for
each to stay under :data:`~protos.limits.MAX_MESSAGE_BYTES` (a bigger one would end the
framework's stream at its receiver).
"""

from __future__ import annotations

from collections.abc import Iterable

from master.allocator import Recovered
from master.core.events import rescind_event
from master.core.model import Agent, Offer
from master.core.state import MasterState, log
from protos.limits import MAX_MESSAGE_BYTES, framed_size
from protos.resources import Resources
from protos.v1 import mesos_pb2, scheduler_pb2

__all__ = [
    "consume_offer",
    "drop_offer",
    "make_offers",
    "offer_timed_out",
    "remove_offer",
    "remove_offers",
    "rescind_offers",
]

_OFFERS = scheduler_pb2.Event.OFFERS
_EVENT_BYTES = MAX_MESSAGE_BYTES - 64
"""Room for offers in one OFFERS event (the rest: its type and the ``offers`` field's framing,
and the framing of the event in an ``Events`` batch)."""


def make_offers(
    state: MasterState, allocation: dict[str, dict[str, dict[str, Resources]]], now: float
) -> None:
    """Turn one allocation cycle's result into offers, one OFFERS event per framework (more if
    one would be over the message-size limit)."""
    timeout = state.config.offer_timeout
    for framework_id, by_role in allocation.items():
        fw = state.frameworks.get(framework_id)
        if fw is None or not fw.connected:  # Cannot happen: the allocator knows who is active.
            for role, by_agent in by_role.items():
                for agent_id, resources in by_agent.items():
                    state.allocator.recover_resources(
                        framework_id, agent_id, resources, 0, now, role=role
                    )
            continue
        event = scheduler_pb2.Event(type=_OFFERS)
        protos = event.offers.offers
        size = 0
        for role, by_agent in by_role.items():
            for agent_id, resources in by_agent.items():
                agent = state.agents[agent_id]
                offer = Offer(
                    state.ids.offer_id(),
                    framework_id,
                    agent_id,
                    role,
                    resources,
                    now,
                    None if timeout is None else now + timeout,
                )
                state.offers[offer.offer_id] = offer
                fw.offers.add(offer.offer_id)
                agent.offers.add(offer.offer_id)
                if offer.expires_at is not None:
                    state.timers.set(("offer", offer.offer_id), offer.expires_at)
                proto = protos.add()
                _fill(proto, offer, agent)
                framed = framed_size(proto)
                if size + framed > _EVENT_BYTES and len(protos) > 1:
                    del protos[-1]  # Rare: it goes first in a new event instead.
                    state.send_event(fw, event)
                    event = scheduler_pb2.Event(type=_OFFERS)
                    protos, size = event.offers.offers, 0
                    _fill(protos.add(), offer, agent)
                size += framed
        if protos:
            state.send_event(fw, event)


def _fill(proto: mesos_pb2.Offer, offer: Offer, agent: Agent) -> None:
    proto.id.value = offer.offer_id
    proto.framework_id.value = offer.framework_id
    proto.agent_id.value = offer.agent_id
    proto.hostname = agent.info.hostname
    proto.resources.extend(offer.resources.to_protos(allocation_role=offer.role))
    proto.attributes.extend(agent.info.attributes)
    proto.allocation_info.role = offer.role
    if agent.info.HasField("domain"):
        proto.domain.CopyFrom(agent.info.domain)
    for framework_id, executor_id in agent.executors:
        if framework_id == offer.framework_id:
            proto.executor_ids.add(value=executor_id)


def _unlink(state: MasterState, offer: Offer) -> None:
    del state.offers[offer.offer_id]
    fw = state.frameworks.get(offer.framework_id)
    if fw is not None:
        fw.offers.discard(offer.offer_id)
    agent = state.agents.get(offer.agent_id)
    if agent is not None:
        agent.offers.discard(offer.offer_id)
    if offer.expires_at is not None:
        state.timers.cancel(("offer", offer.offer_id))


def consume_offer(state: MasterState, offer: Offer) -> None:
    """An ACCEPT used the offer: forget it; its resources stay allocated to the framework."""
    _unlink(state, offer)


def drop_offer(state: MasterState, offer: Offer, *, rescind: bool) -> None:
    """Forget the offer without recovering it (its agent or framework leaves the allocator)."""
    _unlink(state, offer)
    fw = state.frameworks.get(offer.framework_id)
    if rescind and fw is not None:
        state.send_event(fw, rescind_event(offer.offer_id))


def remove_offer(
    state: MasterState,
    offer: Offer,
    now: float,
    *,
    refuse_seconds: float | None = 0,
    rescind: bool,
    offer_soon: bool = True,
) -> None:
    """Forget the offer and give its resources back (``refuse_seconds`` 0: no filter).

    ``rescind`` sends RESCIND to the framework (when the framework did not give it up itself).
    ``offer_soon`` asks for the quick allocation cycle; a DECLINE does not: what a framework
    declines goes back at the periodic cycle (``--allocation-interval``), as Mesos's batched
    allocation does, so a framework declining with ``refuse_seconds: 0`` is not re-offered the
    same resources every few milliseconds.
    """
    drop_offer(state, offer, rescind=rescind)
    state.allocator.recover_resources(
        offer.framework_id, offer.agent_id, offer.resources, refuse_seconds, now, role=offer.role
    )
    if offer_soon:
        state.allocation_wanted = True


def remove_offers(
    state: MasterState,
    offers: Iterable[Offer],
    now: float,
    *,
    refuse_seconds: float | None = 0,
    rescind: bool,
    offer_soon: bool = True,
) -> None:
    """:func:`remove_offer` for many offers: the resources of each framework's offers go back
    to the allocator in one batch (one sorter update per role rather than per offer: a DECLINE
    of a dozen offers cost a dozen of each; see :mod:`master.allocator.recovered`)."""
    batches: dict[str, list[Recovered]] = {}
    for offer in offers:
        drop_offer(state, offer, rescind=rescind)
        batch = batches.get(offer.framework_id)
        if batch is None:
            batch = batches[offer.framework_id] = []
        batch.append(Recovered(offer.agent_id, offer.resources, offer.role))
    for framework_id, batch in batches.items():
        state.allocator.recover_resources_many(framework_id, batch, refuse_seconds, now)
    if batches and offer_soon:
        state.allocation_wanted = True


def rescind_offers(state: MasterState, offer_ids: set[str], now: float, *, notify: bool) -> None:
    """Remove these offers, recovering their resources; RESCIND each if ``notify``."""
    known = (state.offers.get(offer_id) for offer_id in sorted(offer_ids))
    remove_offers(state, [o for o in known if o is not None], now, rescind=notify)


def offer_timed_out(state: MasterState, offer_id: str, now: float) -> None:
    """``--offer-timeout`` passed: rescind the offer."""
    offer = state.offers.get(offer_id)
    if offer is not None:
        log.debug("offer %s of framework %s timed out", offer_id, offer.framework_id)
        remove_offer(state, offer, now, rescind=True)
