"""AgentConfig: the agent's settings, built at the edge from flags and ``EMPORION_*`` variables.

Every flag ``--some-flag`` may also come from the environment as ``EMPORION_SOME_FLAG``; a flag
on the command line wins. Durations are written like Mesos's: ``5s``, ``100ms``, ``2mins``,
``1hrs``, ``3days``, ``1weeks`` (a bare number means seconds). Attributes use Mesos's syntax,
``rack:r1;zone:a;level:3;slots:[1-4];tags:{gpu,ssd}`` (text, scalar, ranges, set). Bad input
raises :class:`ConfigError` naming the flag.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from protos.acls import Acls
from protos.durations import format_duration, parse_duration
from protos.leader_info import ZkUrl, parse_zk_url
from protos.resources import Resources
from protos.security import SecurityConfigError, load_credential, load_credentials
from protos.v1 import mesos_pb2

__all__ = [
    "AgentConfig",
    "Attribute",
    "ConfigError",
    "MasterAddress",
    "ZkMaster",
    "add_agent_arguments",
    "config_from_args",
    "config_from_namespace",
    "format_duration",
    "parse_attributes",
    "parse_duration",
    "parse_master",
]


T = TypeVar("T")


class ConfigError(ValueError):
    """A flag or variable has a value the agent cannot use; the message names it."""


_NAME = re.compile(r"[A-Za-z0-9_./-]+")
_TEXT = re.compile(r"[A-Za-z0-9_./:-]+")
_SCALAR = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)")
_RANGE = re.compile(r"\s*(\d+)\s*-\s*(\d+)\s*")


AttributeValue = float | tuple[tuple[int, int], ...] | frozenset[str] | str


@dataclass(frozen=True)
class Attribute:
    """Attribute is one agent attribute: a name and a scalar, ranges, set or text value."""

    name: str
    value: AttributeValue

    def to_proto(self) -> mesos_pb2.Attribute:
        """The ``mesos.v1.Attribute`` message."""
        proto = mesos_pb2.Attribute(name=self.name)
        value = self.value
        if isinstance(value, float):
            proto.type = mesos_pb2.Value.SCALAR
            proto.scalar.value = value
        elif isinstance(value, tuple):
            proto.type = mesos_pb2.Value.RANGES
            proto.ranges.range.extend(mesos_pb2.Value.Range(begin=b, end=e) for b, e in value)
        elif isinstance(value, frozenset):
            proto.type = mesos_pb2.Value.SET
            proto.set.item.extend(sorted(value))
        else:
            proto.type = mesos_pb2.Value.TEXT
            proto.text.value = value
        return proto


def _parse_attribute_value(name: str, text: str) -> AttributeValue:
    if text.startswith("["):
        if not text.endswith("]"):
            raise ValueError(f"attribute {name!r}: ranges {text!r} lack the closing ']'")
        ranges = []
        for part in text[1:-1].split(","):
            match = _RANGE.fullmatch(part)
            if match is None or int(match.group(1)) > int(match.group(2)):
                raise ValueError(f"attribute {name!r}: {part.strip()!r} is not a range a-b")
            ranges.append((int(match.group(1)), int(match.group(2))))
        return tuple(sorted(ranges))
    if text.startswith("{"):
        if not text.endswith("}"):
            raise ValueError(f"attribute {name!r}: set {text!r} lacks the closing '}}'")
        items = [item.strip() for item in text[1:-1].split(",")]
        for item in items:
            if not _TEXT.fullmatch(item):
                raise ValueError(f"attribute {name!r}: set item {item!r} is not plain text")
        return frozenset(items)
    if _SCALAR.fullmatch(text):
        return float(text)
    if not _TEXT.fullmatch(text):
        raise ValueError(
            f"attribute {name!r}: value {text!r} must be a number, [ranges], {{set}} or text of"
            " letters, digits and _ . / : -"
        )
    return text


def parse_attributes(text: str) -> tuple[Attribute, ...]:
    """Agent attributes from Mesos's ``name:value;name:value`` syntax; ValueError if bad."""
    attributes: list[Attribute] = []
    seen: set[str] = set()
    for raw in re.split(r"[;\n]", text):
        token = raw.strip()
        if not token:
            continue
        name, colon, value = token.partition(":")
        name, value = name.strip(), value.strip()
        if not colon or not value:
            raise ValueError(f"attribute {token!r} must be written name:value")
        if not _NAME.fullmatch(name):
            raise ValueError(f"attribute name {name!r} must be letters, digits and _ . / -")
        if name in seen:
            raise ValueError(f"attribute {name!r} is given twice")
        seen.add(name)
        attributes.append(Attribute(name, _parse_attribute_value(name, value)))
    return tuple(attributes)


