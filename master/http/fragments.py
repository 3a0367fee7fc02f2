"""``/master/slaves`` and ``/master/state-summary`` assembled from each agent's remembered JSON.

At 50,000 agents both answers are tens of megabytes, and building their dicts and encoding
them took seconds of the master's one event loop per request (every agent and framework waits
meanwhile). Between two requests few agents change, so :class:`StateFragments` keeps, per
agent, the bytes of its JSON object (:func:`master.core.snapshot.agent_json` encoded as
:func:`protos.mesos_json.answer` encodes, without the closing brace) with what they were built
from, and a request re-encodes only the agents that changed; the answer is the remembered
bytes joined. They are exactly the bytes of ``json.dumps`` of the uncached functions (tests
compare them after every kind of change).

What ``agent_json`` reads is compared cheaply: the AgentInfo message by identity (the core
replaces an agent's info on reregistration and never changes it in place), total resources
and capabilities by identity (immutable, replaced whole), phase, registration time and
version, the tasks and executors whose resources count as used by identity (a task's
resources never change), and what the agent's offers offer by value (the JSON of a
``Resources`` is remembered by value in :mod:`master.core.snapshot` too), so that an offer
declined and made again alike changes nothing. That costs about a microsecond per agent, and
allocates nothing for an agent without tasks: building and encoding cost tens.

state-summary adds to each agent its task counts by state and its frameworks' ids; those
depend on the reader (the ``view_*`` ACLs), so they are computed per request as a small value
(:func:`master.core.summary.agent_summary_counts`) whose JSON is remembered by value: most
agents share a few. A framework's summary is remembered the same way (its offers by id), its
counts encoded per request. Nothing here changes the core's state; everything runs on the
master's loop, between two inputs.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable
from typing import Any

from master.core import AgentPhase, Master
from master.core.model import Agent, Framework, Task
from master.core.operator_json import Visibility, task_visibility
from master.core.snapshot import (
    REGISTERED_PHASES,
    agent_head_json,
    agent_info_json,
    agent_resources_json,
    agent_tail_json,
    framework_summary,
    offered_resources,
    used_resources,
)
from master.core.state import MasterState
from master.core.summary import (
    SummaryCounts,
    agent_summary_counts,
    completed_tasks_by_agent,
    framework_count_fields,
    summary_count_fields,
)
from protos.resources import Resources

__all__ = ["StateFragments", "encode"]

_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_REMEMBERED_MAX = 65_536
"""Values whose JSON is remembered (more: forgotten, and remembered afresh)."""

_Key = tuple[Any, ...]


def encode(data: Any) -> bytes:
    """``data`` as the read-only endpoints encode it (``protos.mesos_json.answer``)."""
    return _ENCODER.encode(data).encode()


def _open(data: dict[str, Any]) -> bytes:
    """A non-empty JSON object's bytes without the closing brace (fields may follow)."""
    return encode(data)[:-1]


def _held(holders: Agent | Framework) -> tuple[object, ...]:
    """The tasks and executors whose resources count as used (they never change theirs)."""
    tasks, executors = holders.tasks, holders.executors
    if not tasks and not executors:
        return ()
    return (
        *(t for t in tasks.values() if t.allocated),
        *(e for e in executors.values() if e.allocated),
    )


class _SharedJson:
    """The fields of agents' JSON that agents alike share, remembered by the values they
    show: the resource fields (``,"resources":...,"unreserved_resources":...``) by the
    (total, used, offered) resources, and the last ones (``,"active":...}``) by (phase,
    version, capabilities). Building and encoding them was most of the cost of an agent."""

    def __init__(self) -> None:
        self._resources: dict[tuple[Resources, Resources, Resources], bytes] = {}
        self._tails: dict[tuple[object, str, frozenset[str]], bytes] = {}

    def resources(self, total: Resources, used: Resources, offered: Resources) -> bytes:
        key = (total, used, offered)
        fields = self._resources.get(key)
        if fields is None:
            if len(self._resources) >= _REMEMBERED_MAX:
                self._resources.clear()
            fields = b"," + encode(agent_resources_json(total, used, offered))[1:-1]
            self._resources[key] = fields
        return fields

    def tail(self, agent: Agent) -> bytes:
        key = (agent.phase, agent.version, agent.capabilities)
        fields = self._tails.get(key)
        if fields is None:
            if len(self._tails) >= _REMEMBERED_MAX:
                self._tails.clear()
            fields = self._tails[key] = b"," + encode(agent_tail_json(agent))[1:]
        return fields


