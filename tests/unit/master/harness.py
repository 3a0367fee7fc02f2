"""Harness: drive the master's state machine with calls and agent messages, collect its effects.

Like Nomad's scheduler harness: build a state, feed inputs, look at what came out. Every input
goes through ``Master`` exactly as the runtime would feed it, registry writes land in a
MemoryRegistry, and ``validate()`` runs after every input so a broken invariant shows up at the
step that broke it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from master.config import MasterConfig
from master.core import (
    CloseSubscription,
    DisconnectAgent,
    Effect,
    IdGenerator,
    Master,
    PersistRegistry,
    SendEvent,
    SendToAgent,
)
from master.registry import MemoryRegistry, Registry, RegistryState
from protos.resources import Resources
from protos.v1 import agent_internal_pb2, mesos_pb2, scheduler_pb2

Call = scheduler_pb2.Call
Event = scheduler_pb2.Event
Capability = mesos_pb2.FrameworkInfo.Capability

START = 1_700_000_000.0


def uuid_bytes(n: int) -> bytes:
    """A distinct 16-byte uuid for update ``n``."""
    return n.to_bytes(16, "big")


@dataclass
class FakeAgent:
    """An agent as the harness drives it: its id, connection and the messages it received."""

    agent_id: str
    connection_id: str
    hostname: str
    responsive: bool = True
    """Whether it answers pings (the harness answers for it as time passes)."""


@dataclass
class Harness:
    """Harness wraps one Master, a MemoryRegistry, a clock and the effects collected so far."""

    config: MasterConfig = field(default_factory=lambda: MasterConfig(registry="memory"))
    registry: Registry = field(default_factory=MemoryRegistry)
    now: float = START
    master_id: str = "M"
    effects: list[Effect] = field(default_factory=list)
    validate_each_step: bool = True

    def __post_init__(self) -> None:
        self.master = Master(self.config, ids=IdGenerator(master_id=self.master_id))
        self._streams = 0
        self._connections = 0
        self.fake_agents: dict[str, FakeAgent] = {}
        self._record(self.master.recover(self.registry.load(), self.now))

    # -- plumbing -----------------------------------------------------------------------------

    def _record(self, effects: list[Effect]) -> list[Effect]:
        for effect in effects:
            if isinstance(effect, PersistRegistry):
                self.registry.apply(effect.operations)
        self.effects.extend(effects)
        if self.validate_each_step:
            self.master.validate()
        return effects

    def clear(self) -> None:
        """Forget the effects collected so far."""
        self.effects.clear()

    def restart(self, master_id: str = "M2") -> Harness:
        """A new master on the same registry (as after a crash), later in time."""
        return Harness(
            config=self.config, registry=self.registry, now=self.now, master_id=master_id
        )

    # -- time ---------------------------------------------------------------------------------

    def advance(self, seconds: float) -> list[Effect]:
        """Let ``seconds`` pass, firing timers as they fall due (in order)."""
        end = self.now + seconds
        out: list[Effect] = []
        while True:
            due = self.master.next_deadline()
            if due is None or due > end:
                break
            self.now = max(self.now, due)
            out += self._tick()
        self.now = end
        out += self._tick()
        return out

    def _tick(self) -> list[Effect]:
        effects = self._record(self.master.tick(self.now))
        for effect in effects:
            if isinstance(effect, SendToAgent) and effect.message.HasField("ping"):
                fake = self.fake_agents.get(effect.agent_id)
                if (
                    fake is not None
                    and fake.responsive
                    and fake.connection_id == effect.connection_id
                ):
                    message = agent_internal_pb2.AgentMessage()
                    message.pong.seq = effect.message.ping.seq
                    self.agent_send(fake, message)
        return effects

    def allocate(self) -> list[Effect]:
        """Run an allocation cycle now."""
        return self._record(self.master.allocate(self.now))

    # -- frameworks ---------------------------------------------------------------------------

    def framework_info(
        self,
        name: str = "fw",
        roles: Sequence[str] = ("*",),
        capabilities: Iterable[int] = (),
        failover_timeout: float = 0.0,
        checkpoint: bool = False,
    ) -> mesos_pb2.FrameworkInfo:
        """A FrameworkInfo; several roles make it MULTI_ROLE."""
        info = mesos_pb2.FrameworkInfo(
            user="tester", name=name, failover_timeout=failover_timeout, checkpoint=checkpoint
        )
        caps = set(capabilities)
        if len(roles) > 1 or (roles != ("*",) and Capability.MULTI_ROLE in caps):
            caps.add(Capability.MULTI_ROLE)
            info.roles.extend(roles)
        else:
            info.role = roles[0]
        for cap in sorted(caps):
            info.capabilities.add(type=cap)
        return info

    def subscribe(
        self,
        info: mesos_pb2.FrameworkInfo | None = None,
        framework_id: str | None = None,
        suppressed_roles: Sequence[str] = (),
        **kwargs: object,
    ) -> tuple[str, str]:
        """SUBSCRIBE a framework (new or failing over); returns (framework id, stream id)."""
        if info is None:
            info = self.framework_info(**kwargs)  # type: ignore[arg-type]
        call = Call(type=Call.SUBSCRIBE)
        call.subscribe.framework_info.CopyFrom(info)
        call.subscribe.suppressed_roles.extend(suppressed_roles)
        if framework_id is not None:
            call.framework_id.value = framework_id
            call.subscribe.framework_info.id.value = framework_id
        self._streams += 1
        stream_id = f"stream-{self._streams}"
        effects = self._record(self.master.subscribe(stream_id, call, self.now))
        subscribed = [
            e.event for e in effects if isinstance(e, SendEvent) and e.stream_id == stream_id
        ]
        assert subscribed
        assert subscribed[0].type == Event.SUBSCRIBED
        return subscribed[0].subscribed.framework_id.value, stream_id

    def call(self, framework_id: str, stream_id: str | None, call: Call) -> list[Effect]:
        """Any call but SUBSCRIBE."""
        call.framework_id.value = framework_id
        return self._record(self.master.call(stream_id, call, self.now))

    def close_stream(self, stream_id: str) -> list[Effect]:
        """The scheduler's stream broke."""
        return self._record(self.master.subscription_closed(stream_id, self.now))

    def events(self, framework_id: str | None = None, kind: int | None = None) -> list[Event]:
        """Events sent so far (to one framework, of one type)."""
        return [
            e.event
            for e in self.effects
            if isinstance(e, SendEvent)
            and (framework_id is None or e.framework_id == framework_id)
            and (kind is None or e.event.type == kind)
        ]

    def offers(self, framework_id: str | None = None) -> list[mesos_pb2.Offer]:
        """Offers sent so far."""
        return [o for e in self.events(framework_id, Event.OFFERS) for o in e.offers.offers]

    def updates(self, framework_id: str | None = None) -> list[mesos_pb2.TaskStatus]:
        """Task statuses sent so far."""
        return [e.update.status for e in self.events(framework_id, Event.UPDATE)]

    def closed_streams(self) -> list[CloseSubscription]:
        """CloseSubscription effects so far."""
        return [e for e in self.effects if isinstance(e, CloseSubscription)]

    # -- agents -------------------------------------------------------------------------------

    def _connection(self) -> str:
        self._connections += 1
        return f"conn-{self._connections}"

    def register_agent(
        self,
        resources: str = "cpus:4;mem:4096;disk:10000;ports:[31000-32000]",
        hostname: str = "host1",
        checkpointed: str = "",
    ) -> FakeAgent:
        """A new agent registers; returns its id and connection."""
        message = agent_internal_pb2.AgentMessage()
        reg = message.register_agent
        reg.agent_info.hostname = hostname
        reg.agent_info.resources.extend(Resources.parse(resources).to_protos())
        if checkpointed:
            reg.checkpointed_resources.extend(Resources.parse(checkpointed).to_protos())
        connection_id = self._connection()
        effects = self._record(self.master.agent_connected(connection_id, message, self.now))
        replies = [
            e.message
            for e in effects
            if isinstance(e, SendToAgent) and e.message.HasField("agent_registered")
        ]
        assert replies, f"registration refused: {effects}"
        fake = FakeAgent(replies[0].agent_registered.agent_id.value, connection_id, hostname)
        self.fake_agents[fake.agent_id] = fake
        return fake

    def reregister_agent(
        self,
        agent_id: str,
        *,
        resources: str = "cpus:4;mem:4096;disk:10000;ports:[31000-32000]",
        hostname: str = "host1",
        tasks: Sequence[mesos_pb2.Task] = (),
        executors: Sequence[mesos_pb2.ExecutorInfo] = (),
        frameworks: Sequence[mesos_pb2.FrameworkInfo] = (),
    ) -> tuple[FakeAgent, list[Effect]]:
        """A known agent reregisters on a new connection with what it runs."""
        message = agent_internal_pb2.AgentMessage()
        rereg = message.reregister_agent
        rereg.agent_info.hostname = hostname
        rereg.agent_info.id.value = agent_id
        rereg.agent_info.resources.extend(Resources.parse(resources).to_protos())
        rereg.tasks.extend(tasks)
        rereg.executor_infos.extend(executors)
        rereg.frameworks.extend(frameworks)
        connection_id = self._connection()
        effects = self._record(self.master.agent_connected(connection_id, message, self.now))
        fake = FakeAgent(agent_id, connection_id, hostname)
        self.fake_agents[agent_id] = fake
        return fake, effects

    def agent_send(
        self, agent: FakeAgent, message: agent_internal_pb2.AgentMessage
    ) -> list[Effect]:
        """A message from an agent on its connection."""
        return self._record(self.master.agent_message(agent.connection_id, message, self.now))

    def disconnect_agent(self, agent: FakeAgent) -> list[Effect]:
        """The agent's connection broke."""
        return self._record(self.master.agent_disconnected(agent.connection_id, self.now))

    def to_agent(
        self, agent_id: str, kind: str | None = None
    ) -> list[agent_internal_pb2.MasterMessage]:
        """Messages sent so far to an agent (of one payload kind)."""
        return [
            e.message
            for e in self.effects
            if isinstance(e, SendToAgent)
            and e.agent_id == agent_id
            and (kind is None or e.message.WhichOneof("payload") == kind)
        ]

    def disconnected_agents(self) -> list[DisconnectAgent]:
        """DisconnectAgent effects so far."""
        return [e for e in self.effects if isinstance(e, DisconnectAgent)]

    def status_update(
        self,
        agent: FakeAgent,
        framework_id: str,
        task_id: str,
        state: int,
        uuid: bytes | None,
        *,
        latest_state: int | None = None,
    ) -> list[Effect]:
        """The agent reports a task's state."""
        message = agent_internal_pb2.AgentMessage()
        update = message.status_update
        update.framework_id.value = framework_id
        update.status.task_id.value = task_id
        update.status.state = state  # type: ignore[assignment]
        update.status.agent_id.value = agent.agent_id
        update.status.source = mesos_pb2.TaskStatus.SOURCE_EXECUTOR
        if uuid is not None:
            update.status.uuid = uuid
        if latest_state is not None:
            update.latest_state = latest_state  # type: ignore[assignment]
        return self.agent_send(agent, message)

    def pong_all(self, agent: FakeAgent) -> None:
        """Answer every ping the agent received."""
        for ping in self.to_agent(agent.agent_id, "ping"):
            message = agent_internal_pb2.AgentMessage()
            message.pong.seq = ping.ping.seq
            self.agent_send(agent, message)


def accept_call(
    offer_ids: Sequence[str],
    tasks: Sequence[mesos_pb2.TaskInfo] = (),
    refuse_seconds: float | None = None,
) -> Call:
    """An ACCEPT launching ``tasks`` (in one LAUNCH) on ``offer_ids``."""
    call = Call(type=Call.ACCEPT)
    call.accept.SetInParent()
    for offer_id in offer_ids:
        call.accept.offer_ids.add(value=offer_id)
    if tasks:
        op = call.accept.operations.add(type=mesos_pb2.Offer.Operation.LAUNCH)
        op.launch.task_infos.extend(tasks)
    if refuse_seconds is not None:
        call.accept.filters.refuse_seconds = refuse_seconds
    return call


def command_task(
    task_id: str, agent_id: str, resources: str = "cpus:1;mem:128", command: str = "true"
) -> mesos_pb2.TaskInfo:
    """A command task."""
    task = mesos_pb2.TaskInfo(name=task_id)
    task.task_id.value = task_id
    task.agent_id.value = agent_id
    task.resources.extend(Resources.parse(resources).to_protos())
    task.command.value = command
    return task


def registry_state(harness: Harness) -> RegistryState:
    """The registry content the harness' master wrote so far."""
    return harness.registry.load()
