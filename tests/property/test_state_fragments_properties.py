"""Property test of master.http.fragments over random sequences of what happens to a master.

A state machine drives the master's harness (real state machine, no I/O) with agents
registering, reregistering (renamed or not), disconnecting and being marked gone, frameworks
subscribing, their streams breaking and being torn down, offers made, declined and accepted
with a task (running as one user or another), and tasks changing state and acknowledged.
After every step one long-lived :class:`StateFragments` must answer ``/master/slaves`` and
``/master/state-summary`` byte for byte as ``json.dumps`` of the uncached snapshot functions,
for each reader of a restrictive ``view_*`` ACL and for none: whatever it remembered from the
steps before may not show.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from master.core.model import TERMINAL_STATES, AgentPhase
from master.http.fragments import StateFragments
from protos.resources import Resources
from protos.v1 import mesos_pb2
from protos.v1.scheduler_pb2 import Call
from tests.unit.master.harness import Harness, accept_call, command_task
from tests.unit.test_master_http_fragments import same_as_uncached

TASK = Resources.parse("cpus:1;mem:128")
USERS = ("alice", "bob")
STATES = (
    mesos_pb2.TASK_RUNNING,
    mesos_pb2.TASK_FINISHED,
    mesos_pb2.TASK_FAILED,
    mesos_pb2.TASK_KILLED,
)


class FragmentsMachine(RuleBasedStateMachine):
    """Random inputs to one master; its cached answers checked after each."""

    def __init__(self) -> None:
        super().__init__()
        self.harness = Harness()
        self.fragments = StateFragments()
        self.streams: dict[str, str] = {}  # framework id -> its open stream
        self.serial = 0

    def _next(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial}"

    def _agents(self, *phases: AgentPhase) -> list[str]:
        agents = self.harness.master.state.agents.values()
        return sorted(a.agent_id for a in agents if a.phase in phases)

    # -- agents --

    @precondition(lambda self: len(self.harness.master.state.agents) < 6)
    @rule(cpus=st.integers(1, 4))
    def register_agent(self, cpus: int) -> None:
        self.harness.register_agent(
            resources=f"cpus:{cpus};mem:1024;ports:[31000-31009]", hostname=self._next("host")
        )

    @rule(data=st.data(), rename=st.booleans())
    def reregister_agent(self, data: st.DataObject, rename: bool) -> None:
        known = self._agents(AgentPhase.CONNECTED, AgentPhase.DISCONNECTED, AgentPhase.UNREACHABLE)
        if known:
            agent_id = data.draw(st.sampled_from(known))
            hostname = (
                self._next("renamed") if rename else self.harness.fake_agents[agent_id].hostname
            )
            self.harness.reregister_agent(
                agent_id, resources="cpus:4;mem:1024;ports:[31000-31009]", hostname=hostname
            )

    @rule(data=st.data())
    def disconnect_agent(self, data: st.DataObject) -> None:
        connected = self._agents(AgentPhase.CONNECTED)
        if connected:
            agent_id = data.draw(st.sampled_from(connected))
            self.harness.disconnect_agent(self.harness.fake_agents[agent_id])

    @rule(data=st.data())
    def mark_agent_gone(self, data: st.DataObject) -> None:
        known = self._agents(AgentPhase.CONNECTED, AgentPhase.DISCONNECTED)
        if known:
            agent_id = data.draw(st.sampled_from(known))
            self.harness._record(self.harness.master.mark_agent_gone(agent_id, self.harness.now))

    # -- frameworks --

    @precondition(lambda self: len(self.harness.master.state.frameworks) < 3)
    @rule(user=st.sampled_from(USERS))
    def subscribe(self, user: str) -> None:
        info = self.harness.framework_info(name=self._next("fw"), failover_timeout=3600)
        info.user = user
        framework_id, stream_id = self.harness.subscribe(info)
        self.streams[framework_id] = stream_id

    @rule(data=st.data(), teardown=st.booleans())
    def framework_leaves(self, data: st.DataObject, teardown: bool) -> None:
        if self.streams:
            framework_id = data.draw(st.sampled_from(sorted(self.streams)))
            stream_id = self.streams.pop(framework_id)
            if teardown:
                self.harness.call(framework_id, stream_id, Call(type=Call.TEARDOWN))
            else:
                self.harness.close_stream(stream_id)

    # -- offers and tasks --

    @rule()
    def allocate(self) -> None:
        self.harness.allocate()

    @rule(data=st.data(), launch=st.booleans(), user=st.sampled_from(USERS))
    def answer_an_offer(self, data: st.DataObject, launch: bool, user: str) -> None:
        offers = [
            o for o in self.harness.master.state.offers.values() if o.framework_id in self.streams
        ]
        if not offers:
            return
        offer = data.draw(st.sampled_from(sorted(offers, key=lambda o: o.offer_id)))
        stream_id = self.streams[offer.framework_id]
        if launch and offer.resources.contains(TASK):
            task = command_task(self._next("task"), offer.agent_id)
            task.command.user = user
            call = accept_call([offer.offer_id], [task], refuse_seconds=0)
        else:
            call = Call(type=Call.DECLINE)
            call.decline.offer_ids.add(value=offer.offer_id)
            call.decline.filters.refuse_seconds = data.draw(st.sampled_from([0, 3600]))
        self.harness.call(offer.framework_id, stream_id, call)

    @rule(data=st.data(), state=st.sampled_from(STATES), acknowledge=st.booleans())
    def task_changes(self, data: st.DataObject, state: int, acknowledge: bool) -> None:
        master = self.harness.master
        live = sorted(
            (t.framework_id, t.agent_id, t.task_id)
            for fw in master.state.frameworks.values()
            for t in fw.tasks.values()
            if t.state not in TERMINAL_STATES and t.agent_id in self._agents(AgentPhase.CONNECTED)
        )
        if not live:
            return
        framework_id, agent_id, task_id = data.draw(st.sampled_from(live))
        uuid = self.serial.to_bytes(16, "big")
        self.serial += 1
        agent = self.harness.fake_agents[agent_id]
        self.harness.status_update(agent, framework_id, task_id, state, uuid)
        stream_id = self.streams.get(framework_id)
        if acknowledge and stream_id is not None:
            call = Call(type=Call.ACKNOWLEDGE)
            call.acknowledge.agent_id.value = agent_id
            call.acknowledge.task_id.value = task_id
            call.acknowledge.uuid = uuid
            self.harness.call(framework_id, stream_id, call)

    # -- the property --

    @invariant()
    def answers_equal_the_uncached_ones(self) -> None:
        same_as_uncached(self.fragments, self.harness.master)


TestFragmentsMachine = FragmentsMachine.TestCase
TestFragmentsMachine.settings = settings(max_examples=30, stateful_step_count=30, deadline=None)