@dataclass(frozen=True)
class MasterAddress:
    """Where the master is: a fixed ``host:port``."""

    host: str
    port: int

    @property
    def target(self) -> str:
        """The gRPC target string."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class ZkMaster:
    """Where the master is: whichever master leads, as ZooKeeper at ``url`` names it."""

    url: ZkUrl

    @property
    def target(self) -> str:
        """The ``zk://`` URL (for logs; the leader's gRPC target comes from the detector)."""
        return str(self.url)


def parse_master(text: str) -> MasterAddress | ZkMaster:
    """A ``--master`` value, ``HOST:PORT`` or ``zk://H1:P1,H2:P2/path``; ValueError naming what
    is wrong."""
    if text.strip().lower().startswith("zk://"):
        try:
            return ZkMaster(parse_zk_url(text.strip()))
        except ValueError as error:
            raise ValueError(f"master {text!r}: {error}") from None
    match = re.fullmatch(r"\[?([^\]\s]+?)\]?:(\d{1,5})", text.strip())
    if match is None or not 0 < int(match.group(2)) < 65536:
        raise ValueError(f"master {text!r} must be HOST:PORT or zk://HOST:PORT,.../PATH")
    return MasterAddress(match.group(1), int(match.group(2)))


@dataclass(frozen=True)
class AgentConfig:
    """AgentConfig holds everything the agent is configured with; build it with the helpers."""

    master: MasterAddress | ZkMaster
    work_dir: Path
    port: int = 5051
    ip: str = "127.0.0.1"
    """Where the HTTP API listens; from the command line, the advertised hostname's address
    unless ``--ip`` is given (never every interface unless asked for with ``--ip 0.0.0.0``)."""
    hostname: str = ""
    resources: Resources | None = None
    attributes: tuple[Attribute, ...] = ()
    isolation: str = "auto"
    executor_port: int = 0
    executor_registration_timeout: float = 60.0
    executor_reregistration_timeout: float = 2.0
    executor_shutdown_grace_period: float = 5.0
    recovery_timeout: float = 15 * 60.0
    recover: str = "reconnect"
    gc_delay: float = 7 * 24 * 3600.0
    gc_disk_headroom: float = 0.1
    disk_watch_interval: float = 60.0
    registration_backoff_factor: float = 1.0
    registration_backoff_max: float = 60.0
    status_update_retry_min: float = 10.0
    status_update_retry_max: float = 600.0
    default_ping_timeout: float = 75.0
    zk_session_timeout: float = 10.0
    max_concurrent_launches: int = 0
    """Container launches in progress at once (0: two per CPU, 8 to 32); the others queue,
    frameworks taking turns (see agent.runtime.containers)."""
    switch_user: bool | None = None
    """Run tasks as their users (None: when the agent is root), see agent.isolation.users."""
    allow_root_tasks: bool = True
    """Whether a task may run as root (uid 0) when users are switched."""
    enforce_container_disk_quota: bool = True
    container_disk_watch_interval: float = 15.0
    """How often each sandbox with a ``disk`` limit is measured (Mesos's disk/du isolator)."""
    credential: Path | None = None
    """File of the agent's credential (``{"principal": ..., "secret": ...}`` or Mesos's
    ``principal secret``), sent to the master with every connection."""
    tls_cert: Path | None = None
    """PEM certificate: the HTTP API serves TLS, and it is the client certificate towards the
    master (mutual TLS)."""
    tls_key: Path | None = None
    tls_ca: Path | None = None
    """CA the master's certificate is verified against: the master link uses TLS when set."""
    tls_require_client_cert: bool = False
    """The HTTP API (file API included) serves only clients with a certificate signed by
    ``tls_ca``: the cluster's masters (their sandbox proxy checks ``access_sandboxes``)."""
    authenticate_http_readonly: bool = False
    """GET requests of the HTTP API (``/files/*``, ``/state``, metrics; not ``/health``) need
    HTTP basic authentication against ``http_credentials`` (Mesos's
    ``--authenticate_http_readonly``)."""
    authenticate_http_readwrite: bool = False
    """Every other method needs it too (the executor API ``/api/v1/executor`` excepted)."""
    http_credentials: Path | None = None
    """Mesos's credentials JSON of the HTTP API's principals (read at start)."""
    acls: Path | None = None
    """Mesos's ACL JSON: the file API checks ``access_sandboxes`` (the framework's user)."""

    def agent_hostname(self) -> str:
        """The hostname frameworks see: ``--hostname``, else this host's name."""
        return self.hostname or socket.gethostname()


