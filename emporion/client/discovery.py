"""Finding a master from what a person types: its gRPC address and its HTTP (operator) API.

``--master`` takes what frameworks take, plus the HTTP address for convenience:

* ``HOST:PORT`` — the master's gRPC port. Its HTTP address is asked of it with the unary method
  ``/emporion.Discovery/MasterInfo`` (:mod:`master.runtime.discovery`), which answers the same
  JSON a candidate znode holds.
* ``zk://host1:2181,host2:2181/path`` — the leading master's candidate znode names both
  addresses (``grpc_address``, ``http_address``).
* ``http://HOST:HTTP_PORT`` (or ``https://``) — the HTTP API itself; the gRPC address is in
  its ``GET_MASTER``.
  ``HOST:PORT`` naming the HTTP port works too: it answers the gRPC question in HTTP/1.1, so it
  is asked as ``http://`` instead.

A follower's HTTP API redirects leader-only calls to the leader, so any master's address serves.
TLS and credentials come from the SDK's ``EMPORION_SDK_*`` variables
(:mod:`emporion.client.security`). An advertised HTTP host that is a wildcard (a master bound
to ``0.0.0.0`` without ``--hostname``) is replaced by the host the user gave, which did reach
that master.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from emporion.client.errors import UnreachableError, UsageError
from emporion.client.security import ClientSecurity
from protos.leader_info import LeaderInfo, LeaderInfoError, format_address, leader_from_json
from protos.security import TlsConfig

__all__ = ["DISCOVERY_METHOD", "ENV_MASTER", "MasterEndpoints", "discover", "master_from_env"]

ENV_MASTER = "EMPORION_MASTER"
"""The environment variable that stands in for ``--master`` (the one ``emporion local`` sets)."""

DISCOVERY_METHOD = "/emporion.Discovery/MasterInfo"
"""The master's gRPC method answering its candidate-znode JSON (see master.runtime.discovery)."""

_WILDCARDS = frozenset({"0.0.0.0", "::", "[::]", ""})


@dataclass(frozen=True, slots=True)
class MasterEndpoints:
    """MasterEndpoints: where to reach one master, found from ``given``."""

    given: str
    """What the user gave (``--master``), for messages."""
    grpc: str
    """``host:port`` (or a ``zk://`` URL) for framework_sdk: what a scheduler connects to."""
    http: str
    """``host:port`` of its HTTP API: the operator API and the sandbox proxy."""
    master_id: str
    security: ClientSecurity = field(default_factory=ClientSecurity)
    """TLS and credentials for the HTTP API (and ``run``'s scheduler, through the SDK)."""

    @property
    def http_url(self) -> str:
        """The HTTP API's base URL (``https://`` under TLS)."""
        return f"{self.security.scheme}://{self.http}"

    def http_options(self) -> dict[str, Any]:
        """Keyword arguments for an httpx client of the HTTP API."""
        return self.security.httpx_options()


