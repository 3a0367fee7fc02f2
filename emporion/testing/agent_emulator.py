"""Emulate thousands of agents in one process, over the internal agent protocol.

:class:`AgentEmulator` registers N agents with a master (one ``AgentGateway`` stream per
agent, all multiplexed over one gRPC channel), answers pings, runs the tasks it is sent according
to its :class:`~emporion.testing.emulated_agent.Mode`, retries status updates until they are
acknowledged, and reregisters with its tasks whenever the stream breaks.
Each agent's behaviour lives in a sans-I/O
:class:`~emporion.testing.emulated_agent.EmulatedAgent`; this module is the asyncio runtime around
those cores: it alone mutates them, from one loop. The streams themselves, and where they go,
are :mod:`emporion.testing.emulator_link`'s; the command line is
:mod:`emporion.testing.emulator_cli`'s (``python -m emporion.testing.agent_emulator``).

Tests steer it (``finish``, ``fail``, ``lose_agent``, ``restore_agent``, ``restart_agent``) and
benchmarks read its :class:`~emporion.testing.emulated_agent.EmulatorCounters`.

Each agent uses ``ConnectBatched`` when the master serves it: whatever the agent has ready when
its writer runs (all the RUNNING updates for a batch of RunTasks, say) goes out in one stream
message, which is what makes thousands of launches per second affordable in Python. Against a
master without it (``UNIMPLEMENTED``) the emulator falls back to ``Connect`` for good.

Where the agents connect:

* ``"a:1,b:2"`` (or a list): a refused or broken agent tries the next master after a backoff; a
  master that does not lead refuses with UNAVAILABLE and names the leader in the trailing
  metadata ``emporion-leader``: the agent then reconnects to that leader at once, adding it to
  its masters if it was not one of them.
* ``"zk://h1:p1,h2:p2/path"``: the emulator follows the leader through ZooKeeper, with one
  session for all its agents (:class:`~emporion.testing.emulator_link.LeaderWatch`). When the
  leader changes, or none is known, every agent's session ends at once, as a real agent's does;
  each then reregisters with the new leader after a random pause within
  ``reregister_spread`` seconds, with its backoff reset. While no leader is known the agents
  wait for one.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import random
import time
from collections.abc import Callable, Sequence
from types import TracebackType

import grpc

from emporion.testing.emulated_agent import (
    EmulatedAgent,
    EmulatorCounters,
    Link,
    Mode,
    Reason,
    State,
)
from emporion.testing.emulator_config import (
    DEFAULT_REREGISTER_SPREAD,
    DEFAULT_RESOURCES,
    EmulatorConfig,
    parse_master,
    parse_mode,
)
from emporion.testing.emulator_link import (
    LEADER_METADATA,
    MAX_REDIRECTS,
    AgentLink,
    Channels,
    LeaderWatch,
    MasterList,
    leader_of,
    run_session,
)
from protos.security import ClientCredential, TlsConfig
from protos.v1 import agent_internal_pb2 as ai
from protos.v1 import mesos_pb2

__all__ = ["LEADER_METADATA", "MAX_REDIRECTS", "AgentEmulator", "leader_of"]


class _Outcome(enum.Enum):
    ACCEPTED = "accepted"  # the master registered the agent: reset the backoff
    FAILED = "failed"  # refused or unreachable: back off, try the next master
    RETRY_NOW = "retry"  # no ConnectBatched, or a standby named the leader: reconnect at once


class AgentEmulator:
    """N emulated agents connected to one master (one of several, in turn, or the leader that
    ZooKeeper names).

    ``async with AgentEmulator("127.0.0.1:5050", agents=100) as emulator:`` registers them all
    (or raises ``TimeoutError``) and disconnects them on exit. ``stop()`` keeps the agents'
    state, so a later ``start()`` reregisters them with their tasks, like restarted agents.
    ``master`` is ``host:port``, several (a comma-separated text or a sequence), or a
    ``zk://hosts/path`` URL (see the module docstring).
    """

    def __init__(
        self,
        master: str | Sequence[str],
        agents: int = 1,
        resources: str = DEFAULT_RESOURCES,
        attributes: str = "",
        mode: str | Mode = Mode.FINISH,
        *,
        hostname_prefix: str = "emulated-agent",
        first_index: int = 0,
        channels: int = 1,
        backoff_min: float = 0.5,
        backoff_max: float = 10.0,
        status_update_retry_min: float = 10.0,
        status_update_retry_max: float = 600.0,
        echo_framework_messages: bool = True,
        record_run_task_times: bool = True,
        tick_interval: float = 0.25,
        register_timeout: float = 60.0,
        batched: bool = True,
        zk_session_timeout: float = 10.0,
        reregister_spread: float = DEFAULT_REREGISTER_SPREAD,
        tls: TlsConfig | None = None,
        credential: ClientCredential | None = None,
    ) -> None:
        masters, zk_url = parse_master(master)
        config = EmulatorConfig(
            masters=masters,
            zk_url=zk_url,
            zk_session_timeout=zk_session_timeout,
            reregister_spread=reregister_spread,
            agents=agents,
            resources=resources,
            attributes=attributes,
            mode=parse_mode(mode),
            hostname_prefix=hostname_prefix,
            first_index=first_index,
            channels=channels,
            backoff_min=backoff_min,
            backoff_max=backoff_max,
            status_update_retry_min=status_update_retry_min,
            status_update_retry_max=status_update_retry_max,
            echo_framework_messages=echo_framework_messages,
            record_run_task_times=record_run_task_times,
            tick_interval=tick_interval,
            register_timeout=register_timeout,
            batched=batched,
        )
        self._init(config, Channels(tls, credential))

    @classmethod
    def from_config(cls, config: EmulatorConfig) -> AgentEmulator:
        """An emulator for an already-built configuration."""
        emulator = cls.__new__(cls)
        emulator._init(config, Channels())
        return emulator

    def _init(self, config: EmulatorConfig, channels: Channels) -> None:
        self.config = config
        self.counters = EmulatorCounters(record_run_task_times=config.record_run_task_times)
        self._agents = [
            AgentLink(
                EmulatedAgent(
                    info,
                    config.mode,
                    self.counters,
                    retry_min=config.status_update_retry_min,
                    retry_max=config.status_update_retry_max,
                    echo_framework_messages=config.echo_framework_messages,
                ),
                index,
            )
            for index, info in enumerate(config.agent_infos())
        ]
        # The masters to try in turn: the configured ones, plus leaders named by refusals.
        self._masters = MasterList(config.masters)
        # One ZooKeeper session for all the agents (why: emporion.testing.emulator_link).
        self._watch = (
            LeaderWatch(config.zk_url, config.zk_session_timeout) if config.zk_url else None
        )
        self._channels = channels
        self._ticker: asyncio.Task[None] | None = None
        self._follower: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()  # channels to a former leader
        self._running = False
        self._batched = config.batched  # cleared for good if the master lacks ConnectBatched

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self, *, wait: bool = True) -> None:
        """Connect every agent; with ``wait``, return once all are registered."""
        if self._running:
            raise RuntimeError("the emulator is already running")
        self._running = True
        for agent in self._agents:
            # A restart ends any partition, and binds the events to the running loop.
            agent.dropped = agent.core.lost = False
            agent.wake, agent.ready = asyncio.Event(), asyncio.Event()
            agent.task = asyncio.create_task(self._agent_loop(agent))
        self._ticker = asyncio.create_task(self._tick_loop())
        if self._watch is not None:
            self._follower = asyncio.create_task(self._watch.run(self._leader_changed))
        if wait:
            await self.wait_registered(self.config.register_timeout)

    async def stop(self, *, unregister: bool = False) -> None:
        """Close every stream (``unregister``: tell the master the agents are gone for good).

        The agents keep their ids, tasks and unacknowledged updates for a later ``start()``.
        """
        if not self._running:
            return
        if unregister:
            for agent in self._agents:
                if agent.core.link is Link.REGISTERED:
                    goodbye = ai.UnregisterAgent(message="stopping")
                    agent.send([ai.AgentMessage(unregister_agent=goodbye)])
            await asyncio.sleep(0.1)  # let the writers flush; best effort, as for a real agent
        self._running = False
        tasks = [a.task for a in self._agents if a.task is not None]
        tasks += [t for t in (self._ticker, self._follower) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, *self._closing, return_exceptions=True)
        for agent in self._agents:
            agent.task = None
        self._ticker = self._follower = None
        if self._watch is not None:
            await self._watch.close()
        await self._channels.close()

    async def __aenter__(self) -> AgentEmulator:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- waiting --------------------------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
        """Poll ``predicate`` until it holds; ``TimeoutError`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not reached within {timeout} s")
            await asyncio.sleep(0.01)

    async def wait_registered(self, timeout: float = 60.0) -> None:
        """Wait until every agent that is not lost or shut down is registered."""

        agents = self._agents
        settled = 0  # agents[:settled] were seen registered; a pass resumes after them

        def is_settled(a: AgentLink) -> bool:
            return a.core.link in (Link.REGISTERED, Link.SHUT_DOWN) or a.core.lost

        def ready() -> bool:
            # Scanning every agent each poll cost the emulator O(agents) every 10 ms while
            # 50,000 registered; a cursor makes the wait O(agents) in all, with one full pass
            # at the end to confirm none fell back meanwhile.
            nonlocal settled
            while settled < len(agents) and is_settled(agents[settled]):
                settled += 1
            if settled < len(agents):
                return False
            if all(is_settled(a) for a in agents):
                return True
            settled = 0
            return False

        try:
            await self.wait_for(ready, timeout)
        except TimeoutError:
            waiting = [a for a in self._agents if a.core.link is not Link.REGISTERED]
            why = waiting[0].last_failure or waiting[0].core.last_error or "no answer"
            raise TimeoutError(
                f"{len(waiting)} of {len(self._agents)} agents not registered after {timeout} s "
                f"(first: {waiting[0].core.agent_info.hostname}: {why})"
            ) from None

    # -- queries --------------------------------------------------------------------------------

    @property
    def agents(self) -> list[EmulatedAgent]:
        """The agents' cores, in index order (read them; steer them through this class)."""
        return [a.core for a in self._agents]

    @property
    def batched(self) -> bool:
        """Whether the agents use ``ConnectBatched`` (False once the master lacked it)."""
        return self._batched

    @property
    def agent_ids(self) -> list[str]:
        """Ids of the agents the master has registered."""
        return [a.core.agent_id for a in self._agents if a.core.agent_id is not None]

    def agent(self, agent_id: str) -> EmulatedAgent:
        """The core of the agent with this id; ``KeyError`` if none."""
        return self._runtime(agent_id).core

    def master_of(self, agent_id: str) -> str | None:
        """The address of the master the agent is registered with now (None between
        sessions); ``KeyError`` if no agent has this id."""
        agent = self._runtime(agent_id)
        return agent.master if agent.core.link is Link.REGISTERED else None

    @property
    def leader(self) -> str | None:
        """With a ``zk://`` master: the leading master's address as ZooKeeper last named it
        (None while none is known, or before ``start()``). None in list mode."""
        return None if self._watch is None else self._watch.address

    def task_state(self, task_id: str, framework_id: str | None = None) -> State | None:
        """Newest state of a task held by some agent, or None if no agent holds it."""
        found = self._find_task(task_id, framework_id)
        return None if found is None else found[0].core.tasks[found[1]].state

    def validate(self) -> None:
        """Every agent's invariants, plus: a stream exists only while the loop runs."""
        for agent in self._agents:
            agent.core.validate()
            assert self._running or agent.call is None, "stream left open after stop()"

    # -- steering -------------------------------------------------------------------------------

    def update(
        self,
        task_id: str,
        state: State,
        *,
        framework_id: str | None = None,
        reason: Reason | None = None,
        message: str = "",
    ) -> None:
        """Send a status update for a running task (any state, e.g. TASK_RUNNING in manual mode).

        ``KeyError`` if no agent holds the task, ``ValueError`` if it is already terminal.
        """
        found = self._find_task(task_id, framework_id)
        if found is None:
            raise KeyError(f"no emulated agent holds task {task_id!r}")
        agent, key = found
        out = agent.core.update(key[0], key[1], state, time.time(), reason=reason, message=message)
        agent.send(out)

    def finish(
        self,
        task_id: str,
        state: State = mesos_pb2.TASK_FINISHED,
        *,
        framework_id: str | None = None,
    ) -> None:
        """End a task (TASK_FINISHED unless another ``state`` is given)."""
        self.update(task_id, state, framework_id=framework_id)

    def fail(
        self,
        task_id: str,
        *,
        framework_id: str | None = None,
        reason: Reason | None = None,
        message: str = "task failed (emulated)",
    ) -> None:
        """Make a task fail (TASK_FAILED with the given reason and message)."""
        failed = mesos_pb2.TASK_FAILED
        self.update(task_id, failed, framework_id=framework_id, reason=reason, message=message)

    def lose_agent(self, agent_id: str, *, drop_stream: bool = True) -> None:
        """Make an agent unreachable: it stops answering pings (and everything else).

        With ``drop_stream`` its stream is closed too and it does not reconnect; without, the
        stream stays open, as in a partition the TCP connection has not noticed yet.
        """
        agent = self._runtime(agent_id)
        agent.core.lost = True
        if drop_stream:
            agent.dropped = True
            agent.kick()

    def restore_agent(self, agent_id: str) -> None:
        """Bring a lost agent back: it answers again, reregistering if its stream was dropped."""
        agent = self._runtime(agent_id)
        agent.core.lost = False
        agent.dropped = False
        agent.wake.set()

    def restart_agent(self, agent_id: str) -> None:
        """Break an agent's stream so that it reregisters at once, with its tasks."""
        agent = self._runtime(agent_id)
        agent.kick()
        agent.wake.set()

    def send_framework_message(
        self, agent_id: str, framework_id: str, executor_id: str, data: bytes
    ) -> None:
        """Send data from an executor to its scheduler (best effort, like the real thing)."""
        message = ai.ExecutorToFramework(data=data)
        message.framework_id.value = framework_id
        message.executor_id.value = executor_id
        self._runtime(agent_id).send([ai.AgentMessage(executor_to_framework=message)])

    # -- internals ------------------------------------------------------------------------------

    def _runtime(self, agent_id: str) -> AgentLink:
        for agent in self._agents:
            if agent.core.agent_id == agent_id:
                return agent
        raise KeyError(f"no emulated agent has id {agent_id!r}")

    def _find_task(
        self, task_id: str, framework_id: str | None
    ) -> tuple[AgentLink, tuple[str, str]] | None:
        for agent in self._agents:
            if framework_id is not None:
                if (framework_id, task_id) in agent.core.tasks:
                    return agent, (framework_id, task_id)
                continue
            for key in agent.core.tasks:
                if key[1] == task_id:
                    return agent, key
        return None

    def _delay(self, failures: int) -> float:
        """Jittered exponential backoff; after a session that worked, a short random pause."""
        cfg = self.config
        if failures == 0:
            return random.uniform(0, cfg.backoff_min)  # spreads a reconnection stampede
        cap = min(cfg.backoff_max, cfg.backoff_min * 2 ** min(failures - 1, 30))
        return random.uniform(cap / 2, cap)

    def _finished(self, core: EmulatedAgent) -> bool:
        return not self._running or core.shut_down

    def _leader_changed(self, address: str | None) -> None:
        """ZooKeeper names another leader (or none): every session ends now, and each agent
        rejoins after its own random pause, with a fresh backoff."""
        for agent in self._agents:
            agent.moved = True
            agent.kick()
            agent.wake.set()
        # The streams to the old leader were just cancelled; its channels serve no one now.
        closing = asyncio.get_running_loop().create_task(self._channels.close(keep=address))
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)

    async def _agent_loop(self, agent: AgentLink) -> None:
        failures = 0
        core = agent.core
        watch = self._watch
        while not self._finished(core):
            if core.lost and agent.dropped:
                agent.wake.clear()
                await agent.wake.wait()
                continue
            if watch is None:
                target = self._masters.target(agent)
            else:
                if agent.moved:
                    agent.moved, failures = False, 0
                    await asyncio.sleep(random.uniform(0, self.config.reregister_spread))
                    continue  # look again: lost, stopped, or moved once more meanwhile
                if watch.address is None:
                    await watch.wait_known()  # the change sets ``moved``: a pause, then go
                    continue
                target = watch.address
            agent.wake.clear()
            outcome = await self._session(agent, target)
            if outcome is _Outcome.ACCEPTED:
                failures = 0
                agent.redirects = 0
            elif outcome is _Outcome.FAILED:
                failures += 1
                if watch is None:
                    self._masters.failed(agent)  # try the next master, if there are several
            if self._finished(core):
                return
            if agent.wake.is_set() or outcome is _Outcome.RETRY_NOW:
                continue  # leader change / restart_agent / restore_agent / fallback: at once
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(agent.wake.wait(), self._delay(failures))

    async def _session(self, agent: AgentLink, target: str) -> _Outcome:
        """One stream with ``target``, and what to do next."""
        batched = self._batched
        stub = self._channels.stub(target, agent.index % self.config.channels)
        end = await run_session(agent, target, stub, batched)
        error = end.error
        if error is None:
            return _Outcome.ACCEPTED if end.accepted else _Outcome.FAILED
        if batched and error.code() is grpc.StatusCode.UNIMPLEMENTED:
            self._batched = False  # an older master: one message per stream message
            return _Outcome.RETRY_NOW
        if self._watch is not None:
            # A refusal naming another leader is a view older or newer than ZooKeeper's as we
            # see it; ZooKeeper settles it, and a change of leader ends the backoff.
            return _Outcome.ACCEPTED if end.accepted else _Outcome.FAILED
        if self._masters.refused(agent, error) and not end.accepted:
            return _Outcome.RETRY_NOW
        # A registered agent just pauses, as after any end (towards the leader named, if any).
        return _Outcome.ACCEPTED if end.accepted else _Outcome.FAILED

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick_interval)
            now = time.time()
            for agent in self._agents:
                core = agent.core
                if core.link is not Link.REGISTERED:
                    continue
                if core.master_lost(now):
                    agent.last_failure = "no ping from the master within its ping timeout"
                    agent.kick()
                    continue
                retries = core.tick(now)
                if retries:
                    agent.send(retries)


if __name__ == "__main__":
    from emporion.testing.emulator_cli import main

    raise SystemExit(main())