def add_agent_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the agent's flags to ``parser`` (used by ``python -m agent`` and ``emporion agent``)."""
    # Required, but each may come from its EMPORION_* variable instead, so argparse cannot
    # enforce them: the usage line and a group of their own say so instead.
    parser.usage = "%(prog)s --master HOST:PORT --work-dir DIR [options]"
    required = parser.add_argument_group(
        "required (each may instead be given as its EMPORION_* variable)"
    )
    required.add_argument(
        "--master",
        metavar="HOST:PORT",
        help="the master's HOST:PORT, or zk://H1:P1,H2:P2/PATH to follow the leader"
        " (EMPORION_MASTER)",
    )
    required.add_argument(
        "--work-dir",
        metavar="DIR",
        help="directory for sandboxes and the checkpoint (EMPORION_WORK_DIR)",
    )
    add = parser.add_argument
    add("--port", help="port of the agent's HTTP API (sandbox files); 0 picks one [5051]")
    add(
        "--ip",
        help="address the HTTP API listens on; 0.0.0.0 for every interface"
        " [the advertised hostname's address]",
    )
    add("--hostname", help="hostname advertised to the master [this host's name]")
    add("--resources", help="resources to offer, e.g. 'cpus:4;mem:4096' [detected]")
    add("--attributes", help="attributes, e.g. 'rack:r1;zone:a'")
    add("--isolation", help="auto, cgroups or posix [auto]")
    add("--executor-port", help="port of the executor API on 127.0.0.1; 0 picks one [0]")
    add("--executor-registration-timeout", help="wait for a new executor to subscribe [1mins]")
    add(
        "--executor-reregistration-timeout",
        help="wait for executors to re-subscribe after a restart, at most 15s [2s]",
    )
    add("--executor-shutdown-grace-period", help="from SHUTDOWN to kill [5s]")
    add("--recovery-timeout", help="how long executors wait for a restarted agent [15mins]")
    add("--recover", help="reconnect (keep checkpointed tasks) or cleanup [reconnect]")
    add("--gc-delay", help="keep finished sandboxes this long [1weeks]")
    add("--gc-disk-headroom", help="free disk fraction that sandbox GC aims for [0.1]")
    add("--registration-backoff-factor", help="initial (re)registration backoff [1s]")
    add("--status-update-retry-min", help="first retry of an unacknowledged update [10s]")
    add("--status-update-retry-max", help="longest retry interval [10mins]")
    add("--zk-session-timeout", help="ZooKeeper session timeout under --master zk:// [10secs]")
    add(
        "--max-concurrent-launches",
        help="container launches in progress at once; the rest queue, frameworks taking turns"
        " (0: two per CPU, 8 to 32) [0]",
    )
    switch = argparse.BooleanOptionalAction
    add(
        "--switch-user",
        action=switch,
        help="run tasks as CommandInfo.user or FrameworkInfo.user [on when the agent is root]",
    )
    add(
        "--allow-root-tasks",
        action=switch,
        help="let tasks run as root (uid 0) when users are switched [on]",
    )
    add(
        "--enforce-container-disk-quota",
        action=switch,
        help="kill tasks whose sandbox outgrows their disk resource [on]",
    )
    add("--container-disk-watch-interval", help="how often sandbox disk usage is measured [15s]")
    add("--credential", help="file with the agent's principal and secret (Mesos's format)")
    add("--tls-cert", help="PEM certificate: HTTPS for the HTTP API, client cert to the master")
    add("--tls-key", help="PEM private key of --tls-cert")
    add("--tls-ca", help="PEM CA of the master's certificate: connect to the master over TLS")
    add(
        "--tls-require-client-cert",
        action=switch,
        help="HTTP API only for clients with a certificate signed by --tls-ca (the masters) [off]",
    )
    add(
        "--authenticate-http-readonly",
        action=switch,
        help="GET requests of the HTTP API (files, state, metrics) need basic authentication [off]",
    )
    add(
        "--authenticate-http-readwrite",
        action=switch,
        help="other requests need it too (not the executor API /api/v1/executor) [off]",
    )
    add("--http-credentials", help="Mesos's credentials JSON of the HTTP API's principals")
    add("--acls", help="Mesos's ACL JSON: access_sandboxes is checked by the file API")


