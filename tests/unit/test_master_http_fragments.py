"""master.http.fragments: /master/slaves and /master/state-summary from remembered agent JSON.

One :class:`StateFragments` follows a master through every kind of change (agents added,
reregistered, disconnected, unreachable, removed; offers made and taken; tasks launched,
running, finished and acknowledged; a dynamic reservation; a framework torn down; a new
leadership after a restart), and after each step its answers must be byte for byte
``json.dumps`` of the uncached snapshot functions, for every reader of a restrictive
``view_*`` ACL and for an unrestricted one. Driven through the master's harness (real state
machine, no I/O) and, for the routes, the real app through ``httpx.ASGITransport``.
"""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Callable, Iterable
from typing import Any

import httpx
import pytest

import master.http.fragments as fragments_module
from master.auth.view import ViewAcls
from master.core import Master, agents_snapshot, state_summary
from master.core.liveness import ping_interval
from master.core.snapshot import agent_head_json
from master.http import create_app
from master.http.fragments import StateFragments, encode
from protos.acls import Acls
from protos.resources import Reservation, Resources
from protos.v1 import mesos_pb2
from protos.v1.scheduler_pb2 import Call
from tests.unit.master.harness import FakeAgent, Harness, accept_call, command_task

ANY = {"type": "ANY"}
ACLS = Acls.parse(
    {
        "permissive": False,
        "view_frameworks": [
            {"principals": {"values": ["alice"]}, "users": {"values": ["alice"]}},
            {"principals": {"values": ["bob"]}, "users": {"values": ["bob"]}},
            {"principals": {"values": ["ops"]}, "users": ANY},
        ],
        "view_tasks": [
            {"principals": {"values": ["alice"]}, "users": {"values": ["alice"]}},
            {"principals": {"values": ["bob"]}, "users": {"values": ["bob"]}},
            {"principals": {"values": ["ops"]}, "users": ANY},
        ],
    }
)
PRINCIPALS = ("alice", "bob", "ops", "carol")
"""Readers of ACLS: alice and bob see their own user's frameworks and tasks, ops all, carol
nothing."""

Op = mesos_pb2.Offer.Operation


