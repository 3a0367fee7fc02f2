"""Emulate thousands of agents in one process, over the internal agent protocol.

:class:`AgentEmulator` registers N agents with a master (one ``AgentGateway`` stream per
agent, all multiplexed over one gRPC channel), answers pings, runs the tasks it is sent according
to its :class:`~emporion.testing.emulated_agent.Mode`, retries status updates until they are
acknowledged, and reregisters with its tasks whenever the stream breaks.
Each agent's behaviour lives in a sans-I/O
:class:`~emporion.testing.emulated_agent.EmulatedAgent`; this module is the asyncio runtime around
those cores: it alone mutates them, from one loop.

Tests steer it (``finish``, ``fail``, ``lose_agent``, ``restore_agent``, ``restart_agent``) and
benchmarks read its :class:`~emporion.testing.emulated_agent.EmulatorCounters`.

Command line (runs until SIGINT/SIGTERM, printing its counters as JSON)::

    python -m emporion.testing.agent_emulator --master HOST:PORT --agents N [--mode run]

Each agent uses ``ConnectBatched`` when the master serves it: whatever the agent has ready when
its writer runs (all the RUNNING updates for a batch of RunTasks, say) goes out in one stream
message, which is what makes thousands of launches per second affordable in Python. Against a
master without it (``UNIMPLEMENTED``) the emulator falls back to ``Connect`` for good.

With several masters (``--master a:1,b:2``) a refused or broken agent tries the next one after a
backoff; a master that does not lead refuses with UNAVAILABLE and names the leader in the
trailing metadata ``emporion-leader``: the agent then reconnects to that leader at once, adding
it to its masters if it was not one of them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import enum
import json
import os
import random
import signal
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeAlias

import grpc
import grpc.aio

from emporion.testing.emulated_agent import (
    EmulatedAgent,
    EmulatorCounters,
    Link,
    Mode,
    Reason,
    State,
)
from emporion.testing.emulator_config import (
    DEFAULT_RESOURCES,
    EmulatorConfig,
    parse_masters,
    parse_mode,
)
from protos.v1 import agent_internal_pb2 as ai
from protos.v1 import agent_internal_pb2_grpc as ai_grpc
from protos.v1 import mesos_pb2

_CHANNEL_OPTIONS: list[tuple[str, int]] = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    # Each emulator gets its own connections rather than sharing gRPC's global subchannels.
    ("grpc.use_local_subchannel_pool", 1),
]


_AnyCall: TypeAlias = (
    grpc.aio.StreamStreamCall[ai.AgentMessage, ai.MasterMessage]
    | grpc.aio.StreamStreamCall[ai.AgentMessages, ai.MasterMessages]
)


LEADER_METADATA = "emporion-leader"
"""Trailing metadata of a refusal by a master that does not lead: the leader's ``host:port``."""

MAX_REDIRECTS = 3
"""Refusals naming a leader that an agent follows at once, in a row, before backing off."""


def leader_of(error: grpc.aio.AioRpcError) -> str | None:
    """The leader's address an UNAVAILABLE refusal names (``emporion-leader``), else None."""
    if error.code() is not grpc.StatusCode.UNAVAILABLE:
        return None
    metadata: Any = error.trailing_metadata() or ()
    for key, value in metadata:
        if key == LEADER_METADATA:
            text = value.decode() if isinstance(value, bytes) else str(value)
            return text.strip() or None
    return None


class _Outcome(enum.Enum):
    ACCEPTED = "accepted"  # the master registered the agent: reset the backoff
    FAILED = "failed"  # refused or unreachable: back off, try the next master
    RETRY_NOW = "retry"  # no ConnectBatched, or a standby named the leader: reconnect at once


@dataclass(eq=False)
class _AgentRuntime:
    """The I/O side of one emulated agent: its current stream and reconnection state."""

    core: EmulatedAgent
    index: int
    master_index: int = 0
    call: _AnyCall | None = None  # the live stream, if any
    outbox: list[ai.AgentMessage] = field(default_factory=list)  # written by the writer task
    ready: asyncio.Event = field(default_factory=asyncio.Event)  # the outbox has something
    kicked: bool = False  # we cancelled the stream on purpose (lost, restart, master lost)
    dropped: bool = False  # lost with its stream dropped: stays away until restored
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    last_failure: str = ""
    redirects: int = 0  # refusals naming a leader followed at once since the last registration