def master_from_env(value: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """``--master`` as given, else ``$EMPORION_MASTER``; UsageError when neither is set."""
    master = (value or environ.get(ENV_MASTER, "")).strip()
    if not master:
        raise UsageError(
            f"no master given: pass --master HOST:PORT (or zk://...) or set {ENV_MASTER}"
        )
    return master


def discover(
    master: str, timeout: float = 5.0, security: ClientSecurity | None = None
) -> MasterEndpoints:
    """The endpoints of the master named by ``master`` (see the module docstring).

    ``security`` defaults to what the ``EMPORION_SDK_*`` variables say
    (:class:`~emporion.client.security.ClientSecurity`). Raises UsageError for a malformed
    address or a master without HTTP, UnreachableError when nothing answers within ``timeout``
    seconds.
    """
    safety = security if security is not None else ClientSecurity.from_env()
    if master.startswith("zk://"):
        leader = _zk_leader(master, timeout)
        http = _http_of(leader, master, None)
        return MasterEndpoints(master, master, http, leader.master_id, safety)
    if master.startswith(("http://", "https://")):
        return _from_http(master, timeout, safety)
    host = _check_host_port(master)
    try:
        leader = _ask_grpc(master, timeout, safety)
    except _HttpServerError:  # The HTTP port was given: it serves just as well.
        found = _from_http(f"{safety.scheme}://{master}", timeout, safety)
        return MasterEndpoints(master, found.grpc, found.http, found.master_id, safety)
    http = _http_of(leader, master, host)
    return MasterEndpoints(master, master, http, leader.master_id, safety)


class _HttpServerError(Exception):
    """The address answered HTTP/1.1: it is a master's HTTP port (or some other web server)."""


def _check_host_port(master: str) -> str:
    host, sep, port = master.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(
            f"--master {master!r} is not HOST:PORT (the master's gRPC port), zk://... or http://..."
        )
    return host


def _http_of(leader: LeaderInfo, given: str, host: str | None) -> str:
    """The leader's HTTP address, its wildcard host replaced by ``host`` (what reached it)."""
    if leader.http_address is None:
        raise UsageError(
            f"the master at {given} serves no HTTP API (started with --http-port off), which "
            "these commands need"
        )
    http_host, _, port = leader.http_address.rpartition(":")
    if http_host in _WILDCARDS and host is not None:
        return f"{host}:{port}"
    return leader.http_address


def _ask_grpc(address: str, timeout: float, security: ClientSecurity) -> LeaderInfo:
    import grpc

    with security.grpc_channel(address) as channel:
        ask = channel.unary_unary(
            DISCOVERY_METHOD, request_serializer=None, response_deserializer=None
        )
        try:
            data: bytes = ask(b"", timeout=timeout)
        except grpc.RpcError as error:
            code: object = getattr(error, "code", lambda: None)()
            details = str(getattr(error, "details", lambda: None)() or code)
            if "http1.x server" in details:
                raise _HttpServerError from None
            if code is grpc.StatusCode.UNIMPLEMENTED and "http2 header" in details.lower():
                raise UsageError(
                    f"{address} is not an Emporion master's gRPC port (it answered {details!r})"
                ) from None
            if code is grpc.StatusCode.UNIMPLEMENTED:
                raise UsageError(
                    f"the master at {address} does not say where its HTTP API is (an older "
                    "master?): give --master http://HOST:HTTP_PORT"
                ) from None
            if code is grpc.StatusCode.DEADLINE_EXCEEDED:
                raise UnreachableError(address, f"no answer within {timeout:g} s") from None
            raise UnreachableError(address, _grpc_reason(details)) from None
    try:
        return leader_from_json(data)
    except LeaderInfoError as error:
        raise UnreachableError(address, f"its answer is not a master's: {error}") from None


def _grpc_reason(details: str) -> str:
    """gRPC's connection failure text, shortened to its last, telling part."""
    lowered = details.lower()
    for phrase in ("connection refused", "name or service not known", "no route to host"):
        if phrase in lowered:
            return phrase
    return details.rsplit(": ", 1)[-1] if len(details) > 120 else details


def _zk_leader(url: str, timeout: float) -> LeaderInfo:
    from protos.leader_aio import ZooKeeperLeaderFollower

    # kazoo logs every failed connection attempt at WARNING; the one line below says it all.
    logging.getLogger("kazoo").addHandler(logging.NullHandler())
    logging.getLogger("kazoo").propagate = False

    try:
        follower = ZooKeeperLeaderFollower(url, session_timeout=max(timeout, 4.0))
    except ValueError as error:
        raise UsageError(f"--master {url!r}: {error}") from None

    async def wait() -> LeaderInfo:
        try:
            return await asyncio.wait_for(follower.wait_leader(), timeout)
        finally:
            await follower.close()

    try:
        return asyncio.run(wait())
    except TimeoutError:
        raise UnreachableError(
            url, f"no leading master within {timeout:g} s (is ZooKeeper up, a master elected?)"
        ) from None


def _from_http(url: str, timeout: float, security: ClientSecurity) -> MasterEndpoints:
    import httpx

    scheme, _, rest = url.partition("://")
    address = rest.rstrip("/")
    host = _check_host_port(address)
    if scheme == "https" and security.tls is None:
        security = ClientSecurity(TlsConfig(), security.credential)  # the system's CA roots
    try:
        with httpx.Client(**security.httpx_options()) as client:
            response = client.post(
                f"{security.scheme}://{address}/api/v1",
                json={"type": "GET_MASTER"},
                timeout=timeout,
                follow_redirects=True,
            )
    except httpx.HTTPError as error:
        raise UnreachableError(url, str(error) or type(error).__name__) from None
    if response.status_code == 401:
        raise UsageError(f"the master at {url} asks for credentials: {response.text.strip()}")
    if response.status_code != 200:
        raise UnreachableError(url, f"GET_MASTER answered {response.status_code}: {response.text}")
    info = response.json().get("get_master", {}).get("master_info", {})
    try:
        leader = leader_from_json(json.dumps(info).encode())
    except LeaderInfoError as error:
        raise UnreachableError(url, f"its GET_MASTER is not a master's: {error}") from None
    grpc_host, _, grpc_port = leader.grpc_address.rpartition(":")
    grpc = format_address(host, int(grpc_port)) if grpc_host in _WILDCARDS else leader.grpc_address
    http = format_address(response.url.host, response.url.port) if response.url.port else address
    return MasterEndpoints(url, grpc, http, leader.master_id, security)
