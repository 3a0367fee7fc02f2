"""A secured master (TLS, authentication, ACLs) in this process, and clients that attack it.

The master is the real :class:`~master.runtime.MasterServer` with every item of
``docs/security.md`` on: TLS from ``emporion certs``, ``--authenticate-*`` against a Mesos
credentials file, and Mesos ACLs with ``permissive: false``. The clients are the master tests'
scheduler and fake agent (:mod:`tests.integration.master.clients`) over a TLS channel that
sends whatever credential a test gives it, so each test plays the attacker and the legitimate
user side by side.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from grpc import aio

from emporion.commands.certs import make_cluster_certs
from master.config import MasterConfig
from master.runtime import MasterServer
from protos.security import ClientCredential, TlsConfig, open_aio_channel
from protos.v1 import agent_internal_pb2_grpc, scheduler_pb2_grpc
from tests.integration.master.clients import FakeAgent, Scheduler

SECRETS = {
    "framework-a": "secret-a",
    "framework-b": "secret-b",
    "agent-1": "secret-agent-1",
    "agent-2": "secret-agent-2",
    "operator": "secret-operator",
    "viewer": "secret-viewer",
}

ACLS = {
    "permissive": False,
    "register_frameworks": [
        {"principals": {"values": ["framework-a"]}, "roles": {"values": ["a"]}},
        {"principals": {"values": ["framework-b"]}, "roles": {"values": ["b"]}},
    ],
    "run_tasks": [
        {"principals": {"type": "ANY"}, "users": {"values": ["tester", "nobody"]}},
    ],
    "register_agents": [
        {"principals": {"values": ["agent-1", "agent-2"]}, "agents": {"type": "ANY"}},
    ],
    "teardown_frameworks": [
        {"principals": {"values": ["operator"]}, "framework_principals": {"type": "ANY"}},
    ],
    "view_frameworks": [{"principals": {"type": "ANY"}, "users": {"type": "ANY"}}],
    "view_tasks": [{"principals": {"type": "ANY"}, "users": {"type": "ANY"}}],
    "access_sandboxes": [
        {"principals": {"values": ["operator"]}, "users": {"type": "ANY"}},
    ],
    "update_weights": [{"principals": {"values": ["operator"]}, "roles": {"type": "ANY"}}],
    "update_quotas": [{"principals": {"values": ["operator"]}, "roles": {"type": "ANY"}}],
}


@dataclass(frozen=True)
class Secured:
    """The files of a secured cluster: certificates, credentials, ACLs."""

    directory: Path
    credentials: Path
    acls: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    def tls(self, client: str | None = None) -> TlsConfig:
        """A client's TLS: the cluster CA, and ``client``'s certificate if named."""
        if client is None:
            return TlsConfig(ca=self.ca)
        return TlsConfig(
            cert=self.directory / f"{client}.pem",
            key=self.directory / f"{client}-key.pem",
            ca=self.ca,
        )

    def master_config(self, **overrides: object) -> MasterConfig:
        """A master with TLS, every authentication and the ACLs on, quick timers."""
        values: dict[str, object] = {
            "port": 0,
            "http_port": 0,
            "registry": "memory",
            "heartbeat_interval": 0.5,
            "allocation_interval": 0.2,
            "log_level": "WARNING",
            "tls_cert": self.directory / "server.pem",
            "tls_key": self.directory / "server-key.pem",
            "tls_ca": self.ca,
            "authenticate_frameworks": True,
            "authenticate_agents": True,
            "authenticate_http_readonly": True,
            "authenticate_http_readwrite": True,
            "credentials": self.credentials,
            "acls": self.acls,
        }
        values.update(overrides)
        return MasterConfig(**values)  # type: ignore[arg-type]


def make_secured(directory: Path) -> Secured:
    """Certificates (clients: framework-a, agent-1), credentials and ACLs under ``directory``."""
    make_cluster_certs(directory, ["localhost"], ["framework-a", "agent-1"])
    credentials = directory / "credentials.json"
    credentials.write_text(
        json.dumps({"credentials": [{"principal": p, "secret": s} for p, s in SECRETS.items()]})
    )
    acls = directory / "acls.json"
    acls.write_text(json.dumps(ACLS))
    return Secured(directory, credentials, acls)


def credential(principal: str, secret: str | None = None) -> ClientCredential:
    """``principal``'s credential (its real secret unless one is given)."""
    return ClientCredential(principal, SECRETS[principal] if secret is None else secret)


def channel(address: str, tls: TlsConfig | None, who: ClientCredential | None) -> aio.Channel:
    """A channel to ``address`` (TLS unless ``tls`` is None) sending ``who``'s credential."""
    return open_aio_channel(address, [], tls=tls, credential=who)


async def scheduler(address: str, tls: TlsConfig | None, who: ClientCredential | None) -> Scheduler:
    """The master tests' Scheduler over a secured channel."""
    client = Scheduler(address)
    await client.channel.close(None)
    client.channel = channel(address, tls, who)
    client.stub = scheduler_pb2_grpc.SchedulerStub(client.channel)
    return client


async def fake_agent(
    address: str, tls: TlsConfig | None, who: ClientCredential | None
) -> FakeAgent:
    """The master tests' FakeAgent over a secured channel."""
    agent = FakeAgent(address)
    await agent.channel.close(None)
    agent.channel = channel(address, tls, who)
    agent.stub = agent_internal_pb2_grpc.AgentGatewayStub(agent.channel)
    return agent


@asynccontextmanager
async def secured_master(config: MasterConfig) -> AsyncIterator[MasterServer]:
    """A secured MasterServer in this process, stopped at the end."""
    server = MasterServer(config)
    await server.start()
    try:
        yield server
    finally:
        await server.stop(grace=0.5)