class AgentEmulator:
    """N emulated agents connected to one master (or one of several, in turn).

    ``async with AgentEmulator("127.0.0.1:5050", agents=100) as emulator:`` registers them all
    (or raises ``TimeoutError``) and disconnects them on exit. ``stop()`` keeps the agents'
    state, so a later ``start()`` reregisters them with their tasks, like restarted agents.
    """

    def __init__(
        self,
        master_address: str | Sequence[str],
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
    ) -> None:
        config = EmulatorConfig(
            masters=parse_masters(master_address),
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
        self._init(config)

    @classmethod
    def from_config(cls, config: EmulatorConfig) -> AgentEmulator:
        """An emulator for an already-built configuration."""
        emulator = cls.__new__(cls)
        emulator._init(config)
        return emulator

    def _init(self, config: EmulatorConfig) -> None:
        self.config = config
        self.counters = EmulatorCounters(record_run_task_times=config.record_run_task_times)
        self._agents = [
            _AgentRuntime(
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
        self._masters: list[str] = list(config.masters)
        self._channels: dict[tuple[int, int], grpc.aio.Channel] = {}
        self._stubs: dict[tuple[int, int], ai_grpc.AgentGatewayAsyncStub] = {}
        self._ticker: asyncio.Task[None] | None = None
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
                    self._send(agent, [ai.AgentMessage(unregister_agent=goodbye)])
            await asyncio.sleep(0.1)  # let the writers flush; best effort, as for a real agent
        self._running = False
        tasks = [a.task for a in self._agents if a.task is not None]
        if self._ticker is not None:
            tasks.append(self._ticker)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for agent in self._agents:
            agent.task = None
        self._ticker = None
        channels = list(self._channels.values())
        self._channels.clear()
        self._stubs.clear()
        await asyncio.gather(*(c.close(None) for c in channels), return_exceptions=True)

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

        def ready() -> bool:
            return all(
                a.core.link in (Link.REGISTERED, Link.SHUT_DOWN) or a.core.lost
                for a in self._agents
            )

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
        self._send(agent, out)

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
            self._kick(agent)

    def restore_agent(self, agent_id: str) -> None:
        """Bring a lost agent back: it answers again, reregistering if its stream was dropped."""
        agent = self._runtime(agent_id)
        agent.core.lost = False
        agent.dropped = False
        agent.wake.set()

    def restart_agent(self, agent_id: str) -> None:
        """Break an agent's stream so that it reregisters at once, with its tasks."""
        agent = self._runtime(agent_id)
        self._kick(agent)
        agent.wake.set()

    def send_framework_message(
        self, agent_id: str, framework_id: str, executor_id: str, data: bytes
    ) -> None:
        """Send data from an executor to its scheduler (best effort, like the real thing)."""
        message = ai.ExecutorToFramework(data=data)
        message.framework_id.value = framework_id
        message.executor_id.value = executor_id
        self._send(self._runtime(agent_id), [ai.AgentMessage(executor_to_framework=message)])

    # -- internals ------------------------------------------------------------------------------

    def _runtime(self, agent_id: str) -> _AgentRuntime:
        for agent in self._agents:
            if agent.core.agent_id == agent_id:
                return agent
        raise KeyError(f"no emulated agent has id {agent_id!r}")

    def _find_task(
        self, task_id: str, framework_id: str | None
    ) -> tuple[_AgentRuntime, tuple[str, str]] | None:
        for agent in self._agents:
            if framework_id is not None:
                if (framework_id, task_id) in agent.core.tasks:
                    return agent, (framework_id, task_id)
                continue
            for key in agent.core.tasks:
                if key[1] == task_id:
                    return agent, key
        return None

    def _send(self, agent: _AgentRuntime, messages: list[ai.AgentMessage]) -> None:
        if agent.call is not None and messages:
            agent.outbox += messages
            agent.ready.set()

    def _kick(self, agent: _AgentRuntime) -> None:
        if agent.call is not None:
            agent.kicked = True
            agent.call.cancel()

    def _stub(self, agent: _AgentRuntime) -> ai_grpc.AgentGatewayAsyncStub:
        master = agent.master_index % len(self._masters)
        key = (master, agent.index % self.config.channels)
        stub = self._stubs.get(key)
        if stub is None:
            channel = grpc.aio.insecure_channel(
                self._masters[master], options=[*_CHANNEL_OPTIONS, ("emporion.ch", key[1])]
            )
            self._channels[key] = channel
            stub = self._stubs[key] = ai_grpc.AgentGatewayStub(channel)
        return stub

    def _delay(self, failures: int) -> float:
        """Jittered exponential backoff; after a session that worked, a short random pause."""
        cfg = self.config
        if failures == 0:
            return random.uniform(0, cfg.backoff_min)  # spreads a reconnection stampede
        cap = min(cfg.backoff_max, cfg.backoff_min * 2 ** min(failures - 1, 30))
        return random.uniform(cap / 2, cap)

    def _finished(self, core: EmulatedAgent) -> bool:
        return not self._running or core.shut_down

    async def _agent_loop(self, agent: _AgentRuntime) -> None:
        failures = 0
        core = agent.core
        while not self._finished(core):
            if core.lost and agent.dropped:
                agent.wake.clear()
                await agent.wake.wait()
                continue
            agent.wake.clear()
            outcome = await self._session(agent)
            if outcome is _Outcome.ACCEPTED:
                failures = 0
                agent.redirects = 0
            elif outcome is _Outcome.FAILED:
                failures += 1
                agent.master_index += 1  # try the next master, if there are several
            if self._finished(core):
                return
            if agent.wake.is_set() or outcome is _Outcome.RETRY_NOW:
                continue  # restart_agent / restore_agent / protocol fallback: at once
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(agent.wake.wait(), self._delay(failures))

    async def _session(self, agent: _AgentRuntime) -> _Outcome:
        """One stream, from hello to its end."""
        core = agent.core
        batched = self._batched
        stub = self._stub(agent)
        call: _AnyCall = stub.ConnectBatched(None) if batched else stub.Connect(None)
        agent.call, agent.kicked = call, False
        agent.outbox = [core.hello()]
        agent.ready.set()
        writer = asyncio.create_task(self._write(call, agent, batched))
        outcome = _Outcome.FAILED
        try:
            handle = core.handle
            while True:
                received = await call.read()
                if isinstance(received, ai.MasterMessages):
                    messages: Iterable[ai.MasterMessage] = received.messages
                elif isinstance(received, ai.MasterMessage):
                    messages = (received,)
                else:  # grpc.aio.EOF
                    agent.last_failure = "stream ended by the master"
                    break
                now = time.time()
                outbox = agent.outbox
                for message in messages:
                    outbox += handle(message, now)
                if outbox:
                    agent.ready.set()
                if core.link is Link.REGISTERED:
                    outcome = _Outcome.ACCEPTED
                elif core.shut_down:
                    break
        except grpc.aio.AioRpcError as error:
            if batched and error.code() is grpc.StatusCode.UNIMPLEMENTED:
                self._batched = False  # an older master: one message per stream message
                outcome = _Outcome.RETRY_NOW
            elif self._follow_leader(agent, error) and outcome is not _Outcome.ACCEPTED:
                outcome = _Outcome.RETRY_NOW  # a registered agent just pauses, as after any end
            agent.last_failure = f"{error.code().name}: {error.details()}"
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not agent.kicked or (task is not None and task.cancelling()):
                raise
            agent.last_failure = "stream closed by the emulator"
        finally:
            writer.cancel()
            call.cancel()
            agent.call = None
            agent.outbox = []
            core.disconnected()
        return outcome

    def _follow_leader(self, agent: _AgentRuntime, error: grpc.aio.AioRpcError) -> bool:
        """Point the agent at the leader a standby's refusal names (UNAVAILABLE with
        ``emporion-leader``), adding it to the masters if new; whether to reconnect at once.

        Only ``MAX_REDIRECTS`` in a row are followed at once: masters that name each other
        (a stale view during an election) then get the usual backoff instead of a spin.
        """
        leader = leader_of(error)
        if leader is None or agent.redirects >= MAX_REDIRECTS:
            agent.redirects = 0
            return False
        if leader not in self._masters:
            self._masters.append(leader)
        agent.master_index = self._masters.index(leader)
        agent.redirects += 1
        return True

    @staticmethod
    async def _write(call: _AnyCall, agent: _AgentRuntime, batched: bool) -> None:
        """Send what the agent has queued: everything ready in one write when batched."""
        ready = agent.ready
        try:
            while True:
                await ready.wait()
                ready.clear()
                pending, agent.outbox = agent.outbox, []
                if not pending:
                    continue
                if batched:
                    await call.write(ai.AgentMessages(messages=pending))  # type: ignore[arg-type]
                else:
                    for message in pending:
                        await call.write(message)  # type: ignore[arg-type]
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            return  # the stream is over; the reader notices and reconnects

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
                    self._kick(agent)
                    continue
                retries = core.tick(now)
                if retries:
                    self._send(agent, retries)


# -- command line -------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> tuple[EmulatorConfig, float]:
    """Command-line flags (``--master`` defaults to ``EMPORION_MASTER``) as a configuration,
    and the interval between counter reports (0: only at exit)."""
    parser = argparse.ArgumentParser(
        prog="python -m emporion.testing.agent_emulator",
        description="Emulate many Emporion agents against a master.",
    )
    parser.add_argument(
        "--master",
        default=os.environ.get("EMPORION_MASTER"),
        help="host:port of the master (comma-separated for several)",
    )
    parser.add_argument("--agents", type=int, default=1)
    parser.add_argument("--resources", default=DEFAULT_RESOURCES)
    parser.add_argument("--attributes", default="")
    parser.add_argument("--mode", default="finish", choices=[m.value for m in Mode])
    parser.add_argument("--hostname-prefix", default="emulated-agent")
    parser.add_argument("--first-index", type=int, default=0)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument(
        "--unbatched",
        action="store_true",
        help="use Connect (one message per stream message) instead of ConnectBatched",
    )
    parser.add_argument(
        "--stats-interval",
        type=float,
        default=0.0,
        help="print the counters as JSON every S seconds (0: only at exit)",
    )
    ns = parser.parse_args(argv)
    if not ns.master:
        parser.error("--master is required (or set EMPORION_MASTER)")
    try:
        config = EmulatorConfig(
            masters=parse_masters(ns.master),
            agents=ns.agents,
            resources=ns.resources,
            attributes=ns.attributes,
            mode=parse_mode(ns.mode),
            hostname_prefix=ns.hostname_prefix,
            first_index=ns.first_index,
            channels=ns.channels,
            record_run_task_times=False,
            batched=not ns.unbatched,
        )
    except ValueError as error:
        parser.error(str(error))
    return config, ns.stats_interval


def counters_json(counters: EmulatorCounters) -> str:
    """The counters as one JSON line (lists summarised by their length)."""
    figures = {
        name: (len(value) if isinstance(value, list | dict) else value)
        for name, value in vars(counters).items()
        if name != "record_run_task_times"
    }
    return json.dumps(figures, sort_keys=True)


async def _serve(config: EmulatorConfig, stats_interval: float) -> None:
    emulator = AgentEmulator.from_config(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await emulator.start(wait=False)
    try:
        await emulator.wait_registered(config.register_timeout)
        print(f"registered {config.agents} agents with {','.join(config.masters)}", flush=True)
        while not stop.is_set():
            timeout = stats_interval if stats_interval > 0 else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout)
            if stats_interval > 0:
                print(counters_json(emulator.counters), flush=True)
    finally:
        await emulator.stop()
        print(counters_json(emulator.counters), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator until interrupted."""
    config, stats_interval = parse_args(argv)
    try:
        asyncio.run(_serve(config, stats_interval))
    except TimeoutError as error:
        print(f"agent_emulator: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
