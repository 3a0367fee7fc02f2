"""The master's configuration: a frozen dataclass built at the edge from flags and ``EMPORION_*``.

Every flag ``--some-flag`` can also come from the environment variable ``EMPORION_SOME_FLAG``
(as Mesos reads ``MESOS_*``); a flag on the command line wins over the variable. Durations take
Mesos's forms (``"5secs"``, ``"100ms"``, ``"2mins"``) and the short ones (``"5s"``, ``"2m"``);
a bare number is seconds. A bad value raises :class:`ConfigError` naming the flag.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal

from protos.durations import parse_duration
from protos.leader_info import ZkUrl, parse_zk_url
from protos.resources import validate_role

__all__ = [
    "DEFAULT_HTTP_PORT",
    "DEFAULT_MIN_ALLOCATABLE_RESOURCES",
    "ENV_PREFIX",
    "ConfigError",
    "MasterConfig",
    "add_arguments",
    "config_from_args",
    "config_from_namespace",
    "parse_duration",
    "parse_weights",
]

ENV_PREFIX = "EMPORION_"
"""Prefix of the environment variables that stand in for flags."""

DEFAULT_MIN_ALLOCATABLE_RESOURCES = "cpus:0.01|mem:32"
"""Mesos's default ``--min_allocatable_resources``."""

DEFAULT_HTTP_PORT = 8080
"""Port of the HTTP API when the command line names none (``--http-port off`` disables it)."""


class ConfigError(ValueError):
    """ConfigError is a bad flag or environment value; its message names the flag."""


def parse_weights(text: str) -> dict[str, float]:
    """Mesos's ``--weights`` form ``"role1=2,role2=3.5"``: role -> positive weight."""
    weights: dict[str, float] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        role, sep, value = part.partition("=")
        role = role.strip()
        if not sep:
            raise ValueError(f"invalid weight {part.strip()!r}: expected role=weight")
        validate_role(role)
        try:
            weight = float(value)
        except ValueError:
            raise ValueError(
                f"invalid weight {part.strip()!r}: {value!r} is not a number"
            ) from None
        if not (math.isfinite(weight) and weight > 0):
            raise ValueError(f"invalid weight {part.strip()!r}: must be positive and finite")
        weights[role] = weight
    return weights


