"""The agent emulator's configuration: one frozen, validated value built at the edge.

:class:`EmulatorConfig` is built from keyword arguments (:class:`AgentEmulator`) or from
command-line flags and ``EMPORION_*`` variables (``python -m emporion.testing.agent_emulator``).
Bad values raise ``ValueError`` naming the field. It also turns the ``--resources`` and
``--attributes`` texts into the ``AgentInfo`` each emulated agent announces.

The agents find the master in one of two ways: a fixed list of ``host:port`` (``masters``), or
a ``zk://`` URL (``zk_url``) under which they follow the leader that ZooKeeper names.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from emporion.testing.emulated_agent import Mode
from protos.leader_info import parse_zk_url
from protos.resources import Resources
from protos.v1 import mesos_pb2

DEFAULT_RESOURCES = "cpus:8;mem:32768;disk:100000;ports:[31000-32000]"

DEFAULT_REREGISTER_SPREAD = 0.25
"""Seconds over which agents spread their reregistrations with a new leader (see
``docs/ha.md``, "Agent emulator", for how it was chosen)."""


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything an :class:`~emporion.testing.agent_emulator.AgentEmulator` needs to run."""

    masters: tuple[str, ...]
    """``host:port`` of each master; an agent refused or cut off tries the next one. Empty
    when the agents follow the leader through ZooKeeper (``zk_url``)."""
    zk_url: str = ""
    """``zk://hosts/path`` under which the masters contend: the agents connect to the leader
    ZooKeeper names, and all reregister with the next one when it changes."""
    zk_session_timeout: float = 10.0
    """The emulator's ZooKeeper session timeout (with ``zk_url``)."""
    reregister_spread: float = DEFAULT_REREGISTER_SPREAD
    """With ``zk_url``: each agent rejoins a new leader after a random pause in
    ``[0, reregister_spread)`` seconds, so a thousand agents do not arrive at once."""
    agents: int = 1
    resources: str = DEFAULT_RESOURCES
    attributes: str = ""
    mode: Mode = Mode.FINISH
    hostname_prefix: str = "emulated-agent"
    first_index: int = 0
    """Index of the first agent (hostnames are ``<prefix>-<index>``): lets emulators coexist."""
    channels: int = 1
    """gRPC channels the agents' streams are spread over (each is one TCP connection)."""
    backoff_min: float = 0.5
    """Reconnection delay after a first failure (then doubled, jittered, up to ``backoff_max``)."""
    backoff_max: float = 10.0
    status_update_retry_min: float = 10.0
    status_update_retry_max: float = 600.0
    echo_framework_messages: bool = True
    record_run_task_times: bool = True
    tick_interval: float = 0.25
    """How often retries and the master's ping deadline are checked."""
    register_timeout: float = 60.0
    """How long :meth:`AgentEmulator.start` waits for every agent to register."""
    batched: bool = True
    """Use ``ConnectBatched`` (several messages per stream message) where the master has it."""
    start_at: float | None = None
    """The command line's ``--start-at``: connect no earlier than this time (seconds since the
    epoch), so several emulator processes started one after the other begin together."""

    def __post_init__(self) -> None:
        if self.zk_url:
            if self.masters:
                raise ValueError("fields 'masters' and 'zk_url' are exclusive: give one")
            try:
                parse_zk_url(self.zk_url)
            except ValueError as error:
                raise ValueError(f"field 'zk_url': {error}") from None
        elif not self.masters:
            raise ValueError("field 'masters' needs at least one host:port (or give 'zk_url')")
        for address in self.masters:
            host, sep, port = address.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"field 'masters' has {address!r}, not host:port")
        if self.agents < 0:
            raise ValueError(f"field 'agents' must be >= 0, got {self.agents}")
        if self.channels < 1:
            raise ValueError(f"field 'channels' must be >= 1, got {self.channels}")
        if self.first_index < 0:
            raise ValueError(f"field 'first_index' must be >= 0, got {self.first_index}")
        for name in (
            "backoff_min",
            "backoff_max",
            "status_update_retry_min",
            "status_update_retry_max",
            "tick_interval",
            "register_timeout",
            "zk_session_timeout",
        ):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"field {name!r} must be a positive number, got {value!r}")
        if not math.isfinite(self.reregister_spread) or self.reregister_spread < 0:
            raise ValueError(
                f"field 'reregister_spread' must be a number >= 0, got {self.reregister_spread!r}"
            )
        if self.start_at is not None and not math.isfinite(self.start_at):
            raise ValueError(f"field 'start_at' must be a finite time, got {self.start_at!r}")
        if self.backoff_max < self.backoff_min:
            raise ValueError("field 'backoff_max' must be >= 'backoff_min'")
        if self.status_update_retry_max < self.status_update_retry_min:
            raise ValueError("field 'status_update_retry_max' must be >= the minimum")
        if not self.hostname_prefix:
            raise ValueError("field 'hostname_prefix' must not be empty")
        try:
            Resources.parse(self.resources)
        except ValueError as error:
            raise ValueError(f"field 'resources': {error}") from None
        try:
            parse_attributes(self.attributes)
        except ValueError as error:
            raise ValueError(f"field 'attributes': {error}") from None

    @property
    def master_text(self) -> str:
        """Where the agents go, for messages: the masters, or the ``zk://`` URL (no password)."""
        return str(parse_zk_url(self.zk_url)) if self.zk_url else ",".join(self.masters)

    def agent_infos(self) -> list[mesos_pb2.AgentInfo]:
        """The ``AgentInfo`` (no id) of each emulated agent, in index order."""
        resources = Resources.parse(self.resources).to_protos()
        attributes = parse_attributes(self.attributes)
        template = mesos_pb2.AgentInfo(resources=resources, attributes=attributes, port=5051)
        infos = []
        for index in range(self.first_index, self.first_index + self.agents):
            info = mesos_pb2.AgentInfo()
            info.CopyFrom(template)
            info.hostname = f"{self.hostname_prefix}-{index:05d}"
            infos.append(info)
        return infos


