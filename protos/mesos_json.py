"""Mesos's JSON conventions for its read-only HTTP endpoints, shared by master and agent.

* :func:`resources_json`: the summary form of resources in ``/master/state``,
  ``/slave(1)/state`` and friends (``src/common/http.cpp``'s ``model(const Resources&)``):
  every scalar by name (``cpus``, ``gpus``, ``mem`` and ``disk`` always present, 0 when
  absent), ranges as ``"[31000-32000, 33000-33000]"``, sets as ``"{a, b}"``, revocable
  resources under ``<name>_revocable``.
* :func:`jsonp`: Mesos answers ``?jsonp=CALLBACK`` on its JSON endpoints with
  ``CALLBACK(<json>);`` as ``text/javascript`` (the Mesos web UI fetched state that way). The
  callback must be a JavaScript name (``a.b_c$1``): anything else is refused, so that the
  endpoint cannot be made to answer arbitrary script.
* :func:`flags_json`: a process's flags as Mesos shows them (``/flags``, ``GET_FLAGS``, the
  ``flags`` of ``/state``): name -> value as text, ``""`` for none.
* :func:`agent_pid` / :func:`master_pid`: libprocess's ``id@ip:port`` names, which Mesos's
  tools parse to reach a master's or an agent's HTTP port.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from typing import Any

from protos.resources import Resources

__all__ = [
    "JSONP_CONTENT_TYPE",
    "agent_pid",
    "answer",
    "flags_json",
    "jsonp",
    "master_pid",
    "resources_json",
]

JSONP_CONTENT_TYPE = "text/javascript"
_CALLBACK = re.compile(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*")
_MAX_CALLBACK = 256


def resources_json(resources: Resources) -> dict[str, Any]:
    """Mesos's JSON summary of ``resources`` (see the module docstring)."""
    scalars: dict[str, int] = {"cpus": 0, "gpus": 0, "mem": 0, "disk": 0}  # in thousandths
    ranges: dict[str, list[tuple[int, int]]] = {}
    sets: dict[str, set[str]] = {}
    for key, value in resources.items():
        name = key.name + "_revocable" if key.revocable else key.name
        if isinstance(value, float):
            scalars[name] = scalars.get(name, 0) + round(value * 1000)
        elif isinstance(value, tuple):
            ranges.setdefault(name, []).extend(value)
        else:
            sets.setdefault(name, set()).update(value)
    out: dict[str, Any] = {name: amount / 1000 for name, amount in scalars.items()}
    for name, parts in sorted(ranges.items()):
        out[name] = "[" + ", ".join(f"{lo}-{hi}" for lo, hi in _merge(parts)) + "]"
    for name, items in sorted(sets.items()):
        out[name] = "{" + ", ".join(sorted(items)) + "}"
    return out


def _merge(parts: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(parts):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def jsonp(callback: str, body: str) -> str:
    """``callback(body);``; ValueError naming the parameter if ``callback`` is not a name."""
    if len(callback) > _MAX_CALLBACK or not _CALLBACK.fullmatch(callback):
        raise ValueError(
            f"query parameter 'jsonp' must be a JavaScript function name (letters, digits, _, $"
            f" and dots, at most {_MAX_CALLBACK} characters), got {callback[:80]!r}"
        )
    return f"{callback}({body});"


def answer(data: Any, callback: str | None) -> tuple[int, str, bytes]:
    """(HTTP status, media type, body) of a read-only endpoint's answer ``data``: JSON, or
    ``callback(<json>);`` for ``?jsonp=callback``; 400 naming the parameter for a callback
    that is not a name."""
    body = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    if callback is None:
        return 200, "application/json", body.encode()
    try:
        return 200, JSONP_CONTENT_TYPE, jsonp(callback, body).encode()
    except ValueError as error:
        return 400, "application/json", json.dumps({"detail": str(error)}).encode()


def master_pid(host: str, port: int) -> str:
    """A master's libprocess name: ``master@host:port``."""
    return f"master@{_bracketed(host)}:{port}"


def agent_pid(host: str, port: int) -> str:
    """An agent's libprocess name: ``slave(1)@host:port`` (Mesos's agent process id)."""
    return f"slave(1)@{_bracketed(host)}:{port}"


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def flags_json(config: object) -> dict[str, str]:
    """A config dataclass as Mesos's flags: name -> value as text ("" for none)."""
    out: dict[str, str] = {}
    if not is_dataclass(config):
        return out
    for f in fields(config):
        value = getattr(config, f.name)
        if value is None:
            out[f.name] = ""
        elif isinstance(value, Mapping):
            out[f.name] = ",".join(f"{k}={v}" for k, v in sorted(value.items()))
        else:
            out[f.name] = str(value)
    return out
