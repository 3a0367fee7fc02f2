"""Plain records the isolation layer hands to the agent: checkpoint state, exit, statistics."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

STATE_VERSION = 1


@dataclass(frozen=True)
class ContainerState:
    """What the agent checkpoints to reattach to a container after it restarts.

    Every field is a JSON type, so ``json.dumps(dataclasses.asdict(state))`` works;
    ``to_json``/``from_json`` do that and validate on the way back. ``start_time`` is the
    process start time from ``/proc/<pid>/stat`` (clock ticks since boot): a pid whose start
    time differs is another process that reused the number. ``session_id`` is the container's
    session (the launched process called setsid). ``init_pid`` is the PID-namespace init as
    seen from the agent, when namespaces are used. ``supervised``: ``pid`` is the launch helper,
    which stays as the task's parent, forwards termination signals to it and records its exit
    status (False only in states written before the helper always stayed).
    """

    container_id: str
    isolation: str
    pid: int
    start_time: int
    sandbox: str
    cgroups: tuple[str, ...] = ()
    namespaces: bool = False
    init_pid: int | None = None
    run_dir: str | None = None
    supervised: bool = False
    version: int = STATE_VERSION

    def to_dict(self) -> dict[str, Any]:
        # Field by field, not dataclasses.asdict (which deep-copies every value): written twice
        # per launch.
        data = {field.name: getattr(self, field.name) for field in _STATE_FIELDS}
        data["cgroups"] = list(self.cgroups)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContainerState:
        """Rebuild a state from ``to_dict`` output; ValueError names the first bad field."""
        if not isinstance(data, dict):
            raise ValueError(f"container state must be an object, got {type(data).__name__}")
        if data.get("version", STATE_VERSION) != STATE_VERSION:
            raise ValueError(f"unsupported container state version {data.get('version')!r}")
        expected: dict[str, tuple[type, ...]] = {
            "container_id": (str,),
            "isolation": (str,),
            "pid": (int,),
            "start_time": (int,),
            "sandbox": (str,),
            "cgroups": (list, tuple),
            "namespaces": (bool,),
            "init_pid": (int, type(None)),
            "run_dir": (str, type(None)),
            "supervised": (bool,),
        }
        required = {"container_id", "isolation", "pid", "start_time", "sandbox"}
        unknown = sorted(set(data) - set(expected) - {"version"})
        if unknown:
            raise ValueError(f"container state has unknown fields: {', '.join(unknown)}")
        for name, types in expected.items():
            if name not in data:
                if name in required:
                    raise ValueError(f"container state lacks {name!r}")
                continue
            value = data[name]
            wrong_bool = isinstance(value, bool) and bool not in types
            if wrong_bool or not isinstance(value, types):
                raise ValueError(f"container state field {name!r} has bad value {value!r}")
        cgroups = data.get("cgroups", [])
        if not all(isinstance(path, str) for path in cgroups):
            raise ValueError(f"container state field 'cgroups' has bad value {cgroups!r}")
        fields = {k: v for k, v in data.items() if k != "version"}
        fields["cgroups"] = tuple(cgroups)
        return cls(**fields)

    @classmethod
    def from_json(cls, text: str) -> ContainerState:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"container state is not JSON: {e}") from e
        return cls.from_dict(data)


_STATE_FIELDS = dataclasses.fields(ContainerState)


@dataclass(frozen=True)
class ExitInfo:
    """How a container's process ended.

    ``status`` is the exit code when it exited, ``signal`` the signal that killed it; both are
    None when the end is unknown (the process was not the agent's child, e.g. after recovery,
    and left no status). ``oom_killed`` is True when the kernel's OOM killer acted inside the
    container's memory limit; ``message`` says all of this in words for a task status.
    """

    status: int | None
    signal: int | None
    oom_killed: bool
    message: str


@dataclass(frozen=True)
class ContainerStats:
    """Resource usage of a container; None where this isolation cannot measure it."""

    cpu_usage_s: float | None = None
    cpu_periods: int | None = None
    cpu_throttled_periods: int | None = None
    cpu_throttled_s: float | None = None
    mem_usage_bytes: int | None = None
    mem_peak_bytes: int | None = None
    mem_limit_bytes: int | None = None
    mem_limit_hits: int | None = None
    pids_current: int | None = None
    oom_kills: int | None = None