class _AgentEntry:
    """An agent's JSON and what it was built from: what
    :func:`~master.core.snapshot.agent_json` reads of the agent (module docstring)."""

    __slots__ = (
        "capabilities",
        "held",
        "info",
        "json",
        "offered",
        "phase",
        "registered_at",
        "total",
        "version",
    )

    def __init__(self, state: MasterState, agent: Agent, shared: _SharedJson) -> None:
        self.info = agent.info
        self.registered_at = agent.registered_at
        self.total = agent.total
        self.phase = agent.phase
        self.version = agent.version
        self.capabilities = agent.capabilities
        self.held = _held(agent)
        self.offered = offered_resources(state, agent.offers)
        # agent_json's fields in its order, unclosed.
        self.json = b"".join(
            (
                _open(agent_head_json(agent)),
                shared.resources(agent.total, used_resources(agent), self.offered),
                shared.tail(agent)[:-1],
            )
        )

    def matches(self, state: MasterState, agent: Agent) -> bool:
        """Whether ``agent`` is still as it was (module docstring; an equal but new value
        compared by identity is taken as a change, which costs only an encoding)."""
        return (
            self.info is agent.info
            and self.total is agent.total
            and self.phase is agent.phase
            and self.registered_at == agent.registered_at
            and self.version == agent.version
            and self.capabilities is agent.capabilities
            and self.held == _held(agent)
            and self.offered == offered_resources(state, agent.offers)
        )


def _framework_key(fw: Framework) -> _Key:
    """What :func:`~master.core.snapshot.framework_summary` reads of ``fw`` (as above: the
    FrameworkInfo is replaced on an update, never changed in place)."""
    return (fw.info, fw.phase, _held(fw), frozenset(fw.offers))


