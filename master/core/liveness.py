"""Agent liveness: HTTP/2 keepalive in gRPC's C core, and a rare application-level ping.

Mesos pings every agent every ``agent_ping_timeout`` and takes one that misses
``max_agent_ping_timeouts`` pings in a row for unreachable. Here a ping and its pong are a gRPC
message each way, handled in Python on both sides: at 10,000 agents that was about a third of
the master's core with nothing else happening. So the liveness of the *connection* is left to
gRPC's C core: HTTP/2 keepalive PINGs on each agent's connection, every
``agent_ping_timeout``, cost no Python (:mod:`master.runtime.registration` has the options),
and a peer that stops answering them (a frozen or dead host, a SIGSTOPped agent) breaks the
stream, which reaches this module as :func:`connection_closed`: the agent is DISCONNECTED at
once, and unreachable ``agent_ping_timeout x max_agent_ping_timeouts`` later unless it
reregisters, the same deadline as Mesos's. The application-level ping remains as a rare
check that the agent's own loop still answers (its process alive, its transport acking, its
Python wedged): once per :func:`ping_interval` (24 timeouts, two minutes by default), spread
over the interval by agent id so that agents registered together are not pinged together;
once one goes unanswered, it is repeated every ``agent_ping_timeout`` and the agent is
unreachable after ``max_agent_ping_timeouts`` misses, as before. (A ping and its pong cost the
master about 0.37 ms of CPU, most of it gRPC's per-message work: once a minute at 50,000 agents
would be about 30 % of a core idle.) The agent is told the interval, and waits ``interval +
deadline`` for a ping before it takes the master for lost. docs/ha.md ("Agent liveness") has
the whole design and its measurements.

This module keeps each agent's ping schedule (one ``("ping", agent_id)`` timer, whose misses
count on :class:`~master.core.model.Agent`) and decides when an agent has been silent too
long; what follows from that (its tasks lost or unreachable, frameworks told) is the agent
lifecycle's, :func:`master.core.agents.mark_unreachable`, which the master calls when
:func:`ping_due` says so. The dependency goes one way: :mod:`master.core.agents` starts and
stops pinging as agents (re)register and leave, and this module knows nothing of it.
"""

from __future__ import annotations

import zlib

from master.config import MasterConfig
from master.core.model import Agent, AgentPhase
from master.core.offers import remove_offer
from master.core.state import MasterState, log
from protos.v1 import agent_internal_pb2

__all__ = [
    "PING_INTERVAL_TIMEOUTS",
    "announce_pings",
    "connection_closed",
    "ping_due",
    "ping_interval",
    "pong",
    "start_pinging",
    "stop_pinging",
]

PING_INTERVAL_TIMEOUTS = 24
"""An answering agent is pinged once per this many ``agent_ping_timeout`` (see the module doc)."""


def ping_interval(config: MasterConfig) -> float:
    """Seconds between application-level pings of an agent that answers them."""
    return config.agent_ping_timeout * PING_INTERVAL_TIMEOUTS


def _spread(agent_id: str) -> float:
    """A fraction in [0, 1) fixed by the agent id (deterministic, for the simulator)."""
    return zlib.crc32(agent_id.encode()) / 2**32


def announce_pings(
    config: MasterConfig,
    body: agent_internal_pb2.AgentRegistered | agent_internal_pb2.AgentReregistered,
) -> None:
    """Tell a (re)registered agent the ping interval, and how long it waits for a ping (the
    interval and the deadline) before it takes the master for lost."""
    interval = ping_interval(config)
    body.ping_interval_seconds = interval
    body.ping_timeout_seconds = interval + config.agent_ping_deadline


def start_pinging(state: MasterState, agent: Agent, now: float) -> None:
    """The agent (re)registered on a connection: no ping outstanding, the first one due
    somewhere in the first interval, so that a thousand agents registering (or coming back
    after a failover) together are not pinged together ever after."""
    agent.awaiting_pong = False
    agent.pings_missed = 0
    first = now + ping_interval(state.config) * _spread(agent.agent_id)
    state.timers.set(("ping", agent.agent_id), first)


def stop_pinging(state: MasterState, agent_id: str) -> None:
    """The agent is unreachable or removed: no more pings, no more deadlines."""
    state.timers.cancel(("ping", agent_id))


def connection_closed(state: MasterState, connection_id: str, now: float) -> None:
    """An agent's connection ended: it is DISCONNECTED (offers rescinded, tasks kept)."""
    agent_id = state.connections.pop(connection_id, None)
    if agent_id is None:
        return
    agent = state.agents[agent_id]
    if agent.connection_id != connection_id:
        return
    agent.connection_id = None
    agent.phase = AgentPhase.DISCONNECTED
    # Unreachable after the ping deadline unless it comes back: the misses count from now.
    agent.awaiting_pong = True
    agent.pings_missed = 0
    state.timers.set(("ping", agent_id), now + state.config.agent_ping_timeout)
    for offer_id in sorted(agent.offers):
        remove_offer(state, state.offers[offer_id], now, rescind=True)
    if agent.in_allocator:
        state.allocator.deactivate_agent(agent_id)
    log.info("agent %s disconnected", agent_id)


def ping_due(state: MasterState, agent_id: str, now: float) -> bool:
    """Time to ping: count the last ping as missed if unanswered, then ping again; the answer
    is due within ``agent_ping_timeout`` (a disconnected agent is sent nothing, its misses
    count all the same).

    Returns True when the agent has missed ``max_agent_ping_timeouts`` pings: it is then
    neither pinged nor scheduled again, and the caller marks it unreachable
    (:func:`master.core.agents.mark_unreachable`, which depends on this module).
    """
    agent = state.agents.get(agent_id)
    if agent is None or agent.phase not in (AgentPhase.CONNECTED, AgentPhase.DISCONNECTED):
        return False
    if agent.awaiting_pong:
        agent.pings_missed += 1
        if agent.pings_missed >= state.config.max_agent_ping_timeouts:
            return True
    if agent.connection_id is not None:
        agent.ping_seq += 1
        message = agent_internal_pb2.MasterMessage()
        message.ping.seq = agent.ping_seq
        state.send_to_agent(agent, message)
    agent.awaiting_pong = True
    state.timers.set(("ping", agent_id), now + state.config.agent_ping_timeout)
    return False


def pong(state: MasterState, agent: Agent, seq: int) -> None:
    """The agent answered the ping ``seq``: the next one is due a :func:`ping_interval` after
    it was sent (its answer was due ``agent_ping_timeout`` after that, the timer set now)."""
    if seq != agent.ping_seq or not agent.awaiting_pong:
        return
    agent.awaiting_pong = False
    agent.pings_missed = 0
    key = ("ping", agent.agent_id)
    answer_due = state.timers.get(key)
    if answer_due is not None:
        config = state.config
        state.timers.set(key, answer_due + ping_interval(config) - config.agent_ping_timeout)