def _flag(ns: argparse.Namespace, environ: Mapping[str, str], name: str) -> str | None:
    value = getattr(ns, name.replace("-", "_"), None)
    if value is None:
        value = environ.get("EMPORION_" + name.upper().replace("-", "_"))
    return value


def config_from_namespace(ns: argparse.Namespace, environ: Mapping[str, str]) -> AgentConfig:
    """Build the config from parsed flags, falling back to ``EMPORION_*`` variables."""
    defaults = AgentConfig(MasterAddress("", 0), Path())

    def get(name: str, parse: Callable[[str], T], default: T) -> T:
        text = _flag(ns, environ, name)
        if text is None:
            return default
        try:
            return parse(text)
        except ValueError as error:
            raise ConfigError(f"--{name}: {error}") from None

    def duration(name: str) -> float:
        value: float = get(name, parse_duration, getattr(defaults, name.replace("-", "_")))
        return value

    def switch(name: str, default: bool | None) -> bool | None:
        value = getattr(ns, name.replace("-", "_"), None)
        if isinstance(value, bool):
            return value
        return get(name, _boolean, default)

    master, work_dir = _flag(ns, environ, "master"), _flag(ns, environ, "work-dir")
    if not master:
        raise ConfigError("--master is required (or EMPORION_MASTER)")
    if not work_dir:
        raise ConfigError("--work-dir is required (or EMPORION_WORK_DIR)")
    config = AgentConfig(
        master=get("master", parse_master, defaults.master),
        work_dir=Path(work_dir).resolve(),
        port=get("port", _port, defaults.port),
        ip=get("ip", str, "") or _advertised_address(get("hostname", str, defaults.hostname)),
        hostname=get("hostname", str, defaults.hostname),
        resources=get("resources", Resources.parse, None),
        attributes=get("attributes", parse_attributes, ()),
        isolation=get("isolation", _choice("auto", "cgroups", "posix"), defaults.isolation),
        executor_port=get("executor-port", _port, defaults.executor_port),
        executor_registration_timeout=duration("executor-registration-timeout"),
        executor_reregistration_timeout=duration("executor-reregistration-timeout"),
        executor_shutdown_grace_period=duration("executor-shutdown-grace-period"),
        recovery_timeout=duration("recovery-timeout"),
        recover=get("recover", _choice("reconnect", "cleanup"), defaults.recover),
        gc_delay=duration("gc-delay"),
        gc_disk_headroom=get("gc-disk-headroom", _fraction, defaults.gc_disk_headroom),
        registration_backoff_factor=duration("registration-backoff-factor"),
        status_update_retry_min=duration("status-update-retry-min"),
        status_update_retry_max=duration("status-update-retry-max"),
        zk_session_timeout=duration("zk-session-timeout"),
        max_concurrent_launches=get(
            "max-concurrent-launches", _count, defaults.max_concurrent_launches
        ),
        switch_user=switch("switch-user", defaults.switch_user),
        allow_root_tasks=bool(switch("allow-root-tasks", defaults.allow_root_tasks)),
        enforce_container_disk_quota=bool(
            switch("enforce-container-disk-quota", defaults.enforce_container_disk_quota)
        ),
        container_disk_watch_interval=duration("container-disk-watch-interval"),
        credential=get("credential", _path, None),
        tls_cert=get("tls-cert", _path, None),
        tls_key=get("tls-key", _path, None),
        tls_ca=get("tls-ca", _path, None),
        tls_require_client_cert=bool(switch("tls-require-client-cert", False)),
        authenticate_http_readonly=bool(switch("authenticate-http-readonly", False)),
        authenticate_http_readwrite=bool(switch("authenticate-http-readwrite", False)),
        http_credentials=get("http-credentials", _path, None),
        acls=get("acls", _path, None),
    )
    _check_http_security(config)
    if (config.tls_cert is None) != (config.tls_key is None):
        raise ConfigError("--tls-cert and --tls-key: give both, or neither")
    if config.tls_require_client_cert and (config.tls_cert is None or config.tls_ca is None):
        raise ConfigError("--tls-require-client-cert: needs --tls-cert, --tls-key and --tls-ca")
    if config.credential is not None:
        try:  # Read now: a bad file is a flag error, not a failure after start.
            load_credential(config.credential)
        except SecurityConfigError as error:
            raise ConfigError(str(error)) from None
    for flag, path in (
        ("--tls-cert", config.tls_cert),
        ("--tls-key", config.tls_key),
        ("--tls-ca", config.tls_ca),
    ):
        if path is not None and not path.is_file():
            raise ConfigError(f"{flag} {path}: no such file")
    if config.container_disk_watch_interval <= 0:
        raise ConfigError("--container-disk-watch-interval must be > 0")
    if config.executor_reregistration_timeout > 15:
        raise ConfigError("--executor-reregistration-timeout: at most 15s (as Mesos)")
    if not 0 < config.status_update_retry_min <= config.status_update_retry_max:
        raise ConfigError("--status-update-retry-min must be > 0 and <= --status-update-retry-max")
    if config.zk_session_timeout <= 0:
        raise ConfigError("--zk-session-timeout must be > 0")
    if config.registration_backoff_factor <= 0:
        raise ConfigError("--registration-backoff-factor must be > 0")
    return config


