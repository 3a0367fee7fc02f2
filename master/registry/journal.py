"""The file registry's journal: one line of JSON per registry write, holding that write's
operations, so that a write costs what it changed rather than the whole registry.

A line is ``{"version": N, "ops": [<operation>, ...]}`` followed by ``"\\n"``; an operation is
``{"op": "<name>", ...fields}`` with messages in Mesos's JSON form (as in the registry document,
:mod:`master.registry.codec`)::

    {"op": "admit_agent", "agent_id": "S1", "info": <AgentInfo>, "principal": "agent-a"}
    {"op": "mark_agent_unreachable", "agent_id": "S1", "time": 1700000000.0}
    {"op": "mark_agent_gone", "agent_id": "S1", "time": 1700000000.0}
    {"op": "remove_agent", "agent_id": "S1"}
    {"op": "update_reservations", "agent_id": "S1", "resources": [<Resource>, ...]}
    {"op": "put_framework", "info": <FrameworkInfo>, "disconnected_at": null}
    {"op": "remove_framework", "framework_id": "F1", "removed_at": 0.0, "keep": 50}
    {"op": "update_weights", "weights": {"<role>": 2.0}}
    {"op": "update_quota", "role": "<role>", "config": <QuotaConfig> | null}

Replaying the lines in order over the snapshot they follow gives the registry: the same
:func:`~master.registry.state.apply_in_place` every registry uses gives them their meaning.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message

from master.registry.protocol import RegistryError
from master.registry.state import (
    AdmitAgent,
    FrameworkRecord,
    MarkAgentGone,
    MarkAgentUnreachable,
    Operation,
    PutFramework,
    RemoveAgent,
    RemoveFramework,
    UpdateQuota,
    UpdateReservations,
    UpdateWeights,
)
from protos.v1 import mesos_pb2, quota_pb2

__all__ = ["decode_line", "encode_line"]

_M = TypeVar("_M", bound=Message)


def _enc(msg: Message) -> dict[str, Any]:
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


def _dec(kind: type[_M], obj: object, where: str) -> _M:
    msg = kind()
    if not isinstance(obj, dict):
        raise ValueError(f"{where} is not an object")
    try:
        json_format.ParseDict(obj, msg)
    except json_format.ParseError as error:
        raise ValueError(f"{where}: {error}") from None
    return msg


def _encode(op: Operation) -> dict[str, Any]:
    match op:
        case AdmitAgent(agent_id, info, principal):
            admit: dict[str, Any] = {"op": "admit_agent", "agent_id": agent_id, "info": _enc(info)}
            if principal is not None:  # Absent: keep the owner recorded (older lines have none).
                admit["principal"] = principal
            return admit
        case MarkAgentUnreachable(agent_id, time):
            return {"op": "mark_agent_unreachable", "agent_id": agent_id, "time": time}
        case MarkAgentGone(agent_id, time):
            return {"op": "mark_agent_gone", "agent_id": agent_id, "time": time}
        case RemoveAgent(agent_id):
            return {"op": "remove_agent", "agent_id": agent_id}
        case UpdateReservations(agent_id, resources):
            encoded = [_enc(r) for r in resources]
            return {"op": "update_reservations", "agent_id": agent_id, "resources": encoded}
        case PutFramework(record):
            return {
                "op": "put_framework",
                "info": _enc(record.info),
                "disconnected_at": record.disconnected_at,
            }
        case RemoveFramework(framework_id, removed_at, keep):
            return {
                "op": "remove_framework",
                "framework_id": framework_id,
                "removed_at": removed_at,
                "keep": keep,
            }
        case UpdateWeights(weights):
            return {"op": "update_weights", "weights": dict(weights)}
        case UpdateQuota(role, config):
            body = None if config is None else _enc(config)
            return {"op": "update_quota", "role": role, "config": body}
    raise TypeError(f"not a registry operation: {op!r}")


def _decode(obj: dict[str, Any], where: str) -> Operation:
    name = obj.get("op")
    if name == "admit_agent":
        info = _dec(mesos_pb2.AgentInfo, obj["info"], f"{where}.info")
        principal = obj.get("principal")
        return AdmitAgent(str(obj["agent_id"]), info, None if principal is None else str(principal))
    if name == "mark_agent_unreachable":
        return MarkAgentUnreachable(str(obj["agent_id"]), float(obj["time"]))
    if name == "mark_agent_gone":
        return MarkAgentGone(str(obj["agent_id"]), float(obj["time"]))
    if name == "remove_agent":
        return RemoveAgent(str(obj["agent_id"]))
    if name == "update_reservations":
        resources = tuple(
            _dec(mesos_pb2.Resource, r, f"{where}.resources[{i}]")
            for i, r in enumerate(obj["resources"])
        )
        return UpdateReservations(str(obj["agent_id"]), resources)
    if name == "put_framework":
        finfo = _dec(mesos_pb2.FrameworkInfo, obj["info"], f"{where}.info")
        at = obj["disconnected_at"]
        return PutFramework(FrameworkRecord(finfo, None if at is None else float(at)))
    if name == "remove_framework":
        return RemoveFramework(str(obj["framework_id"]), float(obj["removed_at"]), int(obj["keep"]))
    if name == "update_weights":
        return UpdateWeights({str(k): float(v) for k, v in obj["weights"].items()})
    if name == "update_quota":
        config = obj["config"]
        quota = None if config is None else _dec(quota_pb2.QuotaConfig, config, f"{where}.config")
        return UpdateQuota(str(obj["role"]), quota)
    raise ValueError(f"{where}: unknown operation {name!r}")


def encode_line(version: int, operations: Sequence[Operation]) -> bytes:
    """The journal line (newline included) of the write that made ``version``."""
    body = {"version": version, "ops": [_encode(op) for op in operations]}
    return json.dumps(body, separators=(",", ":")).encode() + b"\n"


def decode_line(line: bytes, where: str) -> tuple[int, list[Operation]]:
    """The version and operations of one journal line; RegistryError naming ``where`` (the
    file and line number) if it is not one."""
    try:
        body = json.loads(line)
        if not isinstance(body, dict) or not isinstance(body.get("ops"), list):
            raise ValueError("not a journal entry")
        version = body["version"]
        if not isinstance(version, int):
            raise ValueError(f"version {version!r} is not an integer")
        ops = [_decode(op, f"ops[{i}]") for i, op in enumerate(body["ops"])]
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RegistryError(f"{where}: not JSON: {error}") from None
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise RegistryError(f"{where}: malformed entry: {error}") from None
    return version, ops
