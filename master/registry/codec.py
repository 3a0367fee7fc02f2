"""The registry document: a :class:`RegistryState` as JSON, shared by every durable registry.

``{"format": "emporion-registry/1", "version": N, "agents": {...}, "unreachable_agents": {...},
"gone_agents": {...}, "frameworks": {...}, "weights": {...}, "quotas": {...},
"reservations": {...}, "completed_frameworks": {id: when}, "agent_principals": {id: principal}}``
with messages in Mesos's JSON form, exactly as :mod:`master.registry.file` writes it to
``registry.json`` and :mod:`master.registry.zookeeper` to its znode, so a ZooKeeper registry can
be dumped to a file and read by the same tools. (``agent_principals``, the owners of agent ids,
is absent from documents written before owners were kept: none recorded.)

:class:`StateCodec` remembers the encoding of each message it has seen (messages in a state are
never mutated, see :mod:`master.registry.state`), so writing a registry of 10,000 agents after
one change encodes one AgentInfo, not 10,000. A load fills it too, with the objects of the
document read: a master's first write after taking office encodes only what it changed. (Each is
the message's JSON form as read, which may differ in spelling from what encoding would give, say
an int64 as a number rather than a string, yet always reads back as the same message.)
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message

from master.registry.protocol import RegistryError
from master.registry.state import FrameworkRecord, RegistryState, UnreachableAgent
from protos.v1 import mesos_pb2, quota_pb2

__all__ = ["FORMAT", "StateCodec"]

FORMAT = "emporion-registry/1"
"""The ``format`` field of the document; a different value is refused at load."""

_M = TypeVar("_M", bound=Message)


_Seen = dict[int, tuple[Message, dict[str, Any]]]


def _decode(kind: type[_M], obj: object, where: str, seen: _Seen) -> _M:
    """The message ``obj`` is the JSON form of, remembered in ``seen`` with that form."""
    msg = kind()
    try:
        if not isinstance(obj, dict):
            raise json_format.ParseError("not an object")
        json_format.ParseDict(obj, msg)
    except json_format.ParseError as error:
        raise RegistryError(f"registry: bad {where}: {error}") from None
    seen[id(msg)] = (msg, obj)
    return msg


class StateCodec:
    """StateCodec turns registry states into JSON bytes and back (see the module doc)."""

    def __init__(self) -> None:
        self._encoded: _Seen = {}

    def encode(self, state: RegistryState) -> bytes:
        """The document of ``state`` as compact, key-sorted JSON bytes."""
        before = set(self._encoded)
        data = json.dumps(self._document(state), separators=(",", ":"), sort_keys=True).encode()
        self._prune(before, state)
        return data

    def decode(self, data: bytes) -> RegistryState:
        """The state in a document; raises RegistryError if it is not one."""
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise RegistryError(f"registry document is not JSON: {error}") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise RegistryError(f"registry document is not in format {FORMAT!r}")
        seen: _Seen = {}
        try:
            state = self._parse(doc, seen)
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            raise RegistryError(f"registry document is malformed: {error!r}") from None
        # The messages of the state this registry now holds; older ones are of no more use.
        self._encoded = seen
        return state

    def _message(self, msg: Message) -> dict[str, Any]:
        cached = self._encoded.get(id(msg))
        if cached is not None and cached[0] is msg:
            return cached[1]
        encoded = json_format.MessageToDict(msg, preserving_proto_field_name=True)
        self._encoded[id(msg)] = (msg, encoded)
        return encoded

    def _document(self, state: RegistryState) -> dict[str, Any]:
        enc = self._message
        return {
            "format": FORMAT,
            "version": state.version,
            "agents": {k: enc(v) for k, v in state.agents.items()},
            "unreachable_agents": {
                k: {"info": enc(v.info), "unreachable_at": v.unreachable_at}
                for k, v in state.unreachable.items()
            },
            "gone_agents": dict(state.gone),
            "frameworks": {
                k: {"info": enc(v.info), "disconnected_at": v.disconnected_at}
                for k, v in state.frameworks.items()
            },
            "weights": dict(state.weights),
            "quotas": {k: enc(v) for k, v in state.quotas.items()},
            "reservations": {k: [enc(r) for r in v] for k, v in state.reservations.items()},
            "completed_frameworks": dict(state.completed_frameworks),
            "agent_principals": dict(state.agent_principals),
        }

    def _prune(self, before: set[int], state: RegistryState) -> None:
        """Forget encodings of messages no longer in ``state``."""
        live = {id(info) for info in state.agents.values()}
        live.update(id(entry.info) for entry in state.unreachable.values())
        live.update(id(record.info) for record in state.frameworks.values())
        live.update(id(config) for config in state.quotas.values())
        live.update(id(r) for resources in state.reservations.values() for r in resources)
        for key in before - live:
            del self._encoded[key]

    @staticmethod
    def _parse(doc: dict[str, Any], seen: _Seen) -> RegistryState:
        state = RegistryState(version=int(doc.get("version", 0)))
        for agent_id, info in doc.get("agents", {}).items():
            state.agents[agent_id] = _decode(mesos_pb2.AgentInfo, info, f"agent {agent_id}", seen)
        for agent_id, entry in doc.get("unreachable_agents", {}).items():
            info = _decode(mesos_pb2.AgentInfo, entry.get("info"), f"agent {agent_id}", seen)
            state.unreachable[agent_id] = UnreachableAgent(info, float(entry["unreachable_at"]))
        for agent_id, time in doc.get("gone_agents", {}).items():
            state.gone[agent_id] = float(time)
        for framework_id, entry in doc.get("frameworks", {}).items():
            finfo = _decode(
                mesos_pb2.FrameworkInfo, entry.get("info"), f"framework {framework_id}", seen
            )
            at = entry.get("disconnected_at")
            state.frameworks[framework_id] = FrameworkRecord(
                finfo, None if at is None else float(at)
            )
        state.completed_frameworks = {
            framework_id: float(at)
            for framework_id, at in doc.get("completed_frameworks", {}).items()
        }
        # Absent from documents written before owners were kept: no owner recorded.
        state.agent_principals = {
            str(agent_id): str(principal)
            for agent_id, principal in doc.get("agent_principals", {}).items()
        }
        state.weights = {role: float(w) for role, w in doc.get("weights", {}).items()}
        for role, config in doc.get("quotas", {}).items():
            state.quotas[role] = _decode(quota_pb2.QuotaConfig, config, f"quota {role}", seen)
        for agent_id, resources in doc.get("reservations", {}).items():
            state.reservations[agent_id] = tuple(
                _decode(mesos_pb2.Resource, r, f"reservation of {agent_id}", seen)
                for r in resources
            )
        return state
