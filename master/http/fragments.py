"""``/master/slaves`` and ``/master/state-summary`` assembled from each agent's remembered JSON.

At 50,000 agents both answers are tens of megabytes, and building the dicts and encoding them
took seconds of the master's one event loop per request (every agent and framework waits
meanwhile). Between two requests few agents change, so :class:`AgentFragments` keeps, per
agent, the bytes of its JSON object (:func:`master.core.snapshot.agent_json` encoded as
:func:`protos.mesos_json.answer` encodes, without the closing brace) and the key they were
built from, and a request re-encodes only the agents whose key changed; the answer is the
remembered bytes joined. The bytes are exactly those of ``json.dumps`` of the uncached
functions (tests compare them after every kind of change).

The key is what ``agent_json`` reads, taken cheaply: the AgentInfo message itself (compared by
identity: the core replaces an agent's info on reregistration and never changes it in place),
registration time, total resources, phase, version, capabilities, the tasks and executors
whose resources count as used (by identity: a task's resources never change) and the ids of
the agent's outstanding offers (an offer's resources never change; its id is never reused).
It costs about a microsecond per agent, where building and encoding cost tens.

state-summary adds to each agent its task counts by state and its frameworks' ids; those
depend on the reader (the ``view_*`` ACLs), so they are computed per request as a small value
(:func:`master.core.summary.agent_summary_counts`) whose JSON is remembered by value: most
agents share a few. The frameworks' part (few frameworks) is encoded per request. Nothing here
changes the core's state; everything runs on the master's loop, between two inputs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from master.core import AgentPhase, Master
from master.core.model import Agent, Framework, Task
from master.core.operator_json import Visibility, task_visibility
from master.core.snapshot import (
    REGISTERED_PHASES,
    agent_info_json,
    agent_json,
    framework_summary,
)
from master.core.state import MasterState
from master.core.summary import (
    SummaryCounts,
    agent_summary_counts,
    completed_tasks_by_agent,
    framework_count_fields,
    summary_count_fields,
)

__all__ = ["StateFragments", "encode"]

_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_SUFFIXES_MAX = 65_536

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


def _agent_key(agent: Agent) -> _Key:
    """What :func:`~master.core.snapshot.agent_json` reads of ``agent`` (module docstring)."""
    return (
        agent.info,
        agent.registered_at,
        agent.total,
        agent.phase,
        agent.version,
        agent.capabilities,
        _held(agent),
        frozenset(agent.offers),
    )


def _framework_key(fw: Framework) -> _Key:
    """What :func:`~master.core.snapshot.framework_summary` reads of ``fw`` (as above: the
    FrameworkInfo is replaced on an update, never changed in place)."""
    return (fw.info, fw.phase, _held(fw), frozenset(fw.offers))


class StateFragments:
    """StateFragments remembers each agent's and framework's JSON for the state endpoints of
    one HTTP app (module docstring).

    Every method takes the master to answer for; what was remembered of another (a previous
    leadership) is dropped. Entries of agents and frameworks that are gone are dropped at the
    next answer listing them all.
    """

    def __init__(self) -> None:
        self._state: MasterState | None = None
        self._agents: dict[str, tuple[_Key, bytes]] = {}
        self._recovered: dict[str, tuple[object, bytes]] = {}
        self._frameworks: dict[str, tuple[_Key, bytes]] = {}
        self._suffixes: dict[SummaryCounts, bytes] = {}

    def _fresh(self, master: Master) -> MasterState:
        state = master.state
        if state is not self._state:
            self._state = state
            self._agents, self._recovered, self._frameworks = {}, {}, {}
        return state

    def _registered(self, state: MasterState) -> list[tuple[Agent, bytes]]:
        """Every registered agent with its JSON object's bytes, unclosed, in the state's
        order; re-encodes only the agents whose key changed, and forgets agents gone."""
        old, new = self._agents, {}
        out = []
        for agent in state.agents.values():
            if agent.phase not in REGISTERED_PHASES:
                continue
            key = _agent_key(agent)
            entry = old.get(agent.agent_id)
            if entry is None or entry[0] != key:
                entry = (key, _open(agent_json(state, agent)))
            new[agent.agent_id] = entry
            out.append((agent, entry[1]))
        self._agents = new
        return out

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
        """The state-summary fields of ``counts`` and the closing brace, as bytes."""
        suffix = self._suffixes.get(counts)
        if suffix is None:
            if len(self._suffixes) >= _SUFFIXES_MAX:
                self._suffixes.clear()
            suffix = self._suffixes[counts] = b"," + encode(summary_count_fields(counts))[1:]
        return suffix

    def slaves(self, master: Master) -> bytes:
        """The JSON of :func:`master.core.snapshot.agents_snapshot` (every agent)."""
        state = self._fresh(master)
        registered = self._registered(state)
        parts = [b'{"slaves":[']
        for _, fragment in registered:
            parts += (fragment, b"},")
        if registered:
            parts[-1] = b"}"
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
        parts = [b'{"hostname":', encode(master.master_info.hostname), b',"slaves":[']
        registered = self._registered(state)
        for agent, fragment in registered:
            parts += (fragment, self._suffix(agent_summary_counts(agent, done_on, shown)), b",")
        if registered:
            parts.pop()
        parts += (b'],"frameworks":', self._framework_summaries(state, visible), b"}")
        return b"".join(parts)
