"""Offers: one per (agent, role), rescinds, the offer timeout, and exactly-once accounting."""

from __future__ import annotations

import random
from typing import TypeVar

from hypothesis import given, settings
from hypothesis import strategies as st

from master.config import MasterConfig
from protos.resources import Resources
from protos.v1 import agent_internal_pb2, mesos_pb2
from tests.unit.master.harness import (
    Call,
    Capability,
    Event,
    FakeAgent,
    Harness,
    accept_call,
    command_task,
    uuid_bytes,
)


def test_one_offer_per_agent_and_role(harness: Harness) -> None:
    harness.register_agent("cpus:4;mem:4096;cpus(eng):2;mem(eng):512", hostname="a")
    harness.register_agent("cpus:4;mem:4096", hostname="b")
    framework_id, _ = harness.subscribe(roles=("eng", "ops"))
    harness.allocate()
    keys = [(o.agent_id.value, o.allocation_info.role) for o in harness.offers(framework_id)]
    assert len(keys) == len(set(keys))
    assert len({o.id.value for o in harness.offers(framework_id)}) == len(keys)
    for offer in harness.offers(framework_id):
        assert {r.allocation_info.role for r in offer.resources} == {offer.allocation_info.role}
        assert offer.hostname in ("a", "b")
        assert offer.framework_id.value == framework_id
    # All offers of one cycle travel in one OFFERS event.
    assert len(harness.events(framework_id, Event.OFFERS)) == 1


def test_offer_ids_follow_mesos_format(harness: Harness, agent: FakeAgent) -> None:
    framework_id, _ = harness.subscribe()
    harness.allocate()
    assert harness.offers(framework_id)[0].id.value == "M-O0"


def test_offer_carries_the_agents_attributes(harness: Harness) -> None:
    message = agent_internal_pb2.AgentMessage()
    info = message.register_agent.agent_info
    info.hostname = "rack-host"
    info.resources.extend(Resources.parse("cpus:1;mem:128").to_protos())
    attribute = info.attributes.add(name="rack", type=mesos_pb2.Value.TEXT)
    attribute.text.value = "r1"
    harness._record(harness.master.agent_connected("c", message, harness.now))
    framework_id, _ = harness.subscribe()
    harness.allocate()
    (offer,) = harness.offers(framework_id)
    assert [(a.name, a.text.value) for a in offer.attributes] == [("rack", "r1")]


def test_offer_timeout_rescinds_and_reoffers() -> None:
    harness = Harness(config=MasterConfig(registry="memory", offer_timeout=10))
    harness.register_agent()
    framework_id, _ = harness.subscribe()
    harness.allocate()
    (offer,) = harness.offers(framework_id)
    harness.advance(9.9)
    assert harness.events(framework_id, Event.RESCIND) == []
    harness.advance(0.2)
    (rescind,) = harness.events(framework_id, Event.RESCIND)
    assert rescind.rescind.offer_id.value == offer.id.value
    assert harness.master.state.offers == {}
    harness.allocate()
    assert len(harness.offers(framework_id)) == 2  # Offered again (no filter on a rescind).
    harness.master.validate()


def test_accepted_offer_stops_its_timeout() -> None:
    harness = Harness(config=MasterConfig(registry="memory", offer_timeout=10))
    agent = harness.register_agent()
    framework_id, stream_id = harness.subscribe()
    harness.allocate()
    (offer,) = harness.offers(framework_id)
    harness.call(
        framework_id, stream_id, accept_call([offer.id.value], [command_task("t", agent.agent_id)])
    )
    harness.advance(20)
    assert harness.events(framework_id, Event.RESCIND) == []
    harness.master.validate()


def test_gpu_agents_are_offered_only_to_gpu_frameworks(harness: Harness) -> None:
    harness.register_agent("cpus:4;mem:4096;gpus:1")
    plain, _ = harness.subscribe(name="plain")
    gpu, _ = harness.subscribe(name="gpu", capabilities=[Capability.GPU_RESOURCES])
    harness.allocate()
    assert harness.offers(plain) == []
    assert len(harness.offers(gpu)) == 1


# -- every offered resource comes back exactly once --------------------------------------------

T = TypeVar("T")

ACTIONS = (
    *("allocate", "accept", "finish", "ack") * 4,
    *("register", "subscribe", "decline", "advance", "reconcile", "kill") * 2,
    "disconnect_agent",
    "reregister_agent",
    "silence_agent",
    "close_stream",
    "resubscribe",
    "teardown",
)
"""Actions, the common ones listed more often so that tasks get launched, run and finish."""


