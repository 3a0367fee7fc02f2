"""The pure parts of leader election: ``zk://`` URLs, candidate znode names, MasterInfo as JSON.

Nothing here does I/O; :mod:`protos.leader` drives ZooKeeper with it.

**Znodes.** Every master contending for leadership owns one EPHEMERAL|SEQUENCE znode
``<path>/json.info_NNNNNNNNNN`` (ten digits, ZooKeeper's sequence) whose data is its MasterInfo
as JSON, exactly as Mesos writes it, so Mesos tooling can find an Emporion leader. The candidate
with the lowest sequence leads. Other children of ``<path>`` (the registry, Mesos's older
``info_`` nodes) are not candidates.

**JSON.** The fields of ``mesos.MasterInfo`` with their proto names (``id``, ``ip``, ``port``,
``pid``, ``hostname``, ``version``, ``address{hostname, ip, port}``, ``capabilities``), plus two
of Emporion's that Mesos readers ignore: ``grpc_address`` (``host:port`` of the master's gRPC
services: schedulers and agents connect there) and, when it serves one, ``http_address``. A
candidate written by something else (without ``grpc_address``) is reached at
``address.ip`` (else ``address.hostname``, else ``hostname``) and ``port``.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from google.protobuf import json_format

from protos.v1 import mesos_pb2

__all__ = [
    "DEFAULT_ZK_PORT",
    "MASTER_INFO_LABEL",
    "LeaderInfo",
    "LeaderInfoError",
    "Leadership",
    "Listeners",
    "ZkUrl",
    "candidate_name",
    "candidates",
    "format_address",
    "leader_from_json",
    "master_info_json",
    "parse_zk_url",
    "predecessor",
    "sequence_of",
]

MASTER_INFO_LABEL = "json.info"
"""Label of the candidate znodes (Mesos's ``MASTER_INFO_JSON_LABEL``)."""

DEFAULT_ZK_PORT = 2181
"""ZooKeeper's client port, used when a ``zk://`` host names none."""

log = logging.getLogger("protos.leader")

T = TypeVar("T")

_HOST_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.\-_]*[A-Za-z0-9])?")
_PATH_SEGMENT_RE = re.compile(r"[^\x00-\x1f\x7f/\s]+")


# -- zk:// URLs -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ZkUrl:
    """ZkUrl is a parsed ``zk://[user:password@]host1:port1,host2:port2/path``.

    ``str()`` gives the URL back with the password hidden; ``connect_string`` is what a
    ZooKeeper client takes (``host1:port1,host2:port2``, IPv6 hosts in brackets).
    """

    hosts: tuple[tuple[str, int], ...]
    path: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def connect_string(self) -> str:
        """``host1:port1,host2:port2`` (no path: znode paths stay absolute)."""
        return ",".join(format_address(host, port) for host, port in self.hosts)

    @property
    def digest_auth(self) -> str | None:
        """``user:password`` for ZooKeeper's digest scheme, if the URL carried credentials."""
        if self.username is None:
            return None
        return f"{self.username}:{self.password or ''}"

    def __str__(self) -> str:
        user = f"{self.username}:***@" if self.username is not None else ""
        return f"zk://{user}{self.connect_string}{self.path}"


def parse_zk_url(text: str) -> ZkUrl:
    """Parse ``zk://[user:password@]host[:port][,host[:port]...]/path``.

    A host without a port gets 2181; IPv6 hosts go in brackets. The path must be absolute,
    not ``/`` and not under ``/zookeeper``; a trailing ``/`` is dropped. Raises ValueError
    naming the part that is wrong.
    """
    if not isinstance(text, str):
        raise TypeError(f"ZooKeeper URL must be a str, not {type(text).__name__}")
    stripped = text.strip()
    scheme, sep, rest = stripped.partition("://")
    if not sep or scheme.lower() != "zk":
        raise ValueError(f"ZooKeeper URL {text!r} must start with zk://")
    authority, slash, path_rest = rest.partition("/")
    path = "/" + path_rest if slash else ""
    username: str | None = None
    password: str | None = None
    if "@" in authority:
        credentials, _, authority = authority.rpartition("@")
        username, colon, password_text = credentials.partition(":")
        if not username:
            raise ValueError(f"ZooKeeper URL {text!r}: empty user name before '@'")
        password = password_text if colon else None
    if not authority:
        raise ValueError(f"ZooKeeper URL {text!r} names no host (zk://host:2181/path)")
    hosts = tuple(_parse_host(part, text) for part in authority.split(","))
    return ZkUrl(hosts, _parse_path(path, text), username, password)