@dataclass(frozen=True, slots=True)
class MasterConfig:
    """MasterConfig holds every setting of a master; durations are seconds.

    Build it from the command line with :func:`config_from_args`; tests build it directly.
    """

    host: str = "127.0.0.1"
    """Address the gRPC server binds to."""
    port: int = 5050
    """Port of the gRPC server; 0 picks a free one (printed at start)."""
    http_port: int | None = None
    """Port of the HTTP API (``docs/http-api.md``) on the same host; 0 picks a free one, None
    serves no HTTP. None here so that configs built in code never contend for a fixed port; the
    command line defaults to :data:`DEFAULT_HTTP_PORT`."""
    hostname: str | None = None
    """Hostname advertised in MasterInfo; the bound host when unset."""
    work_dir: Path | None = None
    """Directory of the file registry (required with ``registry="file"``)."""
    registry: Literal["file", "memory", "zookeeper"] = "file"
    """Where durable state lives: a file under ``work_dir``, memory (lost on restart), or
    ZooKeeper under ``<zk path>/registry`` (shared by the masters; the default with ``--zk``)."""
    zk: ZkUrl | None = None
    """``zk://host:port,.../path``: elect the leading master through ZooKeeper (None: this
    master is alone and leads at once)."""
    zk_session_timeout: float = 10.0
    """ZooKeeper session timeout: how long a leader that stopped answering keeps its place."""
    offer_timeout: float | None = None
    """Rescind offers a framework holds longer than this; ``None``: never (Mesos's default)."""
    agent_ping_timeout: float = 5.0
    """Time an agent has to answer a ping; pings are sent this often."""
    max_agent_ping_timeouts: int = 3
    """Consecutive unanswered pings after which an agent is unreachable."""
    agent_reregister_timeout: float = 600.0
    """After a master restart, how long known agents have to reregister (Mesos: 10 mins)."""
    heartbeat_interval: float = 15.0
    """Interval of HEARTBEAT events to subscribed frameworks."""
    allocation_interval: float = 1.0
    """Period of the full allocation cycle, and the least time a refuse filter lasts."""
    allocation_delay: float = 0.005
    """How soon after resources are freed or added an extra allocation cycle runs."""
    min_allocatable_resources: str = DEFAULT_MIN_ALLOCATABLE_RESOURCES
    """Smallest offer worth making: ``"cpus:0.01|mem:32"`` (alternatives split by ``|``)."""
    weights: Mapping[str, float] = field(default_factory=dict)
    """Role weights for fair sharing; written to the registry at start."""
    max_completed_frameworks: int = 50
    """How many torn-down frameworks are remembered (to refuse their resubscription, and with
    their completed tasks for operators)."""
    max_completed_tasks_per_framework: int = 1000
    """How many completed tasks are kept per framework, live or torn down (Mesos's flag)."""
    max_tasks_per_accept: int = 1000
    """Most tasks one ACCEPT may launch (they all go to one agent at once); more are refused
    with INVALID_ARGUMENT, so that no single call buries an agent in launches."""
    tls_cert: Path | None = None
    """PEM certificate: serve gRPC and HTTP over TLS (with ``tls_key``)."""
    tls_key: Path | None = None
    """PEM private key of ``tls_cert``."""
    tls_ca: Path | None = None
    """PEM CA bundle that client certificates are verified against."""
    tls_require_client_cert: bool = False
    """Mutual TLS: refuse clients without a certificate signed by ``tls_ca``."""
    authenticate_frameworks: bool = False
    """Frameworks must authenticate (gRPC ``authorization`` metadata / HTTP basic)."""
    authenticate_agents: bool = False
    """Agents must authenticate to register."""
    authenticate_http_readonly: bool = False
    """Read-only HTTP endpoints (GET) need HTTP basic authentication."""
    authenticate_http_readwrite: bool = False
    """Read-write HTTP endpoints (POST, the operator API) need HTTP basic authentication."""
    credentials: Path | None = None
    """Mesos's credentials JSON: ``{"credentials": [{"principal": ..., "secret": ...}]}``."""
    acls: Path | None = None
    """Mesos's ACL JSON (docs/security.md); None: every authenticated request is allowed."""
    agent_gateways: int = 0
    """Gateway processes that end agents' streams and relay them to this master
    (:mod:`master.gateway`, docs/scale.md); 0: agents connect to the master itself only."""
    agent_port: int = 0
    """Port of the agent gateways (all share it); 0 picks a free one (printed at start)."""
    profile: Path | None = None
    """Write cProfile statistics of the whole run here at shutdown (for benchmarks)."""
    log_level: str = "INFO"
    """Level of the standard logging module."""

    def __post_init__(self) -> None:
        def positive(name: str, value: float) -> None:
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"--{name.replace('_', '-')}: must be positive, got {value}")

        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port: must be between 0 and 65535, got {self.port}")
        if self.http_port is not None:
            if not 0 <= self.http_port <= 65535:
                raise ConfigError(
                    f"--http-port: must be between 0 and 65535 or 'off', got {self.http_port}"
                )
            if self.http_port == self.port != 0:
                raise ConfigError(f"--http-port: must differ from --port ({self.port})")
        if not 0 <= self.agent_gateways <= 64:
            raise ConfigError(
                f"--agent-gateways: must be between 0 and 64, got {self.agent_gateways}"
            )
        if not 0 <= self.agent_port <= 65535:
            raise ConfigError(f"--agent-port: must be between 0 and 65535, got {self.agent_port}")
        if self.agent_port != 0 and self.agent_gateways == 0:
            raise ConfigError("--agent-port: needs --agent-gateways (the gateways listen there)")
        if self.agent_port != 0 and self.agent_port in (self.port, self.http_port):
            raise ConfigError("--agent-port: must differ from --port and --http-port")
        if self.registry not in ("file", "memory", "zookeeper"):
            raise ConfigError(
                f"--registry: must be 'file', 'memory' or 'zookeeper', got {self.registry!r}"
            )
        if self.registry == "file" and self.work_dir is None:
            raise ConfigError(
                "--work-dir is required (or EMPORION_WORK_DIR): the registry is kept there;"
                " or give --zk to keep it in ZooKeeper, or --registry memory to keep none"
            )
        if self.registry == "zookeeper" and self.zk is None:
            raise ConfigError("--zk: required with --registry zookeeper")
        if self.zk is not None and not isinstance(self.zk, ZkUrl):
            raise ConfigError(f"--zk: must be a parsed zk:// URL, got {self.zk!r}")
        positive("zk_session_timeout", self.zk_session_timeout)
        if self.offer_timeout is not None:
            positive("offer_timeout", self.offer_timeout)
        positive("agent_ping_timeout", self.agent_ping_timeout)
        positive("agent_reregister_timeout", self.agent_reregister_timeout)
        positive("heartbeat_interval", self.heartbeat_interval)
        positive("allocation_interval", self.allocation_interval)
        if not (math.isfinite(self.allocation_delay) and self.allocation_delay >= 0):
            raise ConfigError(f"--allocation-delay: must be >= 0, got {self.allocation_delay}")
        if self.max_agent_ping_timeouts < 1:
            raise ConfigError(
                f"--max-agent-ping-timeouts: must be at least 1, got {self.max_agent_ping_timeouts}"
            )
        if self.max_tasks_per_accept < 1:
            raise ConfigError(
                f"--max-tasks-per-accept: must be at least 1, got {self.max_tasks_per_accept}"
            )
        if self.max_completed_frameworks < 0:
            raise ConfigError(
                f"--max-completed-frameworks: must be >= 0, got {self.max_completed_frameworks}"
            )
        if self.max_completed_tasks_per_framework < 0:
            raise ConfigError(
                "--max-completed-tasks-per-framework: must be >= 0, got"
                f" {self.max_completed_tasks_per_framework}"
            )
        try:
            from master.allocator.state import parse_min_allocatable

            parse_min_allocatable(self.min_allocatable_resources)
        except ValueError as error:
            raise ConfigError(f"--min-allocatable-resources: {error}") from None
        for role, weight in self.weights.items():
            try:
                validate_role(role)
            except ValueError as error:
                raise ConfigError(f"--weights: {error}") from None
            if not (math.isfinite(weight) and weight > 0):
                raise ConfigError(f"--weights: weight of {role!r} must be positive, got {weight}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("--tls-cert and --tls-key: give both, or neither")
        if self.tls_require_client_cert and (self.tls_cert is None or self.tls_ca is None):
            raise ConfigError("--tls-require-client-cert: needs --tls-cert, --tls-key and --tls-ca")
        authenticating = [
            name
            for name in (
                "authenticate_frameworks",
                "authenticate_agents",
                "authenticate_http_readonly",
                "authenticate_http_readwrite",
            )
            if getattr(self, name)
        ]
        if authenticating and self.credentials is None and not self.tls_require_client_cert:
            flag = "--" + authenticating[0].replace("_", "-")
            raise ConfigError(
                f"{flag}: needs --credentials FILE (or --tls-require-client-cert, whose"
                " certificates' subject CN stands as the principal)"
            )
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ConfigError(f"--log-level: unknown level {self.log_level!r}")

    @property
    def agent_ping_deadline(self) -> float:
        """Seconds without a pong before an agent is unreachable (timeout x max timeouts)."""
        return self.agent_ping_timeout * self.max_agent_ping_timeouts


# -- flags ------------------------------------------------------------------------------------

_FLAG_HELP = {
    "host": "address to bind (default 127.0.0.1)",
    "port": "port to listen on; 0 picks a free one (default 5050)",
    "http_port": f"port of the HTTP API on the same host; 0 picks a free one, 'off' serves none"
    f" (default {DEFAULT_HTTP_PORT})",
    "hostname": "hostname advertised to frameworks and agents",
    "work_dir": "directory of the registry (required with --registry file)",
    "registry": "file (under --work-dir), memory, or zookeeper (default: zookeeper with --zk,"
    " else file)",
    "zk": "zk://host:port,.../path: elect the leader through ZooKeeper (default: standalone)",
    "zk_session_timeout": "ZooKeeper session timeout (default 10secs)",
    "offer_timeout": "rescind offers held longer than this (default: never)",
    "agent_ping_timeout": "time an agent has to answer a ping (default 5secs)",
    "max_agent_ping_timeouts": "missed pings before an agent is unreachable (default 3)",
    "agent_reregister_timeout": "time known agents have to reregister after a restart (10mins)",
    "heartbeat_interval": "interval of HEARTBEAT events (default 15secs)",
    "allocation_interval": "period of the allocation cycle (default 1secs)",
    "allocation_delay": "delay of the extra cycle after resources free up (default 5ms)",
    "min_allocatable_resources": "smallest offer, e.g. 'cpus:0.01|mem:32' (the default)",
    "weights": "role weights, e.g. 'eng=2,ops=0.5'",
    "max_completed_frameworks": "torn-down frameworks remembered (default 50)",
    "max_completed_tasks_per_framework": "completed tasks kept per framework (default 1000)",
    "max_tasks_per_accept": "most tasks one ACCEPT may launch (default 1000)",
    "tls_cert": "PEM certificate: serve gRPC and HTTP over TLS (with --tls-key)",
    "tls_key": "PEM private key of --tls-cert",
    "tls_ca": "PEM CA that client certificates are verified against",
    "tls_require_client_cert": "mutual TLS: refuse clients without a certificate (true/false)",
    "authenticate_frameworks": "frameworks must authenticate (true/false)",
    "authenticate_agents": "agents must authenticate (true/false)",
    "authenticate_http_readonly": "read-only HTTP endpoints need basic authentication",
    "authenticate_http_readwrite": "read-write HTTP endpoints need basic authentication",
    "credentials": "Mesos credentials JSON file (principals and secrets)",
    "acls": "Mesos ACL JSON file (docs/security.md)",
    "agent_gateways": "gateway processes that end agents' streams (docs/scale.md; default 0)",
    "agent_port": "port agents connect to when --agent-gateways is set; 0 picks a free one",
    "profile": "write cProfile statistics here at shutdown",
    "log_level": "DEBUG, INFO (default), WARNING or ERROR",
}
_DURATIONS = frozenset(
    {
        "offer_timeout",
        "agent_ping_timeout",
        "agent_reregister_timeout",
        "heartbeat_interval",
        "allocation_interval",
        "allocation_delay",
        "zk_session_timeout",
    }
)
_INTS = frozenset(
    {
        "port",
        "max_agent_ping_timeouts",
        "max_completed_frameworks",
        "max_completed_tasks_per_framework",
        "max_tasks_per_accept",
        "agent_gateways",
        "agent_port",
    }
)
_PATHS = frozenset({"work_dir", "profile", "tls_cert", "tls_key", "tls_ca", "credentials", "acls"})
_BOOLS = frozenset(
    {
        "tls_require_client_cert",
        "authenticate_frameworks",
        "authenticate_agents",
        "authenticate_http_readonly",
        "authenticate_http_readwrite",
    }
)


def parse_bool(text: str) -> bool:
    """``true``/``false`` (and ``1``/``0``, ``yes``/``no``) as Mesos's boolean flags."""
    value = text.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every master flag to ``parser`` (values stay strings; defaults are applied later)."""
    for f in fields(MasterConfig):
        boolean = {"nargs": "?", "const": "true"} if f.name in _BOOLS else {}
        parser.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f.name,
            default=None,
            metavar=f.name.upper(),
            **boolean,  # type: ignore[arg-type]
            help=_FLAG_HELP[f.name] + f" [env {ENV_PREFIX}{f.name.upper()}]",
        )


def _convert(name: str, text: str) -> object:
    flag = "--" + name.replace("_", "-")
    try:
        if name in _DURATIONS:
            if name == "offer_timeout" and text.strip().lower() in ("", "none"):
                return None
            return parse_duration(text)
        if name == "http_port":
            if text.strip().lower() in ("off", "none"):
                return None
            if not text.strip().isdigit():
                raise ValueError(f"expected a port number or 'off', got {text!r}")
            return int(text)
        if name in _INTS:
            if not text.strip().lstrip("+-").isdigit():
                raise ValueError(f"expected a whole number, got {text!r}")
            return int(text)
        if name in _BOOLS:
            return parse_bool(text)
        if name in _PATHS:
            if not text.strip():
                raise ValueError("empty path")
            return Path(text)
        if name == "weights":
            return parse_weights(text)
        if name == "hostname":
            return text or None
        if name == "zk":
            return parse_zk_url(text) if text.strip() else None
    except ValueError as error:
        raise ConfigError(f"{flag}: {error}") from None
    return text


def config_from_namespace(ns: argparse.Namespace, environ: Mapping[str, str]) -> MasterConfig:
    """A MasterConfig from parsed flags (see :func:`add_arguments`), then ``EMPORION_*``.

    Raises ConfigError naming the flag when a value is bad.
    """
    values: dict[str, object] = {}
    for f in fields(MasterConfig):
        text = getattr(ns, f.name, None)
        if text is None:
            text = environ.get(ENV_PREFIX + f.name.upper())
        if text is not None:
            values[f.name] = _convert(f.name, text)
    if values.get("zk") is not None and "registry" not in values:
        values["registry"] = "zookeeper"  # the one registry every master of the group shares
    values.setdefault("http_port", DEFAULT_HTTP_PORT)  # "off" was converted to None: kept
    return MasterConfig(**values)  # type: ignore[arg-type]


def config_from_args(argv: Sequence[str], environ: Mapping[str, str]) -> MasterConfig:
    """A MasterConfig from command-line arguments and the environment (``python -m master``)."""
    parser = argparse.ArgumentParser(prog="python -m master", description="An Emporion master.")
    add_arguments(parser)
    return config_from_namespace(parser.parse_args(list(argv)), environ)