class _Driver:
    """Interprets random actions against a harness, keeping what a real world would remember."""

    def __init__(self, seed: int) -> None:
        self.h = Harness(config=MasterConfig(registry="memory", offer_timeout=30))
        self.rng = random.Random(seed)
        self.agents: list[FakeAgent] = []
        self.streams: dict[str, str] = {}
        self.tasks: dict[str, tuple[str, str]] = {}
        """task id -> (framework id, agent id)."""
        self.uuids = 0

    def pick(self, items: list[T]) -> T | None:
        return self.rng.choice(items) if items else None

    def live_offers(self, framework_id: str) -> list[mesos_pb2.Offer]:
        current = self.h.master.state.offers
        return [o for o in self.h.offers(framework_id) if o.id.value in current]

    def step(self, action: str) -> None:
        """Do ``action`` (a name in ACTIONS), picking its arguments with the seeded rng."""
        getattr(self, f"do_{action}")()

    def framework(self, connected: bool = True) -> str | None:
        """A framework id still known to the master (and connected, if asked)."""
        framework_id = self.pick(sorted(self.streams))
        fw = self.h.master.framework(framework_id) if framework_id is not None else None
        if fw is None or (connected and not fw.connected):
            return None
        return framework_id

    def current(self, agent_id: str) -> FakeAgent:
        """The agent's latest connection."""
        return next(a for a in self.agents if a.agent_id == agent_id)

    def do_register(self) -> None:
        self.agents.append(self.h.register_agent(hostname=f"h{len(self.agents)}"))

    def do_subscribe(self) -> None:
        caps = [Capability.PARTITION_AWARE] if self.rng.random() < 0.5 else []
        framework_id, stream_id = self.h.subscribe(
            name=f"f{len(self.streams)}",
            failover_timeout=self.rng.choice([0, 20]),
            capabilities=caps,
        )
        self.streams[framework_id] = stream_id

    def do_allocate(self) -> None:
        self.h.allocate()

    def _offer(self) -> tuple[str, mesos_pb2.Offer] | None:
        framework_id = self.framework()
        if framework_id is None:
            return None
        if not self.live_offers(framework_id):
            self.h.allocate()
        offer = self.pick(self.live_offers(framework_id))
        return None if offer is None else (framework_id, offer)

    def do_decline(self) -> None:
        picked = self._offer()
        if picked is not None:
            framework_id, offer = picked
            call = Call(type=Call.DECLINE)
            call.decline.offer_ids.add(value=offer.id.value)
            call.decline.filters.refuse_seconds = self.rng.choice([0, 1, 5])
            self.h.call(framework_id, self.streams[framework_id], call)

    def do_accept(self) -> None:
        picked = self._offer()
        if picked is None:
            return
        framework_id, offer = picked
        agent = self.current(offer.agent_id.value)
        tasks = []
        for _ in range(self.rng.randint(1, 4)):
            task_id = f"t{len(self.tasks)}"
            tasks.append(command_task(task_id, agent.agent_id, "cpus:0.5;mem:64"))
            self.tasks[task_id] = (framework_id, agent.agent_id)
        call = accept_call([offer.id.value], tasks, refuse_seconds=self.rng.choice([0, 2]))
        self.h.call(framework_id, self.streams[framework_id], call)

    def do_finish(self) -> None:
        task_id = self.pick(sorted(self.tasks))
        if task_id is not None:
            framework_id, agent_id = self.tasks[task_id]
            states = [mesos_pb2.TASK_RUNNING, mesos_pb2.TASK_FINISHED, mesos_pb2.TASK_FAILED]
            self.uuids += 1
            self.h.status_update(
                self.current(agent_id),
                framework_id,
                task_id,
                self.rng.choice(states),
                uuid_bytes(self.uuids),
            )

    def do_ack(self) -> None:
        task_id = self.pick(sorted(self.tasks))
        framework_id = self.tasks[task_id][0] if task_id is not None else None
        fw = self.h.master.framework(framework_id) if framework_id is not None else None
        if task_id is None or framework_id is None or fw is None or not fw.connected:
            return
        task = fw.tasks.get(task_id)
        if task is not None and task.status_update_uuid is not None:
            call = Call(type=Call.ACKNOWLEDGE)
            call.acknowledge.agent_id.value = task.agent_id
            call.acknowledge.task_id.value = task_id
            call.acknowledge.uuid = task.status_update_uuid
            self.h.call(framework_id, self.streams[framework_id], call)

    def do_kill(self) -> None:
        task_id = self.pick(sorted(self.tasks))
        framework_id = self.tasks[task_id][0] if task_id is not None else None
        fw = self.h.master.framework(framework_id) if framework_id is not None else None
        if task_id is not None and framework_id is not None and fw is not None and fw.connected:
            call = Call(type=Call.KILL)
            call.kill.task_id.value = task_id
            self.h.call(framework_id, self.streams[framework_id], call)

    def do_disconnect_agent(self) -> None:
        agent = self.pick(self.agents)
        if agent is not None:
            self.h.disconnect_agent(agent)

    def do_silence_agent(self) -> None:
        agent = self.pick(self.agents)
        if agent is not None:
            agent.responsive = False

    def do_reregister_agent(self) -> None:
        agent = self.pick(self.agents)
        if agent is None or self.h.master.agent(agent.agent_id) is None:
            return
        reported = []
        for task_id, (framework_id, agent_id) in sorted(self.tasks.items()):
            fw = self.h.master.framework(framework_id)
            if agent_id != agent.agent_id or fw is None or self.rng.random() < 0.3:
                continue
            known = fw.tasks.get(task_id)
            proto = mesos_pb2.Task()
            proto.state = known.state if known else mesos_pb2.TASK_RUNNING  # type: ignore[assignment]
            proto.task_id.value = task_id
            proto.framework_id.value = framework_id
            proto.agent_id.value = agent.agent_id
            proto.resources.extend(
                Resources.parse("cpus:0.5;mem:64").to_protos(allocation_role="*")
            )
            reported.append(proto)
        new, _ = self.h.reregister_agent(agent.agent_id, hostname=agent.hostname, tasks=reported)
        self.agents = [new if a.agent_id == new.agent_id else a for a in self.agents]

    def do_close_stream(self) -> None:
        framework_id = self.framework()
        if framework_id is not None:
            self.h.close_stream(self.streams[framework_id])

    def do_resubscribe(self) -> None:
        framework_id = self.framework(connected=False)
        fw = self.h.master.framework(framework_id) if framework_id is not None else None
        if framework_id is not None and fw is not None:
            info = mesos_pb2.FrameworkInfo()
            info.CopyFrom(fw.info)
            _, self.streams[framework_id] = self.h.subscribe(info, framework_id=framework_id)

    def do_teardown(self) -> None:
        framework_id = self.framework()
        if framework_id is not None:
            self.h.call(framework_id, self.streams[framework_id], Call(type=Call.TEARDOWN))

    def do_advance(self) -> None:
        self.h.advance(self.rng.choice([1, 6, 16, 31]))

    def do_reconcile(self) -> None:
        framework_id = self.framework()
        if framework_id is not None:
            call = Call(type=Call.RECONCILE)
            call.reconcile.SetInParent()
            self.h.call(framework_id, self.streams[framework_id], call)

    def everything_back(self) -> None:
        """Tear every framework down: every agent in the allocator must be wholly free."""
        h = self.h
        for framework_id in list(h.master.state.frameworks):
            fw = h.master.state.frameworks[framework_id]
            if fw.connected:
                h.call(framework_id, self.streams[framework_id], Call(type=Call.TEARDOWN))
            else:
                h.advance(0)
        h.advance(25)  # Past every failover timeout (20 s at most).
        allocator = h.master.state.allocator
        for agent_id in allocator.agent_ids():
            assert allocator.agent_free(agent_id) == allocator.agent_total(agent_id), agent_id
            assert allocator.agent_allocation(agent_id) == {}
        h.master.validate()


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    actions=st.lists(st.sampled_from(ACTIONS), min_size=20, max_size=80),
)
def test_every_offered_resource_returns_exactly_once(seed: int, actions: list[str]) -> None:
    driver = _Driver(seed)
    driver.step("register")
    driver.step("subscribe")
    for action in actions:
        driver.step(action)
    driver.everything_back()


def test_declined_resources_wait_for_the_periodic_cycle(harness: Harness, agent: FakeAgent) -> None:
    """A DECLINE does not ask for the quick cycle: with ``refuse_seconds: 0`` the same resources
    would otherwise come back every few milliseconds (found by the simulator); they are offered
    again at the next periodic cycle, as Mesos's batched allocation does."""
    framework_id, stream_id = harness.subscribe()
    harness.allocate()
    (offer,) = harness.offers(framework_id)
    assert not harness.master.allocation_wanted
    decline = Call(type=Call.DECLINE)
    decline.decline.offer_ids.add(value=offer.id.value)
    decline.decline.filters.refuse_seconds = 0
    harness.call(framework_id, stream_id, decline)
    assert not harness.master.allocation_wanted
    harness.allocate()  # The periodic cycle.
    assert len(harness.offers(framework_id)) == 2