def _check_http_security(config: AgentConfig) -> None:
    """Refuse HTTP authentication without credentials, and unreadable or bad files (read now:
    a bad file is a flag error naming it, not a failure after start)."""
    for flag, on in (
        ("--authenticate-http-readonly", config.authenticate_http_readonly),
        ("--authenticate-http-readwrite", config.authenticate_http_readwrite),
    ):
        if on and config.http_credentials is None:
            raise ConfigError(f"{flag}: needs --http-credentials FILE")
    try:
        if config.http_credentials is not None:
            load_credentials(config.http_credentials, "--http-credentials")
        if config.acls is not None:
            Acls.load(config.acls)
    except SecurityConfigError as error:
        raise ConfigError(str(error)) from None


def config_from_args(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> AgentConfig:
    """Parse ``argv`` (and the environment) into an AgentConfig; ConfigError if bad."""
    parser = argparse.ArgumentParser(prog="agent", add_help=False, exit_on_error=False)
    add_agent_arguments(parser)
    try:
        ns, rest = parser.parse_known_args(argv)
    except argparse.ArgumentError as error:
        raise ConfigError(str(error)) from None
    if rest:
        raise ConfigError(f"unknown arguments: {' '.join(rest)}")
    return config_from_namespace(ns, os.environ if environ is None else environ)


def _advertised_address(hostname: str) -> str:
    """The address the agent's hostname resolves to: where frameworks will reach it, so
    where its HTTP API listens by default (Mesos binds the address it advertises)."""
    name = hostname or socket.gethostname()
    try:
        return socket.gethostbyname(name)
    except OSError as error:
        raise ConfigError(
            f"--ip not given and hostname {name!r} does not resolve ({error}); pass --ip"
        ) from None


def _path(text: str) -> Path:
    if not text.strip():
        raise ValueError("empty path")
    return Path(text)


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{text!r} is not a boolean (true or false)")


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) < 65536:
        raise ValueError(f"{text!r} is not a port number (0-65535)")
    return int(text)


def _count(text: str) -> int:
    if not text.strip().isdigit():
        raise ValueError(f"{text!r} is not a whole number (0 or more)")
    return int(text)


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(f"{text!r} is not one of {', '.join(choices)}")
        return text

    return parse


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise ValueError(f"{text!r} is not between 0 and 1")
    return value