def expected(value: Any) -> bytes:
    """What the endpoints answer for ``value``: ``json.dumps`` as ``protos.mesos_json``."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def same_as_uncached(fragments: StateFragments, master: Master) -> None:
    """Both answers equal the uncached ones, for every reader (and for no ACLs at all)."""
    views = ViewAcls(ACLS)
    for visible in (None, *(views.approver(p) for p in PRINCIPALS)):
        assert fragments.state_summary(master, visible) == expected(state_summary(master, visible))
    assert fragments.slaves(master) == expected(agents_snapshot(master))


class Cluster:
    """Two frameworks (users alice and bob, role eng) on a harness, and helpers to act."""

    def __init__(self) -> None:
        self.harness = Harness()
        self.streams: dict[str, str] = {}
        self.uuids = 0

    def subscribe(self, user: str) -> str:
        info = self.harness.framework_info(name=f"{user}-fw", roles=("eng",), failover_timeout=60)
        info.user = user
        framework_id, stream_id = self.harness.subscribe(info)
        self.streams[framework_id] = stream_id
        return framework_id

    def offer(self, framework_id: str, agent: FakeAgent) -> str:
        """An outstanding offer of ``agent`` to the framework (others' offers of it declined
        until the allocator makes one)."""
        for _ in range(5):
            self.harness.allocate()
            held = [
                o for o in self.harness.master.state.offers.values() if o.agent_id == agent.agent_id
            ]
            for offer in held:
                if offer.framework_id == framework_id:
                    return offer.offer_id
            for offer in held:
                stream_id = self.streams[offer.framework_id]
                decline(self.harness, offer.framework_id, stream_id, [offer.offer_id])
        raise AssertionError(f"no offer of {agent.agent_id} to {framework_id}")

    def accept(
        self,
        framework_id: str,
        agent: FakeAgent,
        tasks: list[mesos_pb2.TaskInfo],
        operations: tuple[mesos_pb2.Offer.Operation, ...] = (),
    ) -> None:
        call = accept_call([self.offer(framework_id, agent)], tasks, refuse_seconds=0)
        call.accept.operations.extend(operations)
        self.harness.call(framework_id, self.streams[framework_id], call)

    def update(self, agent: FakeAgent, framework_id: str, task_id: str, state: int) -> bytes:
        self.uuids += 1
        uuid = self.uuids.to_bytes(16, "big")
        self.harness.status_update(agent, framework_id, task_id, state, uuid)
        return uuid

    def acknowledge(self, agent: FakeAgent, framework_id: str, task_id: str, uuid: bytes) -> None:
        call = Call(type=Call.ACKNOWLEDGE)
        call.acknowledge.agent_id.value = agent.agent_id
        call.acknowledge.task_id.value = task_id
        call.acknowledge.uuid = uuid
        self.harness.call(framework_id, self.streams[framework_id], call)


def decline(
    harness: Harness,
    framework_id: str,
    stream_id: str,
    offer_ids: Iterable[str],
    refuse_seconds: float = 3600,
) -> None:
    """The framework declines ``offer_ids``."""
    call = Call(type=Call.DECLINE)
    for offer_id in sorted(offer_ids):
        call.decline.offer_ids.add(value=offer_id)
    call.decline.filters.refuse_seconds = refuse_seconds
    harness.call(framework_id, stream_id, call)


def test_answers_equal_the_uncached_ones_through_every_kind_of_change() -> None:
    cluster = Cluster()
    harness = cluster.harness
    fragments = StateFragments()
    same_as_uncached(fragments, harness.master)  # No agents, no frameworks.

    a1 = harness.register_agent(resources="cpus:4;mem:4096;ports:[31000-32000];cpus(eng):1")
    a2 = harness.register_agent(hostname="host2")
    a3 = harness.register_agent(hostname="h\u00f6st3")  # Not ASCII: written as it is.
    same_as_uncached(fragments, harness.master)

    alice, bob = cluster.subscribe("alice"), cluster.subscribe("bob")
    harness.allocate()  # Offers to both: offered_resources change.
    same_as_uncached(fragments, harness.master)

    as_bob = command_task("alice-as-bob", a1.agent_id)
    as_bob.command.user = "bob"  # Shown to bob's view_tasks, in a framework he cannot view.
    cluster.accept(alice, a1, [command_task("alice-run", a1.agent_id), as_bob])
    cluster.accept(bob, a2, [command_task("bob-run", a2.agent_id, "cpus:2;mem:256")])
    same_as_uncached(fragments, harness.master)

    cluster.update(a1, alice, "alice-run", mesos_pb2.TASK_RUNNING)
    same_as_uncached(fragments, harness.master)
    done = cluster.update(a1, alice, "alice-as-bob", mesos_pb2.TASK_FINISHED)
    same_as_uncached(fragments, harness.master)  # Finished, not acknowledged yet.
    cluster.acknowledge(a1, alice, "alice-as-bob", done)
    same_as_uncached(fragments, harness.master)  # Completed: counted from the history.

    reserve = Op(type=Op.RESERVE)
    reserved = Resources.parse("cpus:1;mem:512").push_reservation(Reservation("eng", "dynamic"))
    reserve.reserve.resources.extend(reserved.to_protos())
    cluster.accept(bob, a3, [], (reserve,))
    assert harness.master.state.agents[a3.agent_id].reservations == reserved
    same_as_uncached(fragments, harness.master)  # a3's total and reserved resources changed.

    harness.disconnect_agent(a3)
    same_as_uncached(fragments, harness.master)  # Disconnected: listed, not active.
    a3.responsive = False
    config = harness.config
    harness.advance(ping_interval(config) + config.agent_ping_deadline + config.agent_ping_timeout)
    assert harness.master.state.agents[a3.agent_id].phase.value == "unreachable"
    same_as_uncached(fragments, harness.master)  # Unreachable: left out.
    a3, _ = harness.reregister_agent(a3.agent_id, hostname="host3-again")
    same_as_uncached(fragments, harness.master)  # Back, with a new AgentInfo.

    harness._record(harness.master.mark_agent_gone(a2.agent_id, harness.now))
    same_as_uncached(fragments, harness.master)  # Removed; bob-run lost with it.

    harness.call(bob, cluster.streams[bob], Call(type=Call.TEARDOWN))
    same_as_uncached(fragments, harness.master)

    restarted = harness.restart()  # A new leadership: agents known from the registry.
    same_as_uncached(fragments, restarted.master)
    assert b'"recovered_slaves":[{' in fragments.slaves(restarted.master)
    restarted.reregister_agent(a1.agent_id, resources="cpus:4;mem:4096;cpus(eng):1")
    same_as_uncached(fragments, restarted.master)


def test_only_the_agents_that_changed_are_encoded_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster = Cluster()
    harness = cluster.harness
    agents = [harness.register_agent(hostname=f"host{i}") for i in range(5)]
    fragments = StateFragments()
    same_as_uncached(fragments, harness.master)

    encoded: list[str] = []
    original: Callable[[Any], dict[str, Any]] = agent_head_json

    def counting(agent: Any) -> dict[str, Any]:
        encoded.append(agent.agent_id)
        return original(agent)

    monkeypatch.setattr(fragments_module, "agent_head_json", counting)
    fragments.slaves(harness.master)
    fragments.state_summary(harness.master)
    assert encoded == []  # Nothing changed since the last answers.

    # Reregistered on a new connection while connected: only its AgentInfo is new.
    agents[0], _ = harness.reregister_agent(agents[0].agent_id, hostname="renamed")
    same_as_uncached(fragments, harness.master)
    assert encoded == [agents[0].agent_id]
    encoded.clear()

    alice = cluster.subscribe("alice")

    cluster.accept(alice, agents[2], [command_task("t", agents[2].agent_id)])
    # Every agent was offered to alice (the allocation in ``accept``); agents[2]'s offer was
    # then used: each of those changed once. A task's state changing changes no agent's JSON.
    same_as_uncached(fragments, harness.master)
    assert sorted(set(encoded)) == sorted(a.agent_id for a in agents)
    encoded.clear()
    cluster.update(agents[2], alice, "t", mesos_pb2.TASK_RUNNING)
    same_as_uncached(fragments, harness.master)
    assert encoded == []

    # Offers declined and made again alike: new ids, the same resources offered.
    harness.allocate()  # What the task left of agents[2] is offered: a change.
    same_as_uncached(fragments, harness.master)
    assert encoded == [agents[2].agent_id]
    encoded.clear()
    before = set(harness.master.state.offers)
    decline(harness, alice, cluster.streams[alice], before, refuse_seconds=0)
    harness.allocate()
    assert len(harness.master.state.offers) == len(agents)
    assert not before & set(harness.master.state.offers)
    same_as_uncached(fragments, harness.master)
    assert encoded == []

    # A framework whose stream broke, holding no offers: only its phase changed.
    decline(harness, alice, cluster.streams[alice], harness.master.state.frameworks[alice].offers)
    same_as_uncached(fragments, harness.master)
    harness.close_stream(cluster.streams[alice])
    assert not harness.master.state.frameworks[alice].connected
    same_as_uncached(fragments, harness.master)


def get(app: Any, *paths: str) -> list[httpx.Response]:
    """GET each of ``paths`` from ``app`` (no sockets)."""

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://master") as client:
            return [await client.get(path) for path in paths]

    return asyncio.run(run())


class View:
    """A MasterView leading ``master``."""

    master_id, version, start_time, elected_time = "M", "1.0", 1.0, 2.0

    def __init__(self, master: Master) -> None:
        self.master = master

    def leading_master(self) -> Master | None:
        return self.master

    def leader_http_address(self) -> str | None:
        return None


def test_routes_answer_the_remembered_bytes_and_take_jsonp() -> None:
    cluster = Cluster()
    harness = cluster.harness
    agent = harness.register_agent()
    alice = cluster.subscribe("alice")
    cluster.accept(alice, agent, [command_task("t", agent.agent_id)])
    master = harness.master
    app = create_app(View(master))
    summary, slaves, one, wrapped, refused = get(
        app,
        "/master/state-summary",
        "/master/slaves",
        f"/master/slaves?slave_id={agent.agent_id}",
        "/master/slaves?jsonp=angular.callbacks._0",
        "/master/state-summary?jsonp=no%20name",
    )
    assert summary.content == expected(state_summary(master))
    assert summary.headers["content-type"] == "application/json"
    assert slaves.content == one.content == encode(agents_snapshot(master))
    assert wrapped.content == b"angular.callbacks._0(" + slaves.content + b");"
    assert wrapped.headers["content-type"].startswith("text/javascript")
    assert refused.status_code == 400
    assert "jsonp" in refused.json()["detail"]
    cluster.update(agent, alice, "t", mesos_pb2.TASK_RUNNING)  # The cache follows the state.
    [summary] = get(app, "/master/state-summary")
    assert json.loads(summary.content) == state_summary(master)
    assert json.loads(summary.content)["slaves"][0]["TASK_RUNNING"] == 1


def test_what_a_master_showed_is_forgotten_with_it() -> None:
    fragments = StateFragments()
    harness = Harness()
    for i in range(3):
        harness.register_agent(hostname=f"host{i}")
    harness.subscribe()
    same_as_uncached(fragments, harness.master)
    assert fragments.remembered == 4
    restarted = harness.restart()  # Another leadership: the first one's entries go.
    fragments.slaves(restarted.master)
    assert fragments.remembered == 3  # Three agents to reregister; no framework listed yet.
    same_as_uncached(fragments, restarted.master)
    assert fragments.remembered == 4  # The framework, known from the registry.
    del harness, restarted  # This leadership ends too: nothing of it stays.
    gc.collect()
    assert fragments.remembered == 0
