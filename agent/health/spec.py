"""A validated health check: ``mesos_pb2.HealthCheck`` converted to plain frozen data.

Validation follows Mesos's rules (``type`` must be set, its payload present, durations
non-negative, an HTTP path starting with ``/``) and adds two of its own: a payload for another
type is refused as a likely mistake, and durations must be finite. Each error names the field.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from protos.v1 import mesos_pb2

HealthCheck = mesos_pb2.HealthCheck

LOOPBACK_V4 = "127.0.0.1"
LOOPBACK_V6 = "::1"


class CheckKind(enum.Enum):
    """The three probe kinds of Mesos health checks."""

    COMMAND = "COMMAND"
    HTTP = "HTTP"
    TCP = "TCP"


@dataclass(frozen=True)
class CommandProbe:
    """Run a command in the task's sandbox with the task's environment; exit 0 is healthy."""

    shell: bool
    value: str
    """The shell command line (shell) or the program to execute (argv form)."""
    arguments: tuple[str, ...]
    """argv for the argv form, ``arguments[0]`` being argv[0]; empty means ``[value]``."""
    environment: tuple[tuple[str, str], ...]
    """Variables added to (and overriding) the task's environment."""

    @property
    def argv(self) -> tuple[str, ...]:
        """The argument vector to execute."""
        if self.shell:
            return ("/bin/sh", "-c", self.value)
        return self.arguments or (self.value,)


@dataclass(frozen=True)
class HttpProbe:
    """GET ``scheme://<loopback>:port/path``; healthy on a listed status, else on 200-399."""

    scheme: str
    host: str
    port: int
    path: str
    statuses: frozenset[int]

    @property
    def url(self) -> str:
        """The URL requested."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.path}"

    def is_healthy(self, status: int) -> bool:
        """Whether a final response status counts as healthy."""
        if self.statuses:
            return status in self.statuses
        return 200 <= status < 400


@dataclass(frozen=True)
class TcpProbe:
    """Connect to ``<loopback>:port``; healthy when the connection is accepted."""

    host: str
    port: int


Probe = CommandProbe | HttpProbe | TcpProbe


@dataclass(frozen=True)
class HealthCheckSpec:
    """A health check's timing and probe, validated."""

    delay_s: float
    interval_s: float
    timeout_s: float | None
    """None: no timeout (Mesos reads ``timeout_seconds = 0`` as infinite)."""
    consecutive_failures: int
    grace_period_s: float
    probe: Probe

    @property
    def kind(self) -> CheckKind:
        """Which kind of probe this check runs."""
        if isinstance(self.probe, CommandProbe):
            return CheckKind.COMMAND
        if isinstance(self.probe, HttpProbe):
            return CheckKind.HTTP
        return CheckKind.TCP

    @classmethod
    def from_proto(cls, check: mesos_pb2.HealthCheck) -> HealthCheckSpec:
        """Validate ``check``; raises ValueError naming the offending field."""
        durations = {}
        for name in (
            "delay_seconds",
            "interval_seconds",
            "timeout_seconds",
            "grace_period_seconds",
        ):
            value = getattr(check, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"health_check.{name} must be a non-negative number, got {value}")
            durations[name] = value
        probe = _probe(check)
        timeout = durations["timeout_seconds"]
        return cls(
            delay_s=durations["delay_seconds"],
            interval_s=durations["interval_seconds"],
            timeout_s=timeout if timeout > 0 else None,
            consecutive_failures=check.consecutive_failures,
            grace_period_s=durations["grace_period_seconds"],
            probe=probe,
        )


_DURATIONS = ("delay_seconds", "interval_seconds", "timeout_seconds", "grace_period_seconds")
_PAYLOADS = {HealthCheck.COMMAND: "command", HealthCheck.HTTP: "http", HealthCheck.TCP: "tcp"}


def _probe(check: mesos_pb2.HealthCheck) -> Probe:
    if not check.HasField("type") or check.type == HealthCheck.UNKNOWN:
        raise ValueError("health_check.type must be COMMAND, HTTP or TCP")
    if check.type not in _PAYLOADS:
        raise ValueError(f"health_check.type {check.type} is not a known type")
    type_name = HealthCheck.Type.Name(check.type)
    wanted = _PAYLOADS[check.type]
    for payload in _PAYLOADS.values():
        if payload != wanted and check.HasField(payload):  # type: ignore[arg-type]
            raise ValueError(f"health_check.{payload} is set but health_check.type is {type_name}")
    if not check.HasField(wanted):  # type: ignore[arg-type]
        raise ValueError(f"health_check.{wanted} must be set for a {type_name} health check")
    if check.type == HealthCheck.COMMAND:
        return _command_probe(check.command)
    if check.type == HealthCheck.HTTP:
        return _http_probe(check.http)
    return TcpProbe(_loopback(check.tcp.protocol), _port(check.tcp.port, "health_check.tcp.port"))


def _loopback(protocol: int) -> str:
    return LOOPBACK_V6 if protocol == mesos_pb2.NetworkInfo.IPv6 else LOOPBACK_V4


def _port(port: int, field: str) -> int:
    if not 1 <= port <= 65535:
        raise ValueError(f"{field} must be between 1 and 65535, got {port}")
    return port


def _command_probe(command: mesos_pb2.CommandInfo) -> CommandProbe:
    if not command.value:
        raise ValueError("health_check.command.value must be set")
    environment = []
    for index, variable in enumerate(command.environment.variables):
        field = f"health_check.command.environment.variables[{index}]"
        if not variable.name:
            raise ValueError(f"{field}.name must be set")
        if variable.type == mesos_pb2.Environment.Variable.SECRET:
            raise ValueError(f"{field} is a SECRET, which health checks do not support")
        environment.append((variable.name, variable.value))
    return CommandProbe(
        shell=command.shell,
        value=command.value,
        arguments=tuple(command.arguments),
        environment=tuple(environment),
    )


def _http_probe(http: mesos_pb2.HealthCheck.HTTPCheckInfo) -> HttpProbe:
    scheme = http.scheme if http.HasField("scheme") else "http"
    if scheme not in ("http", "https"):
        raise ValueError(f"health_check.http.scheme must be 'http' or 'https', got '{scheme}'")
    path = http.path if http.HasField("path") else "/"
    if not path.startswith("/"):
        raise ValueError(f"health_check.http.path must start with '/', got '{path}'")
    for status in http.statuses:
        if not 100 <= status <= 599:
            raise ValueError(f"health_check.http.statuses holds {status}, not an HTTP status")
    return HttpProbe(
        scheme=scheme,
        host=_loopback(http.protocol),
        port=_port(http.port, "health_check.http.port"),
        path=path,
        statuses=frozenset(http.statuses),
    )
