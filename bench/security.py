"""``--tls`` and ``--auth`` of the benchmarks: a secured master and its clients' settings.

``--tls`` makes a CA and certificates (``emporion certs``) and serves the master over TLS;
``--auth`` turns on ``--authenticate-frameworks`` and ``--authenticate-agents`` against a
credentials file with one principal for the frameworks and one for the agents, so that every
call carries and has checked its credential, as a secured cluster's do
(``docs/security.md``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from emporion.commands.certs import make_cluster_certs
from protos.security import ClientCredential, TlsConfig

__all__ = ["BenchSecurity", "bench_security"]

FRAMEWORKS = ClientCredential("bench-frameworks", "bench-frameworks-secret")
AGENTS = ClientCredential("bench-agents", "bench-agents-secret")


@dataclass(frozen=True)
class BenchSecurity:
    """The started master's extra flags, and what its clients use."""

    master_args: tuple[str, ...] = ()
    tls: TlsConfig | None = None
    framework_credential: ClientCredential | None = None
    agent_credential: ClientCredential | None = None


def bench_security(directory: Path, *, tls: bool, auth: bool) -> BenchSecurity:
    """The settings of ``--tls`` / ``--auth``, their files written under ``directory``."""
    args: list[str] = []
    client_tls = None
    if tls:
        make_cluster_certs(directory, ["localhost", "127.0.0.1"])
        args += ["--tls-cert", str(directory / "server.pem")]
        args += ["--tls-key", str(directory / "server-key.pem")]
        args += ["--tls-ca", str(directory / "ca.pem")]
        client_tls = TlsConfig(ca=directory / "ca.pem")
    if not auth:
        return BenchSecurity(tuple(args), client_tls)
    credentials = directory / "credentials.json"
    credentials.write_text(
        json.dumps(
            {
                "credentials": [
                    {"principal": c.principal, "secret": c.secret} for c in (FRAMEWORKS, AGENTS)
                ]
            }
        )
    )
    args += ["--credentials", str(credentials)]
    args += ["--authenticate-frameworks", "true", "--authenticate-agents", "true"]
    return BenchSecurity(tuple(args), client_tls, FRAMEWORKS, AGENTS)
