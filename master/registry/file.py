"""FileRegistry: the registry as one JSON file under the master's work directory.

The file is ``<work_dir>/registry.json``::

    {"format": "emporion-registry/1", "version": 7,
     "agents": {"<agent id>": <AgentInfo>, ...},
     "unreachable_agents": {"<agent id>": {"info": <AgentInfo>, "unreachable_at": 1700000000.0}},
     "gone_agents": {"<agent id>": 1700000000.0},
     "frameworks": {"<framework id>": {"info": <FrameworkInfo>, "disconnected_at": null}},
     "weights": {"<role>": 2.0},
     "quotas": {"<role>": <QuotaConfig>},
     "reservations": {"<agent id>": [<Resource>, ...]}}

Messages are in Mesos's JSON form (field names as in the .proto). Every ``apply`` writes the whole
file anew: to a temporary file in the same directory, flushed and fsynced, renamed over the old
one, and the directory fsynced, so a crash at any point leaves either the old or the new version,
never a mix. Messages already encoded by an earlier write are not encoded again.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message

from master.registry.protocol import RegistryError
from master.registry.state import (
    FrameworkRecord,
    Operation,
    RegistryState,
    UnreachableAgent,
    apply_operations,
)
from protos.v1 import mesos_pb2, quota_pb2

__all__ = ["FORMAT", "FileRegistry"]

FORMAT = "emporion-registry/1"
"""The ``format`` field of the file; a different value is refused at load."""

_M = TypeVar("_M", bound=Message)


def _decode(kind: type[_M], obj: object, where: str) -> _M:
    msg = kind()
    try:
        if not isinstance(obj, dict):
            raise json_format.ParseError("not an object")
        json_format.ParseDict(obj, msg)
    except json_format.ParseError as error:
        raise RegistryError(f"registry file: bad {where}: {error}") from None
    return msg


class FileRegistry:
    """FileRegistry stores the registry in ``<work_dir>/registry.json`` (see the module doc)."""

    FILE_NAME = "registry.json"

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = Path(work_dir)
        self.path = self.work_dir / self.FILE_NAME
        self._state: RegistryState | None = None
        self._encoded: dict[int, tuple[Message, dict[str, Any]]] = {}
        self.writes = 0
        """How many times the file was written (for tests and metrics)."""

    # -- reading ------------------------------------------------------------------------------

    def load(self) -> RegistryState:
        """The stored state (empty at version 0 if there is no file yet).

        Raises RegistryError if the file cannot be read or is not a registry.
        """
        try:
            self.work_dir.mkdir(parents=True, exist_ok=True)
            for stale in self.work_dir.glob(self.FILE_NAME + ".tmp-*"):
                stale.unlink()  # Left by a crash mid-write; the rename never happened.
            text = self.path.read_text()
        except FileNotFoundError:
            self._state = RegistryState()
            return self._state
        except OSError as error:
            raise RegistryError(f"cannot read registry {self.path}: {error}") from None
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as error:
            raise RegistryError(f"registry file {self.path} is not JSON: {error}") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise RegistryError(f"registry file {self.path} is not in format {FORMAT!r}")
        self._state = self._parse(doc)
        return self._state

    def _parse(self, doc: dict[str, Any]) -> RegistryState:
        state = RegistryState(version=int(doc.get("version", 0)))
        for agent_id, info in doc.get("agents", {}).items():
            state.agents[agent_id] = _decode(mesos_pb2.AgentInfo, info, f"agent {agent_id}")
        for agent_id, entry in doc.get("unreachable_agents", {}).items():
            info = _decode(mesos_pb2.AgentInfo, entry.get("info"), f"agent {agent_id}")
            state.unreachable[agent_id] = UnreachableAgent(info, float(entry["unreachable_at"]))
        for agent_id, time in doc.get("gone_agents", {}).items():
            state.gone[agent_id] = float(time)
        for framework_id, entry in doc.get("frameworks", {}).items():
            finfo = _decode(mesos_pb2.FrameworkInfo, entry.get("info"), f"framework {framework_id}")
            at = entry.get("disconnected_at")
            state.frameworks[framework_id] = FrameworkRecord(
                finfo, None if at is None else float(at)
            )
        state.weights = {role: float(w) for role, w in doc.get("weights", {}).items()}
        for role, config in doc.get("quotas", {}).items():
            state.quotas[role] = _decode(quota_pb2.QuotaConfig, config, f"quota {role}")
        for agent_id, resources in doc.get("reservations", {}).items():
            state.reservations[agent_id] = tuple(
                _decode(mesos_pb2.Resource, r, f"reservation of {agent_id}") for r in resources
            )
        return state

    # -- writing ------------------------------------------------------------------------------

    def apply(self, operations: Sequence[Operation]) -> int:
        """Apply ``operations`` and write the new version durably; return it.

        Raises RegistryError (leaving the old file in place) if the write fails.
        """
        current = self._state if self._state is not None else self.load()
        new = apply_operations(current, operations)
        self._write(new)
        self._state = new
        return new.version

    def _encode(self, msg: Message) -> dict[str, Any]:
        cached = self._encoded.get(id(msg))
        if cached is not None and cached[0] is msg:
            return cached[1]
        encoded = json_format.MessageToDict(msg, preserving_proto_field_name=True)
        self._encoded[id(msg)] = (msg, encoded)
        return encoded

    def _document(self, state: RegistryState) -> dict[str, Any]:
        enc = self._encode
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
        }

    def _write(self, state: RegistryState) -> None:
        before = set(self._encoded)
        data = json.dumps(self._document(state), separators=(",", ":"), sort_keys=True).encode()
        self._prune(before, state)
        tmp = self.path.with_name(f"{self.FILE_NAME}.tmp-{os.getpid()}")
        try:
            self.work_dir.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
            _fsync_dir(self.work_dir)
        except OSError as error:
            _remove_quietly(tmp)
            raise RegistryError(f"cannot write registry {self.path}: {error}") from None
        self.writes += 1

    def _prune(self, before: set[int], state: RegistryState) -> None:
        """Drop cached encodings of messages no longer in ``state``."""
        live = {id(info) for info in state.agents.values()}
        live.update(id(entry.info) for entry in state.unreachable.values())
        live.update(id(record.info) for record in state.frameworks.values())
        live.update(id(config) for config in state.quotas.values())
        live.update(id(r) for resources in state.reservations.values() for r in resources)
        for key in before - live:
            del self._encoded[key]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