def parse_mode(text: str | Mode) -> Mode:
    """``"finish"``, ``"run"`` or ``"manual"`` as a :class:`Mode`; ValueError otherwise."""
    if isinstance(text, Mode):
        return text
    try:
        return Mode(text)
    except ValueError:
        choices = ", ".join(m.value for m in Mode)
        raise ValueError(f"field 'mode' must be one of {choices}, got {text!r}") from None


def parse_masters(masters: str | Sequence[str]) -> tuple[str, ...]:
    """One ``host:port``, a comma-separated list, or a sequence of them, as a tuple."""
    items = masters.split(",") if isinstance(masters, str) else list(masters)
    return tuple(m.strip() for m in items if m.strip())


def parse_master(master: str | Sequence[str]) -> tuple[tuple[str, ...], str]:
    """A ``--master`` value as (masters, zk_url): ``zk://...`` gives ``((), url)``, anything
    else (``host:port``, a comma-separated list, a sequence) ``(masters, "")``."""
    if isinstance(master, str) and master.strip().lower().startswith("zk://"):
        return (), master.strip()
    return parse_masters(master), ""


def parse_attributes(text: str) -> list[mesos_pb2.Attribute]:
    """Mesos's ``--attributes`` text (``rack:r1;level:10;keys:[1000-1500];os:{a,b}``).

    A value is a scalar if it parses as a number, ranges in ``[...]``, a set in ``{...}``,
    otherwise text. Raises ValueError naming the bad entry.
    """
    out: list[mesos_pb2.Attribute] = []
    for raw in text.split(";"):
        entry = raw.strip()
        if not entry:
            continue
        name, sep, value = entry.partition(":")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise ValueError(f"attribute {entry!r} is not name:value")
        attr = mesos_pb2.Attribute(name=name)
        if value.startswith("[") and value.endswith("]"):
            attr.type = mesos_pb2.Value.RANGES
            for part in value[1:-1].split(","):
                lo, dash, hi = part.strip().partition("-")
                if not dash or not lo.isdigit() or not hi.isdigit() or int(lo) > int(hi):
                    raise ValueError(f"attribute {entry!r} has a bad range {part.strip()!r}")
                attr.ranges.range.add(begin=int(lo), end=int(hi))
        elif value.startswith("{") and value.endswith("}"):
            attr.type = mesos_pb2.Value.SET
            attr.set.item.extend(i.strip() for i in value[1:-1].split(",") if i.strip())
        else:
            try:
                number = float(value)
            except ValueError:
                attr.type = mesos_pb2.Value.TEXT
                attr.text.value = value
            else:
                if not math.isfinite(number):
                    raise ValueError(f"attribute {entry!r} is not a finite number")
                attr.type = mesos_pb2.Value.SCALAR
                attr.scalar.value = number
        out.append(attr)
    return out