class StateFragments:
    """StateFragments remembers each agent's and framework's JSON for the state endpoints of
    one HTTP app (module docstring).

    Every method takes the master to answer for; what was remembered of another (a previous
    leadership) is dropped, and so is everything remembered of a master once it is gone (a
    leadership ended): the entries hold its AgentInfos and tasks, which would otherwise
    outlive it in a follower that serves these routes no more. Entries of agents and
    frameworks that are gone are dropped at the next answer listing them all.
    """

    def __init__(self) -> None:
        self._state: weakref.ref[MasterState] | None = None
        self._agents: dict[str, _AgentEntry] = {}
        self._recovered: dict[str, tuple[object, bytes]] = {}
        self._frameworks: dict[str, tuple[_Key, bytes]] = {}
        self._suffixes: dict[SummaryCounts, bytes] = {}
        self._shared = _SharedJson()

    @property
    def remembered(self) -> int:
        """How many agents' and frameworks' JSON is remembered."""
        return len(self._agents) + len(self._recovered) + len(self._frameworks)

    def _forget(self, gone: weakref.ref[MasterState] | None = None) -> None:
        if gone is None or gone is self._state:
            self._agents, self._recovered, self._frameworks = {}, {}, {}

    def _fresh(self, master: Master) -> MasterState:
        state = master.state
        if self._state is None or self._state() is not state:
            self._forget()
            self._state = weakref.ref(state, self._forget)
        return state

    def _registered(self, state: MasterState) -> tuple[list[Agent], list[bytes]]:
        """Every registered agent and its JSON object's bytes, unclosed, in the state's
        order; re-encodes only the agents that changed, and forgets agents gone."""
        entries = self._agents
        agents, out = [], []
        for agent in state.agents.values():
            if agent.phase not in REGISTERED_PHASES:
                continue
            entry = entries.get(agent.agent_id)
            if entry is None or not entry.matches(state, agent):
                entry = entries[agent.agent_id] = _AgentEntry(state, agent, self._shared)
            agents.append(agent)
            out.append(entry.json)
        if len(entries) > len(agents):
            listed = {a.agent_id for a in agents}
            self._agents = {k: v for k, v in entries.items() if k in listed}
        return agents, out

    def _recovering(self, state: MasterState) -> list[bytes]:
        """The JSON of every agent waiting to reregister (by its AgentInfo)."""
        old, new = self._recovered, {}
        out = []
        for agent in state.agents.values():
            if agent.phase is not AgentPhase.RECOVERING:
                continue
            entry = old.get(agent.agent_id)
            if entry is None or entry[0] is not agent.info:
                entry = (agent.info, encode(agent_info_json(agent)))
            new[agent.agent_id] = entry
            out.append(entry[1])
        self._recovered = new
        return out

    def _framework_summaries(self, state: MasterState, visible: Visibility | None) -> bytes:
        """The JSON of :func:`master.core.summary.framework_summaries`: each framework's
        summary remembered by its key, its counts (per reader) encoded per request."""
        old, new = self._frameworks, {}
        parts = [b"["]
        for fw in state.frameworks.values():
            key = _framework_key(fw)
            entry = old.get(fw.framework_id)
            if entry is None or entry[0] != key:
                entry = (key, _open(framework_summary(state, fw)))
            new[fw.framework_id] = entry
            if visible is None or visible.can_view_framework(fw.info):
                fields = encode(framework_count_fields(state, fw, visible))
                parts += (entry[1], b",", fields[1:], b",")
        self._frameworks = new
        if len(parts) > 1:
            parts.pop()
        parts.append(b"]")
        return b"".join(parts)

    def _suffix(self, counts: SummaryCounts) -> bytes:
        """The state-summary fields of ``counts``, the closing brace and a comma, as bytes."""
        suffix = self._suffixes.get(counts)
        if suffix is None:
            if len(self._suffixes) >= _REMEMBERED_MAX:
                self._suffixes.clear()
            fields = encode(summary_count_fields(counts))
            suffix = self._suffixes[counts] = b"," + fields[1:] + b","
        return suffix

    def slaves(self, master: Master) -> bytes:
        """The JSON of :func:`master.core.snapshot.agents_snapshot` (every agent)."""
        state = self._fresh(master)
        _, registered = self._registered(state)
        parts = [b'{"slaves":[', b"},".join(registered), b"}" if registered else b""]
        parts += (b'],"recovered_slaves":[', b",".join(self._recovering(state)), b"]}")
        return b"".join(parts)

    def state_summary(self, master: Master, visible: Visibility | None = None) -> bytes:
        """The JSON of :func:`master.core.summary.state_summary` for a reader shown what
        ``visible`` shows (None: everything)."""
        state = self._fresh(master)
        shown: Callable[[Task], bool] | None = None
        if visible is not None:
            shown = task_visibility(state, visible)
        done_on = completed_tasks_by_agent(state, shown)
        agents, registered = self._registered(state)
        entries: list[bytes] = registered * 2  # Each agent's JSON, then its counts' (a copy).
        entries[0::2] = registered
        entries[1::2] = [self._suffix(agent_summary_counts(a, done_on, shown)) for a in agents]
        if entries:
            entries[-1] = entries[-1][:-1]  # The last agent's comma.
        hostname = encode(master.master_info.hostname)
        frameworks = self._framework_summaries(state, visible)
        parts = [b'{"hostname":', hostname, b',"slaves":[', *entries]
        parts += (b'],"frameworks":', frameworks, b"}")
        return b"".join(parts)