def _parse_host(part: str, url: str) -> tuple[str, int]:
    part = part.strip()
    if not part:
        raise ValueError(f"ZooKeeper URL {url!r} has an empty host in its host list")
    if part.startswith("["):
        host, bracket, after = part[1:].partition("]")
        if not bracket or not host or ":" not in host:
            raise ValueError(f"ZooKeeper URL {url!r}: malformed IPv6 host {part!r}")
        if after and not after.startswith(":"):
            raise ValueError(f"ZooKeeper URL {url!r}: unexpected {after!r} after {host!r}")
        port_text = after[1:] if after else None
    else:
        host, colon, port_text_or_empty = part.partition(":")
        port_text = port_text_or_empty if colon else None
        if ":" in port_text_or_empty:
            raise ValueError(f"ZooKeeper URL {url!r}: write IPv6 host {part!r} in brackets")
        if not _HOST_RE.fullmatch(host):
            raise ValueError(f"ZooKeeper URL {url!r}: invalid host {host!r}")
    if port_text is None:
        return host, DEFAULT_ZK_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"ZooKeeper URL {url!r}: invalid port {port_text!r} of host {host!r}")
    return host, int(port_text)


def _parse_path(path: str, url: str) -> str:
    if not path or path == "/":
        raise ValueError(f"ZooKeeper URL {url!r} needs a path, such as zk://host:2181/emporion")
    if "?" in path or "#" in path:
        raise ValueError(f"ZooKeeper URL {url!r}: the path may not hold '?' or '#'")
    segments = path.rstrip("/").split("/")[1:]
    for segment in segments:
        if not segment:
            raise ValueError(f"ZooKeeper URL {url!r}: empty segment ('//') in path {path!r}")
        if segment in (".", ".."):
            raise ValueError(f"ZooKeeper URL {url!r}: path {path!r} may not hold '.' or '..'")
        if not _PATH_SEGMENT_RE.fullmatch(segment):
            raise ValueError(
                f"ZooKeeper URL {url!r}: path segment {segment!r} holds whitespace or a control"
                " character"
            )
    if segments[0] == "zookeeper":
        raise ValueError(f"ZooKeeper URL {url!r}: /zookeeper is reserved by ZooKeeper")
    return "/" + "/".join(segments)


def format_address(host: str, port: int) -> str:
    """``host:port``, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# -- candidate znodes -------------------------------------------------------------------------


def sequence_of(name: str, label: str = MASTER_INFO_LABEL) -> int | None:
    """The sequence number of candidate znode ``name`` (``json.info_0000000042`` -> 42), or
    None if ``name`` is not a candidate with this label."""
    prefix = label + "_"
    if not name.startswith(prefix):
        return None
    digits = name[len(prefix) :]
    # ZooKeeper writes at least ten digits; a signed 32-bit counter can wrap to '-'.
    if len(digits) < 10 or not digits.isdigit():
        return None
    return int(digits)


def candidate_name(sequence: int, label: str = MASTER_INFO_LABEL) -> str:
    """The znode name ZooKeeper gives a candidate with this sequence number."""
    return f"{label}_{sequence:010d}"


def candidates(children: Iterable[str], label: str = MASTER_INFO_LABEL) -> list[str]:
    """The candidate znodes among ``children``, oldest (the leader) first."""
    found = [(seq, name) for name in children if (seq := sequence_of(name, label)) is not None]
    found.sort()
    return [name for _, name in found]


def predecessor(children: Iterable[str], mine: str, label: str = MASTER_INFO_LABEL) -> str | None:
    """The candidate just older than ``mine`` (the one to watch), or None if ``mine`` leads.

    Raises ValueError if ``mine`` is not among the candidates.
    """
    ordered = candidates(children, label)
    try:
        index = ordered.index(mine)
    except ValueError:
        raise ValueError(f"candidate {mine!r} is not among the candidates") from None
    return ordered[index - 1] if index else None


# -- MasterInfo as JSON -----------------------------------------------------------------------


class LeaderInfoError(ValueError):
    """LeaderInfoError: a candidate's data is not a usable MasterInfo JSON document."""


@dataclass(frozen=True, slots=True)
class LeaderInfo:
    """LeaderInfo is a (leading) master as its candidate znode describes it.

    ``grpc_address`` is where schedulers and agents connect; ``http_address`` its HTTP endpoint
    when known; ``node`` the candidate's znode name ("" for a standalone master). The
    ``master_info`` message must not be mutated.
    """

    master_info: mesos_pb2.MasterInfo
    grpc_address: str
    http_address: str | None = None
    node: str = ""
    scheme: str = "http"
    """``https`` when the master serves TLS (gRPC and HTTP): clients must connect with TLS."""
    agent_address: str | None = None
    """Where agents connect when the master ends their streams in gateway processes
    (``--agent-gateways``); None: at ``grpc_address``."""

    @property
    def agents_target(self) -> str:
        """The address an agent connects to."""
        return self.agent_address or self.grpc_address

    @property
    def master_id(self) -> str:
        """The master's id."""
        return self.master_info.id

    @property
    def sequence(self) -> int | None:
        """The candidate's sequence number, if it came from a znode."""
        return sequence_of(self.node) if self.node else None

    def same_master(self, other: LeaderInfo | None) -> bool:
        """Whether ``other`` is the same candidacy (same znode, id and address)."""
        return (
            other is not None
            and other.node == self.node
            and other.master_id == self.master_id
            and other.grpc_address == self.grpc_address
        )


