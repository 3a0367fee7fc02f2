"""Launching through offers with the raw framework: every ACCEPT on an offer not used yet."""

from __future__ import annotations

from protos.resources import Resources
from protos.v1 import mesos_pb2
from tests.integration.agent.raw_framework import Call, Event, RawFramework

PER_ACCEPT = 1000  # The master's default cap of tasks per ACCEPT.
TINY = "cpus:0.0001;mem:0.001"


def new_offer(framework: RawFramework, used: set[str]) -> mesos_pb2.Offer:
    """Wait for an offer whose id is not in ``used``; add it there and return it."""

    def fresh() -> list[mesos_pb2.Offer]:
        return [
            o for e in framework.of(Event.OFFERS) for o in e.offers.offers if o.id.value not in used
        ]

    framework.wait_for(fresh, "a new offer")
    offer = fresh()[0]
    used.add(offer.id.value)
    return offer


def launch_many(
    framework: RawFramework,
    count: int,
    command: str,
    prefix: str = "t",
    used: set[str] | None = None,
) -> None:
    """Launch ``count`` tiny tasks ``<prefix>0``... at most PER_ACCEPT per ACCEPT, each ACCEPT
    on a new offer (``used``: the ids of offers already used, updated)."""
    used = set() if used is None else used
    launched = 0
    while launched < count:
        offer = new_offer(framework, used)
        role = offer.allocation_info.role if offer.HasField("allocation_info") else None
        resources = Resources.parse(TINY).to_protos(allocation_role=role)
        operation = mesos_pb2.Offer.Operation(type=mesos_pb2.Offer.Operation.LAUNCH)
        for index in range(launched, min(count, launched + PER_ACCEPT)):
            task = operation.launch.task_infos.add(name=f"{prefix}{index}")
            task.task_id.value = f"{prefix}{index}"
            task.agent_id.CopyFrom(offer.agent_id)
            task.resources.extend(resources)
            task.command.value = command
        accept = Call(type=Call.ACCEPT)
        accept.accept.offer_ids.append(offer.id)
        accept.accept.operations.append(operation)
        framework.call("Accept", accept)
        launched += len(operation.launch.task_infos)