def _default_address(info: mesos_pb2.MasterInfo) -> str | None:
    host = info.address.ip or info.address.hostname or info.hostname
    port = info.address.port or info.port
    if not host or not port:
        return None
    return format_address(host, port)


def _check_address(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise LeaderInfoError(f"{name} must be a 'host:port' string, not {value!r}")
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise LeaderInfoError(f"{name} {value!r} is not 'host:port'")
    return value


def master_info_json(
    info: mesos_pb2.MasterInfo,
    *,
    grpc_address: str | None = None,
    http_address: str | None = None,
    scheme: str = "http",
    agent_address: str | None = None,
) -> bytes:
    """The data of a candidate znode: ``info`` in Mesos's JSON form plus our addresses.

    ``grpc_address`` defaults to ``address.ip`` (or a hostname) and ``port``. Raises
    LeaderInfoError if ``info`` has no id or no address can be made.
    """
    if not info.id:
        raise LeaderInfoError("MasterInfo.id is required")
    grpc = grpc_address if grpc_address is not None else _default_address(info)
    if grpc is None:
        raise LeaderInfoError("MasterInfo has no hostname/ip and port; give grpc_address")
    doc: dict[str, Any] = json_format.MessageToDict(info, preserving_proto_field_name=True)
    doc["grpc_address"] = _check_address(grpc, "grpc_address")
    if http_address is not None:
        doc["http_address"] = _check_address(http_address, "http_address")
    if scheme != "http":  # http is implied: Mesos's and earlier masters' data say none.
        doc["scheme"] = scheme
    if agent_address is not None:
        doc["agent_address"] = _check_address(agent_address, "agent_address")
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def leader_from_json(data: bytes, node: str = "") -> LeaderInfo:
    """Parse a candidate znode's data (ours or Mesos's JSON); raises LeaderInfoError."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise LeaderInfoError(f"candidate {node or '?'}: data is not JSON: {error}") from None
    if not isinstance(doc, dict):
        raise LeaderInfoError(f"candidate {node or '?'}: data is not a JSON object")
    grpc = doc.pop("grpc_address", None)
    http = doc.pop("http_address", None)
    agents = doc.pop("agent_address", None)
    scheme = doc.pop("scheme", "http")
    if scheme not in ("http", "https"):
        raise LeaderInfoError(f"candidate {node or '?'}: scheme must be http or https: {scheme!r}")
    info = mesos_pb2.MasterInfo()
    try:
        json_format.ParseDict(doc, info, ignore_unknown_fields=True)
    except json_format.ParseError as error:
        raise LeaderInfoError(f"candidate {node or '?'}: bad MasterInfo: {error}") from None
    if not info.id:
        raise LeaderInfoError(f"candidate {node or '?'}: MasterInfo has no id")
    if grpc is None:
        grpc = _default_address(info)
        if grpc is None:
            raise LeaderInfoError(f"candidate {node or '?'}: MasterInfo has no address")
    grpc = _check_address(grpc, "grpc_address")
    http = None if http is None else _check_address(http, "http_address")
    agents = None if agents is None else _check_address(agents, "agent_address")
    return LeaderInfo(info, grpc, http, node, scheme, agents)


# -- leadership -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Leadership:
    """Leadership is a change of a contender's role: ``leading`` or not, and why.

    ``term`` counts the times this contender was elected (1 for the first); a ``leading=False``
    carries the term that ended. A master compares terms to ignore work from a term that is over.
    """

    leading: bool
    reason: str
    term: int


class Listeners(Generic[T]):
    """Listeners is a thread-safe list of callbacks, called in turn with each value.

    A failing callback is logged and skipped: one bad listener must not stop the others.
    """

    def __init__(self) -> None:
        self._items: list[Callable[[T], None]] = []
        self._lock = threading.Lock()

    def add(self, listener: Callable[[T], None]) -> Callable[[], None]:
        """Add ``listener``; returns a function removing it."""
        with self._lock:
            self._items.append(listener)

        def remove() -> None:
            with self._lock:
                if listener in self._items:
                    self._items.remove(listener)

        return remove

    def call(self, value: T) -> None:
        """Call every listener with ``value``."""
        with self._lock:
            items = list(self._items)
        for listener in items:
            try:
                listener(value)
            except Exception:
                log.exception("leader listener %r failed", listener)
